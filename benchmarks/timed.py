"""Run a command and record its wall time and peak memory: ``timed.py OUT.json -- CMD ...``.

Peak RSS is ``max(ru_maxrss)`` over the finished children (``resource.getrusage(RUSAGE_CHILDREN)``,
KiB on Linux): the largest single process of the command tree, which is what has to fit in
memory. The record ``{wall_s, peak_rss_mib, command, exit_code}`` is written atomically, and
the command's exit code is passed through. When the command is the sweep runner, whose stages
run in Ray worker processes that this process never waits for, the record also holds, from the
runner's ``.cache/sweep/last_run.json`` (only if written during this command):
``stage_families`` (per family of stages, a stage's name before ``@``, the number of stages it
ran and their summed seconds), ``worker_peak_rss_mib`` (the largest high-water mark of a worker,
and the stage it had just run), and ``peak_rss_mib`` becomes the larger of the two measures. ``make repro`` writes reports/pipeline_run.json with it;
``benchmarks/run.py`` reads that file.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

LAST_RUN = Path(".cache") / "sweep" / "last_run.json"


def stage_families(seconds: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{family: {"stages": n, "seconds": sum}}``."""
    families: dict[str, dict[str, float]] = {}
    for name, value in seconds.items():
        entry = families.setdefault(name.split("@")[0], {"stages": 0, "seconds": 0.0})
        entry["stages"] += 1
        entry["seconds"] = round(entry["seconds"] + value, 2)
    return families


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: timed.py OUT.json -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    out, command = argv[0], argv[2:]
    start, started_at = time.perf_counter(), time.time()
    code = subprocess.call(command)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    from lowspike.artifacts import write_json

    record = {"wall_s": wall, "peak_rss_mib": peak_kib / 1024, "command": " ".join(command), "exit_code": code}
    if LAST_RUN.exists() and LAST_RUN.stat().st_mtime >= started_at:
        last = json.loads(LAST_RUN.read_text())
        seconds, peaks = last.get("seconds", {}), last.get("peak_rss_mib", {})
        record["stage_seconds_total"] = round(sum(seconds.values()), 2)
        record["stage_families"] = stage_families(seconds)
        if peaks:
            stage = max(peaks, key=peaks.get)
            record["worker_peak_rss_mib"] = {"mib": peaks[stage], "after_stage": stage}
            record["peak_rss_mib"] = max(record["peak_rss_mib"], peaks[stage])
    write_json(out, record)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
