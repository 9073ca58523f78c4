"""DVC stage `aggregate_distillation`: every evaluated student with its relative deltas against
the same-seed baseline (Eqs. 11 and 13 of the distillation paper), mean and standard deviation
over seeds, and the Table III selections."""

import argparse

from lowspike import runtime
from lowspike.config import load_params
from lowspike.studies import distillation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="results/distillation")
    args = parser.parse_args()
    params = load_params(args.params)
    runtime.setup()
    runtime.announce("aggregate_distillation", distillation.write_aggregate(params, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
