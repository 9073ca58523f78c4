"""DVC stage `aggregate_conversion`: collect every evaluate.json of the conversion study into one
table with percent changes vs baseline (energy too), SNN/DNN energy ratios, the selections of
Tables 1-2, the AUCs of Table 3 and the break-even spikerate of each architecture."""

from lowspike import runtime
from lowspike.studies import conversion_results


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--out", default="results/conversion")
    args, params = runtime.parse_stage_args(parser)
    runtime.setup(uses_torch=False)
    headline = conversion_results.write_aggregate(params, args.out)
    runtime.announce("aggregate_conversion", headline)
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))
