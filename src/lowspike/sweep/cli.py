"""``python -m lowspike.sweep [run|plan] ...``: the command line of the sweep runner."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .runner import SweepOptions, run_sweep


def _run_parser(sub) -> None:
    parser = sub.add_parser("run", help="run the stale stages of dvc.yaml as Ray tasks (the default)")
    parser.add_argument("targets", nargs="*", help="stages to reproduce with their upstream (default: all of dvc.yaml)")
    parser.add_argument("--root", default=".", help="the DVC repository (default: the current directory)")
    parser.add_argument("--address", default=None,
                        help="an existing Ray cluster (HEAD:6379, or 'auto'); default: RAY_ADDRESS, else a local "
                             "Ray instance sized to this machine")
    parser.add_argument("--workers", type=int, default=None,
                        help="local instance only: tasks at once (default: one per CPU core)")
    parser.add_argument("--cpus-per-task", type=int, default=1,
                        help="CPUs (and torch threads) per stage (default 1)")
    parser.add_argument("--gpus-per-training", type=float, default=1.0,
                        help="GPUs per train_* stage where the cluster has GPUs; a fraction shares a GPU (default 1)")
    parser.add_argument("--retries", type=int, default=2,
                        help="Ray retries of a stage whose worker died or whose command failed (default 2)")
    parser.add_argument("--fresh-process", action="store_true",
                        help="start a new interpreter for every stage instead of running python stages in the "
                             "long-lived Ray workers")
    parser.add_argument("-f", "--force", action="store_true", help="run every visited stage (dvc repro -f)")
    parser.add_argument("--no-run-cache", action="store_true",
                        help="do not restore stages from DVC's cache (dvc repro --no-run-cache)")
    parser.add_argument("--dry", action="store_true", help="only print what would run, with the resources")
    parser.add_argument("--scratch", default=None, help="where tasks make scratch directories (default: the "
                                                         "node's temporary folder)")
    parser.add_argument("--mlflow-server", choices=("auto", "on", "off"), default="auto",
                        help="serve a local MLflow store to the tasks over HTTP: 'auto' when some node is "
                             "on another machine (default)")


def _plan_parser(sub) -> None:
    parser = sub.add_parser("plan", help="price a params profile: stages, CPU/GPU-hours, wall time on N workers")
    parser.add_argument("--params", default="profiles/paper.yaml", help="the profile to price")
    parser.add_argument("--root", default=".", help="where dvc.yaml lives (default: the current directory)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 64],
                        help="worker counts to give the wall time for")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to time the training steps (auto: cuda when available, and cpu)")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per model after one warm-up step")
    parser.add_argument("--json", default=None, help="also write the estimate to this JSON file")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("run", "plan", "-h", "--help"):
        argv = ["run", *argv]
    parser = argparse.ArgumentParser(prog="python -m lowspike.sweep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    _plan_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "plan":
        from .cost import main_plan

        return main_plan(args)
    options = SweepOptions(
        root=Path(args.root), targets=tuple(args.targets), address=args.address, workers=args.workers,
        cpus_per_task=args.cpus_per_task, gpus_per_training=args.gpus_per_training, retries=args.retries,
        in_process=not args.fresh_process, force=args.force, dry=args.dry, scratch_root=args.scratch,
        mlflow_server=args.mlflow_server, use_cache=not args.no_run_cache,
    )
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    try:
        report = run_sweep(options)
    except KeyboardInterrupt:
        print("interrupted before any stage was submitted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, like DVC's own errors
        print(f"ERROR: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 255
    return report.exit_code
