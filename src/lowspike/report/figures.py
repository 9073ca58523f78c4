"""Deterministic figure rendering: same data, same bytes.

Figures are plain :class:`matplotlib.figure.Figure` objects (Agg, no pyplot state). The SVG
writer's element ids come from ``svg.hashsalt`` (fixed here) and its ``Date`` metadata is
dropped; the PNG writer gets no ``Software`` stamp. Two renders of one figure are therefore
byte-identical, which the tests check.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

from matplotlib import rc_context  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

HASH_SALT = "lowspike-report"
RC = {
    "svg.hashsalt": HASH_SALT,
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "legend.fontsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
DIVERGED_STYLE = {"marker": "x", "color": "red", "linestyle": "none", "markersize": 7, "clip_on": False}


@dataclass
class RenderedFigure:
    """One figure's bytes per format, its file stem and its caption."""

    name: str
    caption: str
    files: dict[str, bytes] = field(default_factory=dict)


def safe_name(text: str) -> str:
    """A file stem: lower case, runs of other characters replaced by ``_``."""
    return re.sub(r"[^a-z0-9.-]+", "_", text.lower()).strip("_")


def new_figure(rows: int = 1, cols: int = 1, width: float = 6.4, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    with rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    return fig, axes


def render(fig: Figure, name: str, caption: str, formats: list[str], dpi: int) -> RenderedFigure:
    """Render ``fig`` in every format of ``formats`` (``png``, ``svg``) with fixed metadata."""
    rendered = RenderedFigure(safe_name(name), caption)
    with rc_context(RC):
        for fmt in formats:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=dpi, metadata=METADATA[fmt])
            rendered.files[fmt] = buffer.getvalue()
    return rendered


def lambda_axis(ax: Axes, lambdas: list[float]) -> None:
    """Log x axis for a lambda sweep; symlog when the sweep contains 0."""
    positive = [v for v in lambdas if v > 0]
    if not positive:
        return
    if len(positive) < len(lambdas):
        ax.set_xscale("symlog", linthresh=min(positive))
    else:
        ax.set_xscale("log")


def mark_diverged(ax: Axes, xs: list[float], label: str | None = None) -> None:
    """Red crosses on the bottom edge of ``ax`` at the x of points whose training diverged."""
    if not xs:
        return
    ax.plot(xs, [0.0] * len(xs), transform=ax.get_xaxis_transform(), label=label, **DIVERGED_STYLE)


def diverged_handle() -> Line2D:
    """A legend entry for :func:`mark_diverged` markers."""
    return Line2D([], [], **{k: v for k, v in DIVERGED_STYLE.items() if k != "clip_on"})


def finite(values) -> list[float]:
    """``values`` with None/non-finite replaced by NaN (matplotlib leaves a gap there)."""
    return [float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan for v in values]


def placeholder(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center")
    ax.set_xticks([])
    ax.set_yticks([])
