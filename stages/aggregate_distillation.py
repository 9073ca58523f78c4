"""DVC stage `aggregate_distillation`: every evaluated student with its relative deltas against
the same-seed baseline (Eqs. 11 and 13 of the distillation paper, energy included), mean and
standard deviation over seeds, the Table III selections, the teachers' energies and the
break-even spikerates."""

from lowspike import runtime
from lowspike.studies import distillation_results


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--out", default="results/distillation")
    args, params = runtime.parse_stage_args(parser)
    runtime.setup(uses_torch=False)
    runtime.announce("aggregate_distillation", distillation_results.write_aggregate(params, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))
