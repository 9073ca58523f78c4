"""What every stage script shares: reading its arguments after params.yaml, process-wide
settings (offline tools, threads, determinism, memory), and how it ends: one line and exit code 2
for bad input (params, arguments, data), one line and exit code 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable

from .errors import BadInput
from .params import load_params

BAD_INPUT_EXIT = 2
INTERRUPTED_EXIT = 130

OFFLINE_ENV = {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


def _report_bad_input(exc_type, exc, tb) -> None:
    """A bad input (a missing or corrupt dataset, a bad value) ends the stage with its one-line
    message (it names the file or key and what to do) instead of a traceback; any other
    exception keeps the default report."""
    if issubclass(exc_type, BadInput):
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return
    sys.__excepthook__(exc_type, exc, tb)


DEFAULT_THREADS = 1
"""Torch threads of a stage unless ``LOWSPIKE_THREADS`` says otherwise. One, so that a stage's
bytes do not depend on the machine: multi-threaded CPU kernels split their sums differently for
another thread count (measured: an MLP trained with 1 and 2 threads gives different weights),
and DVC would re-run everything downstream of such a stage on another machine. The cores are
used by running stages side by side (``python -m lowspike.sweep``, what ``make repro`` runs)."""

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters of glibc's malloc.h


def keep_freed_memory() -> bool:
    """Let glibc keep freed blocks for reuse instead of unmapping them.

    By default glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh
    ``mmap`` and unmaps it on free, so a training step that allocates the same 50 MB activation
    tensors again pays a page fault per 4 KiB page every time (measured on the SCNN student,
    T = 10, batch 128: the allocations' page faults took about 40% of a step). With mmap off and
    the trim threshold at 2 GiB, freed memory stays in the heap and is reused; the process keeps
    its peak footprint. ``LOWSPIKE_MALLOC=default`` keeps glibc's behaviour. Returns whether the
    settings were applied (False off glibc)."""
    if os.environ.get("LOWSPIKE_MALLOC") == "default":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def setup(threads: int | None = None, uses_torch: bool = True) -> None:
    """Keep DVC and MLflow offline, keep freed memory for reuse (:func:`keep_freed_memory`),
    report bad input in one line and, for a stage that computes with torch, set its threads once
    and, on a GPU, make its kernels deterministic (the CPU ones are; a test trains twice and
    compares the bytes). (torch is imported here, not at the top: the stages
    that only join JSON files, the aggregates and the report, never load it.)"""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    sys.excepthook = _report_bad_input
    keep_freed_memory()
    if not uses_torch:
        return
    import torch

    if threads is None:
        threads = int(os.environ.get("LOWSPIKE_THREADS", "0")) or DEFAULT_THREADS
    torch.set_num_threads(max(1, threads))
    if torch.cuda.is_available():  # the CPU kernels are deterministic already; this switch imports Inductor (2 s)
        torch.use_deterministic_algorithms(True, warn_only=True)


def announce(stage: str, message: str) -> None:
    """One line per finished stage with its headline metric."""
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


def show_progress() -> bool:
    """Progress bars only on a terminal, so CI logs stay short."""
    return sys.stderr.isatty() and not os.environ.get("CI")


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line with exit code 2 (no usage text)."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        print(f"error: {self.prog}: {message}", file=sys.stderr, flush=True)
        raise SystemExit(BAD_INPUT_EXIT)


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    """The argument parser of a stage script (``--params`` included)."""
    parser = _OneLineParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    return parser


def parse_stage_args(parser: argparse.ArgumentParser, argv: list[str] | None = None):
    """``(args, params)``: params.yaml is validated *before* the other arguments are parsed, so a
    bad grid value that DVC substituted into the command line (``lambdas: [abc]`` gives
    ``--lam abc``) is reported as the params error it is."""
    known, _ = stage_parser(None).parse_known_args(argv)
    params = load_params(known.params)
    return parser.parse_args(argv), params


def stage_name() -> str:
    """The DVC stage being run (``DVC_STAGE``), else the script's name."""
    return os.environ.get("DVC_STAGE") or Path(sys.argv[0]).stem


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill <pid>``, a scheduler ending a job) received by a stage: handled as Ctrl-C, so
    the checkpoint is kept and the MLflow run ends as KILLED instead of staying RUNNING."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def run_stage(main: Callable[[], int]) -> int:
    """Run a stage's ``main`` and turn the expected endings into one line on stderr: bad params,
    arguments or data (exit 2), and Ctrl-C or SIGTERM (exit 130, saying what was kept and how
    to resume)."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return main()
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return BAD_INPUT_EXIT
    except KeyboardInterrupt as exc:
        note = getattr(exc, "note", ": outputs are written atomically, nothing half-written is left; "
                                    "run `dvc repro` again")
        print(f"[{stage_name()}] interrupted{note}", file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
