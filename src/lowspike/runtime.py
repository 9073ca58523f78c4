"""Process-wide settings every stage applies first: offline tools, threads, determinism."""

from __future__ import annotations

import os
import sys

OFFLINE_ENV = {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


def setup(threads: int | None = None) -> None:
    """Keep DVC and MLflow offline, set torch threads once, make CPU kernels deterministic."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
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
