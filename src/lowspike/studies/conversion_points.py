"""The trainings of the conversion study (regularization paper) and where their artifacts live.

One folder per point ``<point>`` = ``baseline``, ``<regularizer>-<lambda>`` or
``baseline-seed<k>`` (the baseline trained again with seed ``k`` of
``regularization.baseline_extra_seeds``, for its seed spread; no curve or table point):

- ``runs/dnn/<dataset>/<arch>/<point>/model.pt``  trained DNN (state dict + arch metadata)
- ``runs/dnn/<dataset>/<arch>/<point>/train.json`` status, epochs, validation metrics, history
- ``runs/snn/<dataset>/<arch>/<point>/snn.pt``  converted SNN; ``convert.json`` its lambdas
- ``runs/sim/<dataset>/<arch>/<point>/simulation.json`` spikes, SynOps, accuracy per timestep
- ``runs/eval/<dataset>/<arch>/<point>/evaluate.json`` all metrics of the point
- ``results/conversion/results.json`` (and ``.csv``, ``metrics/``) the aggregate
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import read_json
from ..errors import ParamsError
from ..regularizers import split_point

BASELINE = "baseline"
BASELINE_SEED = "baseline-seed"
RUNS = Path("runs")


@dataclass(frozen=True)
class Point:
    """One model of the sweep: a regularizer at a strength, or the unregularized baseline."""

    dataset: str
    arch: str
    regularizer: str  # "none" for the baseline
    lam: float
    label: str | None = field(default=None, compare=False)
    """The point as params.yaml writes it (``l1-1e-4``): its stage and folder name."""
    seed: int | None = None
    """A baseline trained again with this seed (``regularization.baseline_extra_seeds``)."""

    @classmethod
    def parse(cls, dataset: str, arch: str, point: str) -> "Point":
        """The point ``<regularizer>-<lambda>`` (:func:`~lowspike.regularizers.split_point`),
        ``baseline`` or ``baseline-seed<k>``."""
        if point == BASELINE:
            return cls(dataset, arch, "none", 0.0)
        if point.startswith(BASELINE_SEED) and point[len(BASELINE_SEED):].isdigit():
            return cls(dataset, arch, "none", 0.0, seed=int(point[len(BASELINE_SEED):]))
        try:
            regularizer, lam = split_point(point)
        except ValueError as exc:
            raise ParamsError(f"--point {point!r}: {exc}") from None
        return cls(dataset, arch, regularizer, lam, point)

    @property
    def name(self) -> str:
        if self.regularizer == "none":
            return BASELINE if self.seed is None else f"{BASELINE_SEED}{self.seed}"
        return self.label or f"{self.regularizer}-{self.lam}"

    def train_seed(self, params: Any) -> int:
        """The seed of its training: ``regularization.train.seed``, or its own for a baseline replica."""
        return params.regularization.train.seed if self.seed is None else self.seed

    def folder(self, kind: str) -> Path:
        return RUNS / kind / self.dataset / self.arch / self.name


def grid(params: Any, dataset: str, arch: str) -> list[Point]:
    """The baseline followed by every point of ``regularization.points.<arch>``: the points of
    the curves and tables."""
    points = [Point(dataset, arch, "none", 0.0)]
    points += [Point.parse(dataset, arch, point) for point in params.regularization.points[arch]]
    return points


def baseline_replicas(params: Any, dataset: str, arch: str) -> list[Point]:
    """The baseline trained with each seed of ``regularization.baseline_extra_seeds``."""
    return [Point(dataset, arch, "none", 0.0, seed=seed) for seed in params.regularization.baseline_extra_seeds]


def all_points(params: Any, dataset: str, arch: str) -> list[Point]:
    """Every trained model of ``dataset`` and ``arch``: the grid, then the baseline replicas."""
    return grid(params, dataset, arch) + baseline_replicas(params, dataset, arch)


def check_point(params: Any, point: Point) -> None:
    """Refuse (:class:`ParamsError`: one line, exit code 2 in a stage) a point that params.yaml
    does not define, e.g. a stale matrix entry or a mistyped command line."""
    study = params.regularization
    problems = []
    if point.dataset not in study.datasets:
        problems.append(f"dataset {point.dataset!r} not in regularization.datasets {study.datasets}")
    if point.arch not in study.archs:
        problems.append(f"arch {point.arch!r} not in regularization.archs {study.archs}")
    if point.regularizer != "none" and point.name not in [p.name for p in grid(params, point.dataset, point.arch)]:
        problems.append(f"point {point.name!r} not in regularization.points.{point.arch}")
    if point.seed is not None and point.seed not in study.baseline_extra_seeds:
        problems.append(f"point {point.name!r}: seed {point.seed} not in regularization.baseline_extra_seeds "
                        f"{study.baseline_extra_seeds}")
    if problems:
        raise ParamsError(problems[0])


def trained_points(params: Any, dataset: str, arch: str) -> list[tuple[Point, dict]]:
    """The points (:func:`all_points`) whose training wrote its ``train.json``, with it."""
    found = []
    for point in all_points(params, dataset, arch):
        train_file = point.folder("dnn") / "train.json"
        if train_file.exists():
            found.append((point, read_json(train_file)))
    return found
