"""What both reports share: the rendering context and the loading of an aggregate."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any


@dataclass(frozen=True)
class Context:
    """Rendering settings of one report run (params ``profile`` and section ``report``)."""

    profile: str
    formats: tuple[str, ...] = ("png", "svg")
    dpi: int = 120


def load_results(path: str | Path) -> dict[str, Any] | None:
    """An aggregated ``results.json``, or None when the study has not written it."""
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def usable(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def mean_of(values) -> float | None:
    """Mean of the finite values, None when there are none."""
    kept = [v for v in values if usable(v)]
    return fmean(kept) if kept else None


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
