"""The accuracy-vs-SynOps curves of the conversion study (Fig. 3 and Table 3 of the regularization
paper), torch-free: the curve of a regularizer's points, its AUC and its monotone smoothed AUC,
for the point estimates and for each bootstrap resample (:mod:`lowspike.stats`)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np


def isotonic(xs: list[float], ys: list[float]) -> list[float]:
    """The non-decreasing least-squares fit of ``ys`` over sorted ``xs`` (pool adjacent
    violators; equal ``xs`` are pooled first, as scikit-learn's ``IsotonicRegression`` does)."""
    ties: list[list[float]] = []  # [sum, count, number of xs] per distinct x
    for k, y in enumerate(ys):
        if k and xs[k] == xs[k - 1]:
            ties[-1][0] += y
            ties[-1][1] += 1
            ties[-1][2] += 1
        else:
            ties.append([y, 1, 1])
    blocks: list[list[float]] = []
    for tie in ties:
        blocks.append(list(tie))
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count, width = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
            blocks[-1][2] += width
    return [total / count for total, count, width in blocks for _ in range(width)]


def trapezoid(xs: list[float], ys: list[float]) -> float:
    """The trapezoidal area under ``ys`` over sorted ``xs``."""
    return float(sum((x1 - x0) * (y0 + y1) / 2.0 for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:])))


def curve_points(points: list[tuple[float, float]], max_synops: float, chance: float) -> tuple[list, list]:
    """The curve's ``xs`` and ``ys`` from ``(synops, accuracy)`` pairs: x = SynOps / ``max_synops``,
    sorted, after the anchor ``(0, chance)``."""
    pairs = sorted((synops / max_synops, accuracy) for synops, accuracy in points) if max_synops > 0 else []
    return [0.0] + [p[0] for p in pairs], [chance] + [p[1] for p in pairs]


def accuracy_synops_curve(rows: Iterable[dict], max_synops: float, chance: float) -> dict[str, list[float] | float]:
    """Accuracy vs normalized SynOps (Fig. 3) with its AUC and the monotone smoothed AUC (Table 3).

    x = SynOps / max SynOps over the models of the (dataset, arch); y = SNN accuracy
    (fraction). The curve is anchored at (0, chance): a network that emits no spike
    classifies at chance. Smoothing is an isotonic (non-decreasing in x) regression
    (:func:`isotonic`). AUC is the trapezoidal area over x in [0, max x].
    """
    xs, ys = curve_points([(r["synops"], r["snn_accuracy"]) for r in rows
                           if r.get("status") == "ok" and r.get("synops") is not None], max_synops, chance)
    if len(xs) < 2:
        return {"x": xs, "y": ys, "y_smoothed": ys, "auc": math.nan, "auc_smoothed": math.nan}
    smoothed = isotonic(xs, ys)
    return {"x": xs, "y": ys, "y_smoothed": smoothed, "auc": trapezoid(xs, ys), "auc_smoothed": trapezoid(xs, smoothed)}


def resampled_aucs(synops: np.ndarray, accuracy: np.ndarray, max_synops: np.ndarray, chance: float) -> np.ndarray:
    """The smoothed AUC of one curve under each resample: ``synops`` and ``accuracy`` are
    ``[resamples, points]`` (the resampled means of the curve's points), ``max_synops``
    ``[resamples]`` the largest SynOps of the (dataset, arch) in each resample."""
    aucs = np.empty(synops.shape[0])
    for r in range(synops.shape[0]):
        xs, ys = curve_points(list(zip(synops[r].tolist(), accuracy[r].tolist())), float(max_synops[r]), chance)
        aucs[r] = trapezoid(xs, isotonic(xs, ys)) if len(xs) > 1 else math.nan
    return aucs
