"""DVC stage `report`: both papers' reports (Markdown and self-contained HTML), every figure as
PNG and SVG, and the `dvc plots` data, from the aggregated results of the two studies only."""

import argparse

from lowspike import runtime
from lowspike.config import load_params
from lowspike.report.build import write_reports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--conversion", default="results/conversion")
    parser.add_argument("--distillation", default="results/distillation")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args()
    params = load_params(args.params)
    runtime.setup(threads=1)
    runtime.announce("report", write_reports(params, args.conversion, args.distillation, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
