"""Cell formatting and the table block shared by both reports.

Every formatter maps a missing or non-finite value (a silent baseline's relative delta, a
diverged point's metric) to ``n/a``, so no table ever shows ``nan``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MISSING = "n/a"


def _usable(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt_count(value) -> str:
    """A per-sample count: an integer with thousands separators from 100 up (``326,185``), three
    significant digits below (``12.3``, ``0.254``: a mean below one spike is not ``0``)."""
    if not _usable(value):
        return MISSING
    if value == 0 or abs(value) >= 100:
        return f"{round(value):,}"
    return f"{value:.3g}"


def fmt_energy(joules) -> str:
    """An energy per inference in the unit that keeps it readable: ``12.3 nJ``, ``1.63 uJ``."""
    if not _usable(joules):
        return MISSING
    for unit, scale in (("mJ", 1e-3), ("uJ", 1e-6), ("nJ", 1e-9), ("pJ", 1e-12)):
        if abs(joules) >= scale or unit == "pJ":
            return f"{joules / scale:.3g} {unit}"
    return MISSING


def fmt_percent(value, digits: int = 2) -> str:
    """A value already in percent with its sign: ``-67.29%``."""
    return f"{value:+.{digits}f}%" if _usable(value) else MISSING


def fmt_fraction_percent(value, digits: int = 2, sign: bool = False) -> str:
    """A fraction shown in percent: ``0.9791`` -> ``97.91%`` (``+0.15%`` with ``sign``)."""
    if not _usable(value):
        return MISSING
    return f"{100 * value:+.{digits}f}%" if sign else f"{100 * value:.{digits}f}%"


def fmt_points(value, digits: int = 2) -> str:
    """A difference in percentage points with its sign: ``-0.40``."""
    return f"{value:+.{digits}f}" if _usable(value) else MISSING


def fmt_number(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _usable(value) else MISSING


def fmt_lambda(value) -> str:
    """A regularization strength as the paper prints it: ``9e-04``, ``1e+00``; ``0`` for zero."""
    if not _usable(value):
        return MISSING
    if value == 0:
        return "0"
    short = f"{value:.0e}"
    return short if float(short) == value else f"{value:.2e}"


def fmt_mean_std(mean, std, count: int, formatter=fmt_number) -> str:
    """``mean ± std`` when ``count`` seeds were averaged, the plain value for one seed."""
    if not _usable(mean):
        return MISSING
    if count > 1 and _usable(std):
        return f"{formatter(mean)} ± {formatter(std).lstrip('+')}"
    return formatter(mean)


def fmt_pair(left: str, right: str) -> str:
    return f"{left} / {right}"


@dataclass
class Table:
    """A captioned table: ``header`` and ``rows`` are already formatted strings."""

    name: str
    caption: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"table {self.name}: row {row} has {len(row)} cells, header {len(self.header)}")

    def to_markdown(self) -> str:
        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

        lines = [f"**{self.caption}**", "", line(self.header), "|" + "|".join("---" for _ in self.header) + "|"]
        lines += [line(row) for row in self.rows]
        return "\n".join(lines)

    def to_csv_rows(self) -> list[dict[str, str]]:
        return [dict(zip(self.header, row)) for row in self.rows]
