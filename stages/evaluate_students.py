"""DVC stage `evaluate_students@<dataset>`: test accuracy, spikes per inference, spikerate
(Eq. 12 of the distillation paper), per-layer spikerate and activity, energy per inference
(both energy models, the SNN and its non-spiking counterpart) and NeuroBench's metrics of every
student of the grids; the teacher's per-layer MACs and energy."""

from lowspike import runtime
from lowspike.distillation import check_dataset
from lowspike.stage_params import key_values, stage_keys
from lowspike.studies import distillation_eval, distillation_train
from lowspike.tracking import log_point_record, start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    args, params = runtime.parse_stage_args(parser)
    check_dataset(params, args.dataset)
    runtime.setup()
    setup = distillation_train.setup_for(params, args.dataset)
    tags = {"dataset": args.dataset, "model": setup.student, "stage": "evaluate_students"}
    with start_run(params.tracking, "distillation", f"evaluate {args.dataset}", tags) as run:
        run.log_params(key_values(params, stage_keys("evaluate_students", args.dataset)))
        evaluation = distillation_eval.evaluate_dataset(params, args.dataset, progress=runtime.show_progress())
        for name, figures in distillation_eval.evaluation_metrics(evaluation).items():
            log_point_record(run, name, figures)
    baseline = [r for r in evaluation.students if r["method"] == "baseline"]
    headline = ", ".join(f"seed {r['seed']}: accuracy {r['accuracy']:.4f}, spikerate {r['spikerate']:.3f}"
                         + "".join(f", {model} {figures['snn_j'] * 1e9:.4g} nJ ({figures['snn_over_dnn_dense']:.3g}"
                                   " x its DNN)" for model, figures in (r.get("energy") or {}).items()
                                   if isinstance(figures, dict))
                         for r in baseline)
    runtime.announce(f"evaluate_students {args.dataset}", f"{len(evaluation.students)} students; baseline {headline}")
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))
