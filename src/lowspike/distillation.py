"""The distillation study's training methods: one registry, :data:`METHODS`, and the KD losses.

Response-based knowledge distillation (Sec. III-A of the distillation paper): the total loss
(Eq. 1) weighs the cross-entropy with the labels against a distillation term computed from the
teacher's logits::

    L_total = alpha * CE(logits_s, y) + (1 - alpha) * L_KD

with ``L_KD`` one of :func:`mse_kd` (Eq. 2), :func:`soft_target_kd` (Eq. 4) or
:func:`heterogeneous_kd` (Eq. 5). Activation and logits regularization (Eqs. 6-10) add
``lambda`` times a penalty of :data:`lowspike.penalties.PENALTIES`; feature-based KD adds ``w``
times the FitNets hint loss (:mod:`lowspike.hints`).

A :class:`Method` entry says everything about one method: the schema of its grid
(``distillation.grids.<dataset>.<name>``: each dataset has its own grids, as each network has
its own useful range of a setting) and the settings it expands to, the DVC stage families that
train it, its run name, which loss terms it adds, whether it needs the teacher or the hints,
its Table III family, whether the paper ran it, and the setting the plan mode prices. The runs
of a params file (:func:`student_runs`), the stage arguments, ``dvc.yaml``
(:mod:`lowspike.dvcyaml`), the reports' families and the plan's prices all follow from it: a
new method is one entry (and, for a new KD term, its loss function here).

The losses use tensor methods only, so that params validation and the reports read the
registry without importing torch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import Field, create_model

from .errors import ParamsError
from .schema import NonNegFloat, PosFloat, Section, Seeds, UnitFloat
from .studies.common import at_chance, is_number

if TYPE_CHECKING:
    import torch

RUNS = Path("runs")


# ----------------------------------------------------------------------------- KD losses


def mse_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 2 of the distillation paper: ``mean_b sum_c (logits_t - logits_s)^2``."""
    return (teacher_logits - student_logits).pow(2).sum(dim=1).mean()


def kl_divergence(teacher_probs_log: torch.Tensor, student_probs_log: torch.Tensor) -> torch.Tensor:
    """``mean_b KL(p_t || p_s) = mean_b sum_c p_t (log p_t - log p_s)`` from log-probabilities.

    A class with ``p_t = 0`` contributes 0 (the limit of ``p log p``).
    """
    p_t = teacher_probs_log.exp()
    terms = (p_t * (teacher_probs_log - student_probs_log)).where(p_t > 0, 0.0)
    return terms.sum(dim=1).mean()


def heterogeneous_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau_s: float,
                     tau_t: float) -> torch.Tensor:
    """Eq. 5 of the distillation paper: ``tau_t tau_s KL(p_t(tau_t) || p_s(tau_s))``.

    ``p(x, tau) = softmax(x / tau)`` (Eq. 3); the product of the temperatures keeps the
    gradient's scale comparable across temperatures, as ``tau^2`` does in Eq. 4.
    """
    log_p_t = (teacher_logits / tau_t).log_softmax(dim=1)
    log_p_s = (student_logits / tau_s).log_softmax(dim=1)
    return tau_t * tau_s * kl_divergence(log_p_t, log_p_s)


def soft_target_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 4 of the distillation paper: ``tau^2 KL(p_t(tau) || p_s(tau))`` (Eq. 5 with one temperature)."""
    return heterogeneous_kd(student_logits, teacher_logits, tau_s=tau, tau_t=tau)


def total_loss(ce: torch.Tensor, kd: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 1 of the distillation paper: ``alpha CE + (1 - alpha) L_KD``."""
    return alpha * ce + (1.0 - alpha) * kd


# ----------------------------------------------------------------------------- grids


class MethodGrid(Section):
    """The base of every method's grid (``distillation.grids.<dataset>.<method>``): the lists of
    its settings, and optionally the seeds its configurations are trained with there."""

    optional_keys = frozenset({"seeds"})

    seeds: Seeds | None = None
    """The seeds of this method's configurations on this dataset, each paired with the baseline
    of its seed (so a subset of ``distillation.baseline_seeds``); unset: ``distillation.seeds``.
    More seeds average a configuration's own training noise out of its deltas, where one seed's
    baseline would decide a curve (docs/statistics.md)."""


class MseGrid(MethodGrid):
    """The alphas of MSE KD (Eq. 1 with Eq. 2; the paper sweeps 0.1 .. 0.9, Fig. 2)."""

    alphas: list[UnitFloat] = Field(default_factory=list)


class SoftTargetGrid(MethodGrid):
    """The temperatures of soft-target KD (Eq. 4; the paper: 1, 2, 4, 8, Fig. 3)."""

    taus: list[PosFloat] = Field(default_factory=list)


class HeterogeneousGrid(MethodGrid):
    """The student and teacher temperatures of heterogeneous KD (Eq. 5): their cross product
    (the paper: 1 .. 8 each, Fig. 5)."""

    tau_s: list[PosFloat] = Field(default_factory=list)
    tau_t: list[PosFloat] = Field(default_factory=list)


class ActivationRegGrid(MethodGrid):
    """lambda values (Eq. 10) of activation regularization, per norm. The normalized l2 norm of
    Eq. 9 is about sqrt(spikes) / (n T), orders of magnitude below the l1 norm, so each norm has
    its own list; an empty list skips that norm."""

    l1: list[NonNegFloat] = Field(default_factory=list)
    l2: list[NonNegFloat] = Field(default_factory=list)


class LogitsRegGrid(MethodGrid):
    """lambda values (Eq. 10) of logits regularization, per norm (l2 = Euclidean, Eq. 8;
    l2sq = squared, Eq. 7)."""

    l2: list[NonNegFloat] = Field(default_factory=list)
    l2sq: list[NonNegFloat] = Field(default_factory=list)


class CombinedGrid(MethodGrid):
    """Heterogeneous-temperature KD and activation regularization in one loss (the paper's future
    work): the cross product of the four lists."""

    tau_s: list[PosFloat] = Field(default_factory=list)
    tau_t: list[PosFloat] = Field(default_factory=list)
    norms: list[Literal["l1", "l2"]] = Field(default_factory=list)
    lambdas: list[NonNegFloat] = Field(default_factory=list)


class FeatureHintGrid(MethodGrid):
    """Feature-based KD (FitNets hints, Romero et al. 2015, the paper's future work; see
    :mod:`lowspike.hints`): the hint weights ``w`` of ``L = CE + w L_hint``."""

    weights: list[NonNegFloat] = Field(default_factory=list)


class FeatureActGrid(MethodGrid):
    """Hints and activation regularization in one loss, ``L = CE + w L_hint + lambda Omega``
    (Eqs. 9-10): the cross product of the three lists."""

    weights: list[NonNegFloat] = Field(default_factory=list)
    norms: list[Literal["l1", "l2"]] = Field(default_factory=list)
    lambdas: list[NonNegFloat] = Field(default_factory=list)


def grid_of(name: str, doc: str = "", **lists: Any) -> type[Section]:
    """A grid schema of lists, each empty by default, for a new method: ``grid_of("MaeGrid",
    alphas=UnitFloat)`` is ``distillation.grids.<dataset>.<method>.alphas: list[UnitFloat]``."""
    return create_model(name, __base__=MethodGrid, __doc__=doc,
                        **{key: (list[kind], Field(default_factory=list)) for key, kind in lists.items()})


# ----------------------------------------------------------------------------- registry

SETTINGS: dict[str, tuple[type, str]] = {
    "alpha": (float, "weight of the cross-entropy in Eq. 1 (MSE KD's own; the others use distillation.alpha)"),
    "tau": (float, "temperature of soft-target KD (Eq. 4)"),
    "tau_s": (float, "student temperature of heterogeneous KD (Eq. 5)"),
    "tau_t": (float, "teacher temperature of heterogeneous KD (Eq. 5)"),
    "norm": (str, "norm of the activation (l1, l2) or logits (l2, l2sq) regularizer (Eqs. 6-8)"),
    "lam": (float, "strength lambda of the regularizer (Eq. 10)"),
    "weight": (float, "hint weight w of feature-based KD"),
}
"""Every setting a method can have: its type on the command line and what it is."""


@dataclass(frozen=True)
class Variant:
    """One DVC stage family of a method: the settings it fixes, and for each swept setting the
    list of the method's grid it takes its values from, in the order of the run's settings."""

    stage: str
    fixed: tuple[tuple[str, Any], ...] = ()
    axes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Method:
    """One training method of the distillation study."""

    name: str
    """``--method`` and the key of its grid under ``distillation.grids.<dataset>``."""
    grid: type[Section] | None
    variants: tuple[Variant, ...]
    settings: tuple[str, ...]
    """The keys of a run's setting, in the order of its name and command line."""
    run_name: str
    """``str.format`` of the setting: the run's folder and MLflow name (``het-s{tau_s}-t{tau_t}``)."""
    family: str | None
    """Table III's family (None for the baseline)."""
    label: str
    paper: bool = True
    kd: Callable[..., torch.Tensor] | None = None
    """The response-based KD term of Eq. 1, called with the settings of ``kd_args``."""
    kd_args: tuple[str, ...] = ()
    hints: bool = False
    """Adds ``weight`` times the FitNets hint loss (needs the teacher's feature maps)."""
    penalty: Literal["activation", "logits"] | None = None
    """Adds ``lam`` times this penalty of :data:`lowspike.penalties.PENALTIES` (with ``norm``)."""
    example: dict[str, Any] = field(default_factory=dict)
    """The setting whose training step the plan mode (``python -m lowspike.sweep plan``) prices."""
    seeds_key: str = "seeds"
    """The params list of seeds it is trained with: ``distillation.seeds``, or for the baseline
    ``distillation.baseline_seeds`` (every configuration's deltas pair it with the baseline of
    its seed; the extra baseline seeds measure the training's own spread)."""

    @property
    def uses_teacher(self) -> bool:
        return self.kd is not None or self.hints

    def seeds(self, params: Any, grids: Any) -> list[int]:
        """The seeds it is trained with on the dataset of ``grids``: its grid's ``seeds`` where
        written, else ``distillation.<seeds_key>``."""
        own = getattr(grids, self.name).seeds if self.grid is not None else None
        return own if own is not None else getattr(params.distillation, self.seeds_key)

    @property
    def uses_study_alpha(self) -> bool:
        """Weighs its KD term with ``distillation.alpha`` (Eq. 1), having no ``alpha`` of its own."""
        return self.kd is not None and "alpha" not in self.settings

    def setting_grid(self, grids: Any) -> list[tuple[tuple[str, Any], ...]]:
        """Every setting of this method in ``grids`` (params ``distillation.grids.<dataset>``), in
        run order: per variant the cross product of its axes, the first axis outermost."""
        grid = getattr(grids, self.name) if self.grid is not None else None
        found = []
        for variant in self.variants:
            lists = [getattr(grid, source) for _, source in variant.axes]
            for values in itertools.product(*lists):
                setting = dict(variant.fixed) | dict(zip((key for key, _ in variant.axes), values))
                found.append(tuple((key, setting[key]) for key in self.settings))
        return found


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("baseline", None, (Variant("train_student_baseline"),), (), "baseline", None,
           "baseline (cross-entropy, Eq. 1 with alpha = 1)", seeds_key="baseline_seeds"),
    Method("mse", MseGrid, (Variant("train_student_mse", axes=(("alpha", "alphas"),)),), ("alpha",),
           "mse-a{alpha}", "KD", "MSE KD (Eq. 2)", kd=mse_kd, example={"alpha": 0.5}),
    Method("soft_targets", SoftTargetGrid, (Variant("train_student_st", axes=(("tau", "taus"),)),), ("tau",),
           "st-t{tau}", "KD", "soft-target KD (Eq. 4)", kd=soft_target_kd, kd_args=("tau",), example={"tau": 4.0}),
    Method("heterogeneous", HeterogeneousGrid,
           (Variant("train_student_het", axes=(("tau_s", "tau_s"), ("tau_t", "tau_t"))),), ("tau_s", "tau_t"),
           "het-s{tau_s}-t{tau_t}", "KD", "heterogeneous-temperature KD (Eq. 5)", kd=heterogeneous_kd,
           kd_args=("tau_s", "tau_t"), example={"tau_s": 1.0, "tau_t": 8.0}),
    Method("activation", ActivationRegGrid,
           tuple(Variant(f"train_student_act_{n}", (("norm", n),), (("lam", n),)) for n in ("l1", "l2")),
           ("norm", "lam"), "act-{norm}-{lam}", "ActReg", "activation regularization (Eqs. 6, 8-10)",
           penalty="activation", example={"norm": "l1", "lam": 1.0}),
    Method("logits", LogitsRegGrid,
           tuple(Variant(f"train_student_log_{n}", (("norm", n),), (("lam", n),)) for n in ("l2", "l2sq")),
           ("norm", "lam"), "log-{norm}-{lam}", "LogReg", "logits regularization (Eqs. 7-10)",
           penalty="logits", example={"norm": "l2", "lam": 1.0}),
    Method("combined", CombinedGrid,
           (Variant("train_student_combined", axes=(("tau_s", "tau_s"), ("tau_t", "tau_t"), ("norm", "norms"),
                                                    ("lam", "lambdas"))),),
           ("tau_s", "tau_t", "norm", "lam"), "het-s{tau_s}-t{tau_t}+act-{norm}-{lam}", "KD+ActReg",
           "heterogeneous KD with activation regularization", paper=False, kd=heterogeneous_kd,
           kd_args=("tau_s", "tau_t"), penalty="activation",
           example={"tau_s": 1.0, "tau_t": 8.0, "norm": "l1", "lam": 1.0}),
    Method("feature", FeatureHintGrid, (Variant("train_student_feature", axes=(("weight", "weights"),)),),
           ("weight",), "feat-w{weight}", "Feature", "feature-based KD (FitNets hints)", paper=False, hints=True,
           example={"weight": 1.0}),
    Method("feature_act", FeatureActGrid,
           (Variant("train_student_feature_act", axes=(("weight", "weights"), ("norm", "norms"),
                                                       ("lam", "lambdas"))),),
           ("weight", "norm", "lam"), "feat-w{weight}+act-{norm}-{lam}", "Feature+ActReg",
           "feature-based KD with activation regularization", paper=False, hints=True, penalty="activation",
           example={"weight": 1.0, "norm": "l1", "lam": 1.0}),
)}


PAPER_TABLE_III = ("KD", "LogReg", "ActReg")
"""The families of the paper's Table III, in its order; the others follow in registry order."""


def families() -> dict[str, tuple[str, ...]]:
    """Table III's families, each with its methods: the paper's in its order, then the others."""
    found: dict[str, tuple[str, ...]] = {family: () for family in PAPER_TABLE_III}
    for method in METHODS.values():
        if method.family is not None:
            found[method.family] = found.get(method.family, ()) + (method.name,)
    return {family: methods for family, methods in found.items() if methods}


def family_beyond_paper(family: str) -> bool:
    """A family none of whose methods the paper ran (its Sec. VI, future work)."""
    return not any(METHODS[name].paper for name in families()[family])


TABLE_III_MAX_ACCURACY_LOSS = 0.01
"""Table III keeps configurations whose mean relative accuracy delta is at least -1%."""


def best_configuration(configs: list[dict], max_accuracy_loss: float = TABLE_III_MAX_ACCURACY_LOSS) -> dict | None:
    """Table III's rule, on the configurations of one dataset (``results.json`` ``configurations``):
    the one with the lowest mean spikerate delta among those that lower the spikerate (delta < 0)
    with a mean relative accuracy delta of at least ``-max_accuracy_loss`` and are not at chance
    (collapsed or silent). The report's Table III and Fig. 4 and the findings pick with it."""
    eligible = [c for c in configs
                if is_number(c.get("delta_accuracy_mean")) and is_number(c.get("delta_spikerate_mean"))
                and c["delta_accuracy_mean"] >= -max_accuracy_loss and c["delta_spikerate_mean"] < 0
                and not at_chance(c.get("accuracy_mean"), c.get("num_classes"), c.get("total_spikes_mean"))]
    return min(eligible, key=lambda c: c["delta_spikerate_mean"]) if eligible else None


class GridsBase(Section):
    """``distillation.grids.<dataset>``: one grid per method of :data:`METHODS` that has one."""

    @property
    def uses_hints(self) -> bool:
        """Whether a grid holds a run of a method with hints (its student/teacher pairs need them)."""
        return any(m.hints and m.setting_grid(self) for m in METHODS.values())


DistillationGrids = create_model(
    "DistillationGrids", __base__=GridsBase,
    **{m.name: (m.grid, m.grid()) for m in METHODS.values() if m.grid is not None})
DistillationGrids.optional_keys = frozenset(m.name for m in METHODS.values() if m.grid is not None)
"""Every grid is empty by default, so a method may be left out of a dataset's grids (it runs
nothing there; a method added to the registry needs no edit of params.yaml)."""


# ----------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class StudentRun:
    """One student training: a method with its setting, on a dataset, for a seed."""

    dataset: str
    method: str
    seed: int
    settings: tuple[tuple[str, Any], ...] = ()

    @property
    def spec(self) -> Method:
        return METHODS[self.method]

    @property
    def setting(self) -> dict[str, Any]:
        return dict(self.settings)

    @property
    def name(self) -> str:
        """The run's name: its method's ``run_name`` with the setting (numbers as ``str`` writes
        them, as DVC renders them in matrix stage names)."""
        return self.spec.run_name.format(**self.setting)

    def folder(self, kind: str = "student") -> Path:
        return RUNS / kind / self.dataset / self.name / f"seed{self.seed}"

    @property
    def uses_teacher(self) -> bool:
        return self.spec.uses_teacher

    @property
    def uses_hints(self) -> bool:
        return self.spec.hints


def grids_of(params: Any, dataset: str) -> GridsBase:
    """``distillation.grids.<dataset>``, or empty grids (only the baseline runs) when it is not written."""
    found = params.distillation.grids.get(dataset)
    return DistillationGrids() if found is None else found


def own_seeds(grids: dict[str, GridsBase]) -> dict[tuple[str, str], list[int]]:
    """``{(dataset, method): seeds}`` of the grids of ``distillation.grids`` that write seeds of
    their own (:attr:`MethodGrid.seeds`)."""
    return {(dataset, method.name): getattr(by_method, method.name).seeds
            for dataset, by_method in grids.items() for method in METHODS.values()
            if method.grid is not None and getattr(by_method, method.name).seeds is not None}


def student_runs(params: Any, dataset: str) -> list[StudentRun]:
    """Every student of ``dataset``'s grids in params, method by method in registry order (the
    baseline first), each for its seeds (:meth:`Method.seeds`)."""
    grids = grids_of(params, dataset)
    return [StudentRun(dataset, method.name, seed, setting)
            for method in METHODS.values()
            for seed in method.seeds(params, grids)
            for setting in method.setting_grid(grids)]


def check_dataset(params: Any, dataset: str) -> None:
    """Refuse a ``--dataset`` that ``distillation.datasets`` does not list (a stale stage) before any work."""
    if dataset not in params.distillation.datasets:
        raise ParamsError(f"--dataset {dataset!r}: not in distillation.datasets {params.distillation.datasets}")


def check_run(params: Any, run: StudentRun) -> None:
    """Refuse a run that is not in the params grids (a stale matrix entry) before any work."""
    check_dataset(params, run.dataset)
    if run not in student_runs(params, run.dataset):
        raise ParamsError(f"{run.name} seed {run.seed}: not in distillation.grids.{run.dataset} (with its seeds) "
                          "of params.yaml")


def run_from_args(dataset: str, method: str, seed: int, **setting: Any) -> StudentRun:
    """The :class:`StudentRun` a ``train_student_*`` stage names on its command line; raises
    :class:`~lowspike.errors.ParamsError` when a setting of the method is missing."""
    if method not in METHODS:
        raise ParamsError(f"--method {method!r}: unknown method; allowed: {', '.join(METHODS)}")
    keys = METHODS[method].settings
    missing = [k for k in keys if setting.get(k) is None]
    if missing:
        raise ParamsError(f"--method {method}: needs {', '.join('--' + k.replace('_', '-') for k in missing)}")
    return StudentRun(dataset, method, seed, tuple((k, setting[k]) for k in keys))

