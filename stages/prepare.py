"""DVC stage `prepare@<dataset>`: read a dataset from its source into data/prepared/<dataset>/."""

from pathlib import Path

from lowspike import runtime
from lowspike.data import load_raw
from lowspike.data.prepared import write_prepared


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    args, params = runtime.parse_stage_args(parser)
    runtime.setup()
    raw = load_raw(args.dataset, params.data)
    meta = write_prepared(raw, Path(params.data.prepared_dir) / args.dataset)
    counts = ", ".join(f"{split} {meta['counts'][split]['total']}" for split in ("train", "val", "test"))
    runtime.announce(f"prepare@{args.dataset}", f"{meta['num_classes']} classes; {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))
