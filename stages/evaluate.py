"""DVC stage `evaluate@<dataset>-<arch>`: DNN accuracy and EFLOPS, SNN accuracy, spikes, SynOps and energy per
inference (SNN and DNN, both energy models) of every point."""

from lowspike import runtime
from lowspike.stage_params import key_values, stage_keys
from lowspike.studies import conversion_points, conversion_results, conversion_snn
from lowspike.tracking import log_point_record, start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--arch", required=True)
    args, params = runtime.parse_stage_args(parser)
    conversion_points.check_point(params, conversion_points.Point(args.dataset, args.arch, "none", 0.0))
    runtime.setup()
    tags = {"dataset": args.dataset, "model": args.arch, "stage": "evaluate"}
    with start_run(params.tracking, "regularization", f"evaluate {args.dataset}/{args.arch}", tags) as run:
        run.log_params(key_values(params, stage_keys("evaluate")))
        headline = conversion_snn.evaluate_all(
            params, args.dataset, args.arch, progress=runtime.show_progress(),
            on_point=lambda point, record: log_point_record(
                run, point, {k: v for k, v in record.items() if k not in conversion_results.UNTRACKED_RECORD_KEYS}))
    runtime.announce(f"evaluate@{args.dataset}-{args.arch}", headline)
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))
