"""Process-wide settings every stage applies first: offline tools, threads, determinism."""

from __future__ import annotations

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


def setup(threads: int | None = None) -> None:
    """Keep DVC and MLflow offline, set torch threads once, make CPU kernels deterministic,
    and report data errors in one line."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    sys.excepthook = _report_data_errors
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
