"""What the aggregates of both studies share, torch-free: a model at chance, relative changes,
means over seeds, and the DVC metrics directory."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from ..artifacts import write_json

CHANCE_MARGIN = 0.05
"""A model whose accuracy is within this (absolute) of chance, 1 / classes, is at chance."""


def at_chance(accuracy: float | None, num_classes: int | None, spikes: float | None = None) -> bool:
    """A collapsed network: accuracy within :data:`CHANCE_MARGIN` of chance, or no spike at all."""
    if spikes is not None and spikes == 0:
        return True
    if accuracy is None:
        return False
    return accuracy <= 1.0 / max(num_classes or 10, 1) + CHANCE_MARGIN


def percent_change(value: float | None, baseline: float | None) -> float | None:
    """``100 (value - baseline) / baseline``; None when the baseline is 0 or missing."""
    if value is None or baseline is None or baseline == 0:
        return None
    return 100.0 * (value - baseline) / baseline


def relative_delta(value: float | None, baseline: float | None) -> float | None:
    """Eqs. 11 and 13 of the distillation paper: ``(value - baseline) / baseline``.

    None when the baseline is 0 or missing (a silent baseline has no relative delta).
    """
    if value is None or baseline is None or baseline == 0:
        return None
    return (value - baseline) / baseline


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the finite values (0 for one value; None, None for none)."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def microjoules(joules: float | None) -> float | None:
    return None if joules is None else joules * 1.0e6


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def write_metrics(folder: Path, rows: dict[str, dict[str, Any]]) -> None:
    """One small JSON file per row in ``folder`` (a DVC metrics directory), stale files removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, values in rows.items():
        write_json(folder / f"{name}.json", values)
    for stale in folder.glob("*.json"):
        if stale.stem not in rows:
            stale.unlink()
