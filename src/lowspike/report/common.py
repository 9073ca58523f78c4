"""What both reports share: the rendering context and the loading of an aggregate."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from ..config import read_schema
from ..errors import BadInput, ParamsError
from ..studies import RESULTS_SCHEMA_VERSION


@dataclass(frozen=True)
class Context:
    """Rendering settings of one report run (params ``profile`` and section ``report``).

    ``profile`` is what the captions say of the params: the profile's name when the params
    equal the profile's file (``profiles/<name>.yaml``), else the name and what differs
    (:func:`describe_profile`)."""

    profile: str
    formats: tuple[str, ...] = ("png", "svg")
    dpi: int = 120


PROFILES_DIR = Path("profiles")
"""The reference params of each named profile (``default.yaml``: the committed params.yaml)."""


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {prefix: value}


def describe_profile(params, profiles_dir: str | Path = PROFILES_DIR, shown: int = 4) -> str:
    """``default`` when the params equal ``profiles/default.yaml``; otherwise the profile's name
    and the keys that differ (``default, changed: regularization.train.lr = 0.002 (profile:
    0.001)``), or ``<name> (no reference file)``."""
    reference_file = Path(profiles_dir) / f"{params.profile}.yaml"
    try:
        reference = read_schema(reference_file)
    except ParamsError:
        return f"{params.profile} (no reference file {reference_file})"
    ours, theirs = _leaves(params.model_dump(mode="json")), _leaves(reference.model_dump(mode="json"))
    changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if not changed:
        return params.profile
    listed = "; ".join(f"{k} = {ours.get(k)!r} (profile: {theirs.get(k)!r})" for k in changed[:shown])
    more = f"; and {len(changed) - shown} more" if len(changed) > shown else ""
    return f"{params.profile}, changed: {listed}{more}"


def load_results(path: str | Path) -> dict[str, Any] | None:
    """An aggregated ``results.json``, or None when the study has not written it; a file of another
    :data:`~lowspike.studies.RESULTS_SCHEMA_VERSION` is refused in one line."""
    path = Path(path)
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    found = result.get("schema_version", 1)
    if found != RESULTS_SCHEMA_VERSION:
        raise BadInput(f"{path}: results schema {found}, this code reads schema {RESULTS_SCHEMA_VERSION}; "
                       "`dvc repro` rewrites it")
    return result


def usable(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def mean_of(values) -> float | None:
    """Mean of the finite values, None when there are none."""
    kept = [v for v in values if usable(v)]
    return fmean(kept) if kept else None


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
