"""How sure a result is: a paired bootstrap over the test samples, and the rule that decides a
finding (docs/statistics.md).

Every metric of both studies is a mean over the test samples (accuracy: of 0/1 correctness;
spikes, SynOps, EFLOPS: of per-sample counts). A resample draws the test samples with
replacement; the same draw is applied to every model of a dataset, so a configuration and its
baseline are compared on the same samples (paired). With ``w[r, i]`` the number of times
resample ``r`` draws sample ``i`` divided by ``n``, the resampled mean of per-sample values ``x``
is ``w[r] . x``, and a statistic computed from such means (a relative delta, Eqs. 11 and 13 of
the distillation paper; a percent change; an AUC) is computed once per resample. Its interval is
the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those values (percentile bootstrap,
Efron and Tibshirani 1993, Ch. 13).

A finding (:func:`decide`) holds when at least ``level`` of the resamples satisfy its claim and
its margin (how far the point estimate is beyond the claim's threshold) exceeds the baseline's
seed-to-seed spread of the same quantity; it does not hold when at most ``1 - level`` do, and is
undecided in between or when the margin is within the spread. The bootstrap covers the choice of
test samples; the seed spread covers the training's own noise, which no test set shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

HOLDS, FAILS, UNDECIDED, NOT_RUN = "holds", "does not hold", "undecided", "not run"


@dataclass(frozen=True)
class Resampler:
    """The bootstrap draws of one test set: ``weights`` ``[resamples, samples]``, each row the
    draw counts divided by ``samples`` (a row sums to 1)."""

    weights: np.ndarray
    level: float

    @classmethod
    def create(cls, samples: int, resamples: int, seed: int, level: float) -> "Resampler":
        """``resamples`` multinomial draws of ``samples`` out of ``samples`` (seeded: the same
        draws for every model of a dataset, in every run)."""
        rng = np.random.default_rng([seed, samples])
        counts = rng.multinomial(samples, np.full(samples, 1.0 / samples), size=resamples)
        return cls(counts / samples, level)

    @property
    def samples(self) -> int:
        return self.weights.shape[1]

    def means(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """The mean of the per-sample ``values`` under each resample, ``[resamples]``."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.samples,):
            raise ValueError(f"expected {self.samples} per-sample values, got shape {values.shape}")
        return self.weights @ values

    def interval(self, values: np.ndarray) -> tuple[float, float] | None:
        """The percentile interval at ``level`` of a statistic's resampled ``values`` (None
        when any of them is undefined)."""
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0 or not np.all(np.isfinite(values)):
            return None
        low, high = np.quantile(values, [(1 - self.level) / 2, (1 + self.level) / 2])
        return float(low), float(high)


def relative_deltas(config: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """``(c - b) / b`` per resample (Eqs. 11 and 13 of the distillation paper); NaN where ``b = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(baseline != 0, (config - baseline) / np.where(baseline != 0, baseline, 1.0), np.nan)


@dataclass(frozen=True)
class Margin:
    """How far a point estimate lies beyond its claim's threshold (``value``, positive on the
    claim's side) against the baseline's seed-to-seed spread of the same quantity (``spread``:
    one standard deviation; None when the baseline has one seed)."""

    value: float
    spread: float | None

    @property
    def clear(self) -> bool:
        return self.spread is not None and self.value > self.spread


@dataclass(frozen=True)
class Decision:
    """A finding's mark with the fraction of resamples satisfying its claim and its margins."""

    mark: str
    support: float | None
    margins: tuple[Margin, ...] = ()

    def to_dict(self) -> dict:
        return {"mark": self.mark, "support": self.support,
                "margins": [{"value": m.value, "spread": m.spread} for m in self.margins]}


def decide(satisfied: np.ndarray, margins: Iterable[Margin], level: float) -> Decision:
    """``holds`` when at least ``level`` of the resamples satisfy the claim (``satisfied``,
    booleans per resample) and every margin is clear of its spread; ``does not hold`` when at
    most ``1 - level`` do; ``undecided`` otherwise."""
    satisfied = np.asarray(satisfied, dtype=bool)
    margins = tuple(margins)
    support = float(satisfied.mean()) if satisfied.size else 0.0
    if support >= level and all(m.clear for m in margins):
        return Decision(HOLDS, support, margins)
    if support <= 1 - level:
        return Decision(FAILS, support, margins)
    return Decision(UNDECIDED, support, margins)


def combine(marks: Iterable[str]) -> str:
    """One mark of a claim checked per dataset or architecture: ``not run`` if nothing ran,
    ``does not hold`` if any part does not hold, ``undecided`` if any part is undecided, else
    ``holds``."""
    marks = [m for m in marks if m != NOT_RUN]
    if not marks:
        return NOT_RUN
    if FAILS in marks:
        return FAILS
    if UNDECIDED in marks:
        return UNDECIDED
    return HOLDS


def seed_spread(values: Iterable[float | None]) -> float | None:
    """The sample standard deviation of a baseline quantity over its seeds, relative to its
    mean (the unit of a relative delta); None with fewer than two seeds or a zero mean."""
    values = [float(v) for v in values if v is not None]
    if len(values) < 2:
        return None
    mean = float(np.mean(values))
    return float(np.std(values, ddof=1) / abs(mean)) if mean else None


def seed_spread_absolute(values: Iterable[float | None]) -> float | None:
    """The sample standard deviation over seeds in the quantity's own unit (percentage points of
    an accuracy, for example); None with fewer than two seeds."""
    values = [float(v) for v in values if v is not None]
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


class Evidence:
    """The per-sample records of a study's models (``per_sample`` of their ``evaluate.json``) and
    one :class:`Resampler` per dataset: a model is keyed by a tuple starting with its dataset
    (``(dataset, arch, point)``, ``(dataset, run, seed)``), and its resampled means are computed
    once."""

    def __init__(self, samples: dict[tuple, dict[str, list]], resamples: int, seed: int, level: float):
        self.samples = samples
        self.resamples, self.seed, self.level = resamples, seed, level
        self._resamplers: dict[str, Resampler] = {}
        self._means: dict[tuple, np.ndarray] = {}

    def has(self, key: tuple) -> bool:
        return key in self.samples

    def resampler(self, dataset: str) -> Resampler:
        if dataset not in self._resamplers:
            sizes = {len(next(iter(record.values()))) for key, record in self.samples.items()
                     if key[0] == dataset and record}
            if len(sizes) != 1:
                raise ValueError(f"{dataset}: the models were evaluated on test sets of different sizes {sorted(sizes)}")
            self._resamplers[dataset] = Resampler.create(sizes.pop(), self.resamples, self.seed, self.level)
        return self._resamplers[dataset]

    def means(self, key: tuple, field: str) -> np.ndarray:
        """The resampled means ``[resamples]`` of ``field`` (``correct``, ``spikes``, ...) of model ``key``."""
        if (key, field) not in self._means:
            self._means[(key, field)] = self.resampler(key[0]).means(self.samples[key][field])
        return self._means[(key, field)]

    def relative_delta(self, key: tuple, base: tuple, field: str) -> np.ndarray:
        """``(x - x_base) / x_base`` per resample (Eqs. 11 and 13 of the distillation paper)."""
        return relative_deltas(self.means(key, field), self.means(base, field))

    def change_pct(self, key: tuple, base: tuple, field: str) -> np.ndarray:
        """``100 (x - x_base) / x_base`` per resample: a count's percent change."""
        return 100.0 * self.relative_delta(key, base, field)

    def delta_pts(self, key: tuple, base: tuple, field: str) -> np.ndarray:
        """``100 (x - x_base)`` per resample: an accuracy's change in points."""
        return 100.0 * (self.means(key, field) - self.means(base, field))

    def interval(self, dataset: str, values: np.ndarray) -> list[float] | None:
        found = self.resampler(dataset).interval(values)
        return list(found) if found is not None else None
