"""Process-wide settings every stage applies first: offline tools, threads, determinism."""

from __future__ import annotations

import ctypes
import os
import sys

OFFLINE_ENV = {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


def _report_data_errors(exc_type, exc, tb) -> None:
    """A missing or corrupt dataset ends the stage with its one-line message (it names the file
    and what to do) instead of a traceback; any other exception keeps the default report."""
    from .data import DatasetMissing, PreparedDataCorrupt

    if issubclass(exc_type, (DatasetMissing, PreparedDataCorrupt)):
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return
    sys.__excepthook__(exc_type, exc, tb)


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


def setup(threads: int | None = None) -> None:
    """Keep DVC and MLflow offline, set torch threads once, make CPU kernels deterministic,
    keep freed memory for reuse (:func:`keep_freed_memory`) and report data errors in one line."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    sys.excepthook = _report_data_errors
    keep_freed_memory()
    import torch

    if threads is None:
        threads = int(os.environ.get("LOWSPIKE_THREADS", "0")) or (os.cpu_count() or 1)
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True, warn_only=True)


def announce(stage: str, message: str) -> None:
    """One line per finished stage with its headline metric."""
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


def show_progress() -> bool:
    """Progress bars only on a terminal, so CI logs stay short."""
    return sys.stderr.isatty() and not os.environ.get("CI")
