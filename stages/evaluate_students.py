"""DVC stage `evaluate_students@<dataset>`: test accuracy, spikes per inference, spikerate
(Eq. 12 of the distillation paper) and per-layer spikerate of every student of the grids."""

from lowspike import runtime
from lowspike.config import ParamsError
from lowspike.studies import distillation
from lowspike.tracking import start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    args, params = runtime.parse_stage_args(parser)
    if args.dataset not in params.distillation.datasets:
        raise ParamsError(f"--dataset {args.dataset!r}: not in distillation.datasets "
                          f"{params.distillation.datasets}")
    runtime.setup()
    setup = distillation.setup_for(params, args.dataset)
    tags = {"dataset": args.dataset, "model": setup.student, "stage": "evaluate_students"}
    with start_run(params.tracking, "distillation", f"evaluate {args.dataset}", tags) as run:
        records = distillation.evaluate_dataset(params, args.dataset, progress=runtime.show_progress())
        for record in records:
            prefix = f"{record['run']}.seed{record['seed']}"
            run.log_metrics({f"{prefix}.accuracy": record["accuracy"], f"{prefix}.spikerate": record["spikerate"],
                             f"{prefix}.total_spikes": record["total_spikes"]})
    baseline = [r for r in records if r["method"] == "baseline"]
    headline = ", ".join(f"seed {r['seed']}: accuracy {r['accuracy']:.4f}, spikerate {r['spikerate']:.3f}"
                         for r in baseline)
    runtime.announce(f"evaluate_students {args.dataset}", f"{len(records)} students; baseline {headline}")
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))
