"""DVC stage `simulate@<dataset>-<arch>`: simulate every converted SNN of the grid for T steps on the test split."""

import argparse

from lowspike import runtime
from lowspike.config import load_params
from lowspike.studies import conversion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    conversion.check_point(params, conversion.Point(args.dataset, args.arch, "none", 0.0))
    runtime.setup()
    headline = conversion.simulate_all(params, args.dataset, args.arch, progress=runtime.show_progress())
    runtime.announce(f"simulate@{args.dataset}-{args.arch}", headline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
