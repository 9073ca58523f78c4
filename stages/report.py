"""DVC stage `report`: both papers' reports (Markdown and self-contained HTML), every figure as
PNG and SVG, and the `dvc plots` data, from the aggregated results of the two studies only."""

from lowspike import runtime
from lowspike.report.build import write_reports


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--conversion", default="results/conversion")
    parser.add_argument("--distillation", default="results/distillation")
    parser.add_argument("--out", default="reports")
    args, params = runtime.parse_stage_args(parser)
    runtime.setup(threads=1)
    runtime.announce("report", write_reports(params, args.conversion, args.distillation, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))
