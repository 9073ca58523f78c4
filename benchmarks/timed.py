"""Run a command and record its wall time and peak memory: ``timed.py OUT.json -- CMD ...``.

Peak RSS is ``max(ru_maxrss)`` over the finished children (``resource.getrusage(RUSAGE_CHILDREN)``,
KiB on Linux): the largest single process of the command tree, which is what has to fit in
memory. The record ``{wall_s, peak_rss_mib, command, exit_code}`` is written atomically, and
the command's exit code is passed through. ``make repro`` writes reports/pipeline_run.json
with it; ``benchmarks/run.py`` reads that file.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: timed.py OUT.json -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    out, command = argv[0], argv[2:]
    start = time.perf_counter()
    code = subprocess.call(command)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    from lowspike.artifacts import write_json

    write_json(out, {"wall_s": wall, "peak_rss_mib": peak_kib / 1024, "command": " ".join(command),
                     "exit_code": code})
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
