"""The papers' findings as checks computed from a run's aggregated results, each decided against
its noise (docs/statistics.md).

Each check returns a :class:`Finding`: the claim, its mark and the numbers behind it, per
dataset and model. The point estimates pick the models the papers' tables pick (Tables 1-2 and
III, by their rules); the claim is then computed on every paired bootstrap resample of the test
samples (:class:`lowspike.stats.Evidence`, the same resamples for every finding of a dataset)
and marked by :func:`lowspike.stats.decide`: ``holds`` when at least 95% of the resamples satisfy
it and each margin (how far the point estimate lies beyond the claim's threshold) exceeds the
baseline's seed-to-seed spread of that quantity, ``does not hold`` when at most 5% do,
``undecided`` otherwise. A model at chance accuracy (a collapsed or silent network,
:func:`at_chance`) never counts as a gain nor as best. Picking the best of a grid by its point
estimate flatters it (the winner's curse): a pick's resamples are the fair test of it.

Regularization paper (Narduzzi et al. 2022): (a) per architecture some regularizer cuts SynOps
by >= 80% with the SNN accuracy within 0.5 pt of the baseline (L0.5 -96.4% on the MLP, L1 -94.0%
on LeNet-5, Table 1); (b) L1/Lp beat Hoyer and Hoyer-Square in AUC (Table 3); (c) SynOps fall
more than EFLOPS (Sec. 4.1); (d) the baseline SNN is within 1 pt of its DNN. Beyond the paper
(its Sec. 5): (i) the SynOps regularizer and (j) joint weight and activity regularization against
the paper's best regularizer at equal accuracy.

Distillation paper (Louis et al.): (e) activation regularization cuts the spikerate by >= 50%
within 1% relative accuracy on MNIST (Table III, -87.8%), and (e2) on GSC and CIFAR-10 by the same
fraction of the paper's -26.7% and -7.3%; (f) with tau_s = 1, heterogeneous KD lowers the
spikerate more as tau_t grows, and (1, 8) is below the baseline (Fig. 5); (g) MSE KD does not
lower it (Fig. 2); (h) logits regularization lowers it (Fig. 7, Table III). Beyond the paper (its
Sec. VI): (k) KD combined with activation regularization and (l) feature-based KD against the best
activation regularization at equal accuracy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import numpy as np

from ..data import DATASETS
from ..distillation import METHODS, TABLE_III_MAX_ACCURACY_LOSS, best_configuration
from ..regularizers import entry, regularizer_label as reg_label
from ..stats import FAILS, HOLDS, NOT_RUN, UNDECIDED, Decision, Evidence, Margin, combine, decide
from .common import at_chance
from .curves import resampled_aucs

__all__ = ["FAILS", "HOLDS", "NOT_RUN", "UNDECIDED", "Finding", "conversion_findings", "distillation_findings"]

SYNOPS_CUT = -80.0
MAX_DROP_PTS = 0.5
SNN_DNN_GAP_PTS = 1.0
SPIKERATE_CUTS = {"mnist": -0.50, "gsc": -0.15, "cifar10": -0.04}
"""(e) per paper dataset: the paper's ActReg cuts the spikerate by 87.8% (MNIST), 26.7% (GSC) and
7.3% (CIFAR-10) (Table III); the claim is held at 50% on MNIST and at the same fraction (57%) of
the paper's figure on the others."""
MAX_LOSS = TABLE_III_MAX_ACCURACY_LOSS


@dataclass
class Finding:
    key: str
    paper: str  # "regularization" | "distillation"
    claim: str
    mark: str
    evidence: str
    beyond_paper: bool = False
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _fmt_ci(interval: list[float] | None, unit: str = "%", scale: float = 1.0, digits: int = 1) -> str:
    if interval is None:
        return "[n/a]"
    return f"[{scale * interval[0]:+.{digits}f}, {scale * interval[1]:+.{digits}f}]{unit}"


def _how_sure(decision: Decision) -> str:
    """``holds: 99% of resamples; margins 14.2 vs seed spread 3.1, ...``."""
    margins = ", ".join(f"{m.value:.3g} vs {'n/a' if m.spread is None else f'{m.spread:.3g}'}"
                        for m in decision.margins)
    support = "n/a" if decision.support is None else f"{100 * decision.support:.0f}%"
    return f"{decision.mark}: {support} of resamples" + (f"; margin vs seed spread {margins}" if margins else "")


def _part(numbers: dict, where: str, decision: Decision, **figures: Any) -> None:
    numbers[where] = {**figures, "decision": decision.to_dict()}


def _stands_in_for(dataset: str) -> str:
    spec = DATASETS.get(dataset)
    return spec.stands_in_for if spec else "mnist"


# ------------------------------------------------------------------ regularization paper


@dataclass
class ConversionView:
    """What the regularization paper's checks read of ``results.json``, with the evidence of
    its models (per-sample records by ``(dataset, arch, point)``)."""

    result: dict
    evidence: Evidence
    paper_specs: list[str]
    beyond_specs: list[str]
    arch_labels: dict[str, str]

    def groups(self) -> list[tuple[str, str]]:
        return sorted({(s["dataset"], s["arch"]) for s in self.result.get("selections", [])})

    def label(self, arch: str) -> str:
        return self.arch_labels.get(arch, arch)

    def baseline(self, dataset: str, arch: str) -> dict | None:
        return next((r for r in self.result.get("rows", []) if r["dataset"] == dataset and r["arch"] == arch
                     and r["point"] == "baseline" and r.get("status") == "ok"), None)

    def spread(self, dataset: str, arch: str, key: str) -> float | None:
        entry_ = next((s for s in self.result.get("seed_spread", []) if (s["dataset"], s["arch"]) == (dataset, arch)),
                      {})
        return entry_.get(key)

    def resampled(self, dataset: str, arch: str, point: str) -> bool:
        return self.evidence.has((dataset, arch, point)) and self.evidence.has((dataset, arch, "baseline"))

    def change(self, dataset: str, arch: str, point: str, field_: str) -> np.ndarray:
        return self.evidence.change_pct((dataset, arch, point), (dataset, arch, "baseline"), field_)

    def accuracy_delta(self, dataset: str, arch: str, point: str) -> np.ndarray:
        return self.evidence.delta_pts((dataset, arch, point), (dataset, arch, "baseline"), "snn_correct")

    def usable_selections(self, dataset: str, arch: str, specs: Iterable[str] | None = None) -> list[dict]:
        """Selections with a selected model that is not at chance (the selection rule already keeps
        the accuracy within the allowed drop of a baseline that is not at chance itself)."""
        baseline = self.baseline(dataset, arch)
        if baseline is None or at_chance(baseline.get("snn_accuracy"), baseline.get("num_classes"),
                                         baseline.get("spikes")):
            return []
        return [s for s in self.result.get("selections", [])
                if (s["dataset"], s["arch"]) == (dataset, arch) and s.get("selected") is not None
                and (specs is None or s["regularizer"] in specs)]

    def candidates(self, dataset: str, arch: str, specs: Iterable[str]) -> list[dict]:
        """Every trained point of ``specs`` (for a claim no point estimate satisfies: its support)."""
        specs = set(specs)
        return [r for r in self.result.get("rows", []) if (r["dataset"], r["arch"]) == (dataset, arch)
                and r["regularizer"] in specs and r.get("status") == "ok"]


def _cut_within_drop(view: ConversionView, dataset: str, arch: str, point: str) -> np.ndarray:
    return ((view.change(dataset, arch, point, "synops") <= SYNOPS_CUT)
            & (view.accuracy_delta(dataset, arch, point) > -MAX_DROP_PTS))


def _best_support(supports: Iterable[float], level: float) -> Decision:
    """The mark of a claim that no point estimate satisfies: decided by the candidate that
    satisfies it in the most resamples (never ``holds``: its margin is not on the claim's side)."""
    support = max(supports, default=0.0)
    return Decision(FAILS if support <= 1 - level else UNDECIDED, support)


def finding_a(view: ConversionView) -> Finding:
    """(a) Per architecture some regularizer cuts SynOps by >= 80% within 0.5 pt: Table 1's pick
    with the fewest SynOps, on each resample its SynOps change <= -80% and its SNN accuracy drop
    < 0.5 pt; margins against the baseline's seed spread of SynOps (%) and accuracy (pts)."""
    marks, lines, numbers = [], [], {}
    for dataset, arch in view.groups():
        where = f"{dataset}/{arch}"
        usable = [s for s in view.usable_selections(dataset, arch, view.paper_specs)
                  if view.resampled(dataset, arch, s["selected"])]
        if not usable:
            base = view.baseline(dataset, arch)
            rows = [r for r in view.candidates(dataset, arch, view.paper_specs) if view.resampled(dataset, arch,
                                                                                                  r["point"])]
            if base is None:
                decision = Decision(NOT_RUN, None)
            elif at_chance(base.get("snn_accuracy"), base.get("num_classes"), base.get("spikes")):
                decision = Decision(FAILS, None)  # a baseline at chance: no "gain" counts
            else:
                decision = _best_support((float(_cut_within_drop(view, dataset, arch, r["point"]).mean())
                                          for r in rows), view.evidence.level)
            marks.append(decision.mark)
            _part(numbers, where, decision)
            lines.append(f"{view.label(arch)} ({dataset}): no regularizer kept the accuracy within {MAX_DROP_PTS} pt "
                         f"[{_how_sure(decision)}]")
            continue
        best = min(usable, key=lambda s: s["synops_change_pct"])
        decision = decide(_cut_within_drop(view, dataset, arch, best["selected"]), [
            Margin(SYNOPS_CUT - best["synops_change_pct"], view.spread(dataset, arch, "synops_pct")),
            Margin(best["snn_accuracy_delta_pts"] + MAX_DROP_PTS, view.spread(dataset, arch, "snn_accuracy_pts"))],
            view.evidence.level)
        marks.append(decision.mark)
        _part(numbers, where, decision, regularizer=best["regularizer"], **{"lambda": best["lambda"]},
              synops_change_pct=best["synops_change_pct"], synops_change_pct_ci=best.get("synops_change_pct_ci"),
              snn_accuracy_delta_pts=best.get("snn_accuracy_delta_pts"),
              snn_accuracy_delta_pts_ci=best.get("snn_accuracy_delta_pts_ci"))
        lines.append(f"{view.label(arch)} ({dataset}): {reg_label(best['regularizer'])} @ {best['lambda']:g} "
                     f"{_fmt_pct(best['synops_change_pct'])} {_fmt_ci(best.get('synops_change_pct_ci'))} SynOps, SNN "
                     f"accuracy {best.get('snn_accuracy_delta_pts', 0):+.2f} "
                     f"{_fmt_ci(best.get('snn_accuracy_delta_pts_ci'), ' pts')} [{_how_sure(decision)}]")
    return Finding("a", "regularization",
                   f"Per architecture, some regularizer cuts SynOps by >= {-SYNOPS_CUT:.0f}% with the SNN "
                   f"accuracy within {MAX_DROP_PTS} pt of the baseline (paper: L0.5 -96.4% on the MLP, "
                   f"L1 -94.0% on LeNet-5)", combine(marks), "; ".join(lines), numbers=numbers)


def _family_aucs(view: ConversionView, dataset: str, arch: str, specs: list[str]) -> tuple[dict, np.ndarray | None]:
    """The smoothed AUC of each regularizer of ``specs`` (point estimates) and the family's mean
    AUC per resample (None when a point lacks per-sample records)."""
    curves = {c["regularizer"]: c for c in view.result.get("curves", []) if (c["dataset"], c["arch"]) == (dataset, arch)}
    aucs = {s: curves[s].get("auc_smoothed") for s in specs if s in curves and curves[s].get("auc_smoothed") is not None}
    rows = [r for r in view.result.get("rows", []) if (r["dataset"], r["arch"]) == (dataset, arch)
            and r.get("status") == "ok"]
    if not aucs or not all(view.evidence.has((dataset, arch, r["point"])) for r in rows):
        return aucs, None
    means = {r["point"]: (view.evidence.means((dataset, arch, r["point"]), "synops"),
                          view.evidence.means((dataset, arch, r["point"]), "snn_correct")) for r in rows}
    max_synops = np.max(np.stack([synops for synops, _ in means.values()]), axis=0)
    chance = 1.0 / max(1, rows[0].get("num_classes") or 10)
    per_spec = []
    for spec in aucs:
        points = ["baseline"] + [r["point"] for r in rows if r["regularizer"] == spec]
        per_spec.append(resampled_aucs(np.stack([means[p][0] for p in points], axis=1),
                                       np.stack([means[p][1] for p in points], axis=1), max_synops, chance))
    return aucs, np.mean(per_spec, axis=0)


def finding_b(view: ConversionView) -> Finding:
    """(b) L1/Lp beat Hoyer and Hoyer-Square in the area under the accuracy-SynOps curve: on each
    resample the L1/Lp family's mean smoothed AUC exceeds the Hoyer family's; margin against the
    baseline's seed spread of accuracy (an AUC is an accuracy averaged over normalized SynOps)."""
    marks, lines, numbers = [], [], {}
    lp_family = [s for s in view.paper_specs if entry(s).family == "lp"]
    hoyer_family = [s for s in view.paper_specs if entry(s).family == "hoyer"]
    for dataset, arch in view.groups():
        lp, lp_resampled = _family_aucs(view, dataset, arch, lp_family)
        hoyer, hoyer_resampled = _family_aucs(view, dataset, arch, hoyer_family)
        if not lp or not hoyer or lp_resampled is None or hoyer_resampled is None:
            marks.append(NOT_RUN)
            continue
        lp_mean, hoyer_mean = sum(lp.values()) / len(lp), sum(hoyer.values()) / len(hoyer)
        spread = view.spread(dataset, arch, "snn_accuracy_pts")
        decision = decide(lp_resampled > hoyer_resampled,
                          [Margin(lp_mean - hoyer_mean, None if spread is None else spread / 100.0)],
                          view.evidence.level)
        marks.append(decision.mark)
        difference_ci = view.evidence.interval(dataset, lp_resampled - hoyer_resampled)
        _part(numbers, f"{dataset}/{arch}", decision, lp_family_mean_auc=lp_mean, hoyer_family_mean_auc=hoyer_mean,
              difference_ci=difference_ci, auc_smoothed={**lp, **hoyer})
        lines.append(f"{view.label(arch)} ({dataset}): mean smoothed AUC L1/Lp {lp_mean:.3f} vs H/Hs {hoyer_mean:.3f}, "
                     f"difference {_fmt_ci(difference_ci, '', 1.0, 3)} ("
                     + ", ".join(f"{reg_label(s)} {a:.3f}" for s, a in {**lp, **hoyer}.items())
                     + f") [{_how_sure(decision)}]")
    return Finding("b", "regularization", "L1/Lp regularizers beat Hoyer and Hoyer-Square in area under the "
                   "accuracy-SynOps curve (mean smoothed AUC of each family; paper Table 3: L1/L0.5 0.970-"
                   "0.974 vs H/Hs 0.869-0.891)", combine(marks), "; ".join(lines), numbers=numbers)


def finding_c(view: ConversionView) -> Finding:
    """(c) SynOps fall more than EFLOPS for every selected model: on each resample, every
    selection's SynOps change is below its EFLOPS change; margin, the smallest gap (% points)
    against the baseline's seed spread of SynOps (%)."""
    selected = [s for dataset, arch in view.groups() for s in view.usable_selections(dataset, arch, view.paper_specs)
                if view.resampled(dataset, arch, s["selected"])]
    if not selected:
        return Finding("c", "regularization", "SynOps fall more than EFLOPS", NOT_RUN, "no selected model")
    satisfied = np.ones(view.evidence.resamples, dtype=bool)
    for s in selected:
        satisfied &= (view.change(s["dataset"], s["arch"], s["selected"], "synops")
                      < view.change(s["dataset"], s["arch"], s["selected"], "eflops"))
    gaps = sorted(s["eflops_change_pct"] - s["synops_change_pct"] for s in selected)
    spreads = [view.spread(s["dataset"], s["arch"], "synops_pct") for s in selected]
    decision = decide(satisfied, [Margin(gaps[0], None if None in spreads else max(spreads))], view.evidence.level)
    more = sum(1 for s in selected if s["synops_change_pct"] < s["eflops_change_pct"])
    return Finding(
        "c", "regularization", "SynOps fall more than EFLOPS (the selected models of Table 1; paper: -83% to "
        "-96% SynOps for -4% to -30% EFLOPS on the MLP)", decision.mark,
        f"{more} of {len(selected)} selected models; SynOps change minus EFLOPS change: median "
        f"{gaps[len(gaps) // 2]:.1f} pts (range {gaps[0]:.1f} to {gaps[-1]:.1f}) [{_how_sure(decision)}]",
        numbers={"selected": len(selected), "synops_fell_more": more, "decision": decision.to_dict()})


def finding_d(view: ConversionView) -> Finding:
    """(d) The baseline SNN is within 1 pt of its DNN: on each resample ``|SNN - DNN| <= 1`` pt on
    the same test samples; margin against the seed spread of that gap."""
    marks, lines, numbers = [], [], {}
    for dataset, arch in view.groups():
        base = view.baseline(dataset, arch)
        key = (dataset, arch, "baseline")
        if base is None or base.get("dnn_accuracy") is None or base.get("snn_accuracy") is None \
                or not view.evidence.has(key):
            marks.append(NOT_RUN)
            continue
        gap = 100.0 * (base["snn_accuracy"] - base["dnn_accuracy"])
        resampled = 100.0 * (view.evidence.means(key, "snn_correct") - view.evidence.means(key, "dnn_correct"))
        decision = decide(np.abs(resampled) <= SNN_DNN_GAP_PTS,
                          [Margin(SNN_DNN_GAP_PTS - abs(gap), view.spread(dataset, arch, "snn_dnn_gap_pts"))],
                          view.evidence.level)
        marks.append(decision.mark)
        gap_ci = view.evidence.interval(dataset, resampled)
        _part(numbers, f"{dataset}/{arch}", decision, dnn_accuracy=base["dnn_accuracy"],
              snn_accuracy=base["snn_accuracy"], gap_pts_ci=gap_ci)
        lines.append(f"{view.label(arch)} ({dataset}): DNN {100 * base['dnn_accuracy']:.2f}% / SNN "
                     f"{100 * base['snn_accuracy']:.2f}% ({gap:+.2f} pts {_fmt_ci(gap_ci, ' pts')}) "
                     f"[{_how_sure(decision)}]")
    return Finding("d", "regularization", f"The baseline SNN is within {SNN_DNN_GAP_PTS:.0f} pt of its DNN",
                   combine(marks), "; ".join(lines), numbers=numbers)


def finding_beyond(view: ConversionView, key: str, title: str, specs: list[str]) -> Finding:
    """(i), (j): regularizers beyond the paper against the paper's best at equal accuracy: on each
    resample ours has fewer SynOps (a lower change) than the paper's pick and keeps the accuracy
    within 0.5 pt; margins against the seed spread of SynOps (%) and accuracy (pts)."""
    marks, lines, numbers = [], [], {}
    for dataset, arch in view.groups():
        ours = [s for s in view.usable_selections(dataset, arch, specs) if view.resampled(dataset, arch, s["selected"])]
        paper_best = [s for s in view.usable_selections(dataset, arch, view.paper_specs)
                      if view.resampled(dataset, arch, s["selected"])]
        if not specs or not paper_best:
            marks.append(NOT_RUN)
            continue
        reference = min(paper_best, key=lambda s: s["synops_change_pct"])
        if not ours:
            marks.append(FAILS)
            lines.append(f"{view.label(arch)} ({dataset}): no point within {MAX_DROP_PTS} pt")
            continue
        best = min(ours, key=lambda s: s["synops_change_pct"])
        fewer = (view.change(dataset, arch, best["selected"], "synops")
                 < view.change(dataset, arch, reference["selected"], "synops"))
        decision = decide(fewer & (view.accuracy_delta(dataset, arch, best["selected"]) > -MAX_DROP_PTS), [
            Margin(reference["synops_change_pct"] - best["synops_change_pct"], view.spread(dataset, arch, "synops_pct")),
            Margin(best["snn_accuracy_delta_pts"] + MAX_DROP_PTS, view.spread(dataset, arch, "snn_accuracy_pts"))],
            view.evidence.level)
        marks.append(decision.mark)
        ratio = (100 + best["synops_change_pct"]) / max(100 + reference["synops_change_pct"], 1e-9)
        _part(numbers, f"{dataset}/{arch}", decision, ours=best["regularizer"],
              ours_synops_change_pct=best["synops_change_pct"], ours_eflops_change_pct=best.get("eflops_change_pct"),
              paper_best=reference["regularizer"], paper_best_synops_change_pct=reference["synops_change_pct"],
              synops_ratio=ratio)
        lines.append(f"{view.label(arch)} ({dataset}): {reg_label(best['regularizer'])} @ {best['lambda']:g} "
                     f"{_fmt_pct(best['synops_change_pct'])} SynOps ({_fmt_pct(best.get('eflops_change_pct'))} "
                     f"EFLOPS) vs the paper's best, {reg_label(reference['regularizer'])} @ "
                     f"{reference['lambda']:g}, {_fmt_pct(reference['synops_change_pct'])} "
                     f"({_fmt_pct(reference.get('eflops_change_pct'))} EFLOPS): {ratio:.2f}x its SynOps "
                     f"[{_how_sure(decision)}]")
    return Finding(key, "regularization", f"{title} beats the paper's best regularizer at equal accuracy "
                   f"(fewer SynOps within {MAX_DROP_PTS} pt of the baseline)", combine(marks),
                   "; ".join(lines) or "not in the grid", beyond_paper=True, numbers=numbers)


def conversion_findings(result: dict, evidence: Evidence, paper_specs: Iterable[str], beyond_specs: Iterable[str],
                        archs_label: dict[str, str] | None = None) -> list[Finding]:
    """Findings (a)-(d), (i), (j) of the regularization paper's study from ``results.json`` and
    the evidence of its models."""
    view = ConversionView(result, evidence, list(paper_specs), list(beyond_specs), archs_label or {})
    return [finding_a(view), finding_b(view), finding_c(view), finding_d(view),
            finding_beyond(view, "i", "The SynOps regularizer (Sorbaro et al. 2020)",
                           [s for s in view.beyond_specs if "+" not in s]),
            finding_beyond(view, "j", "Joint weight (L1) and activity regularization",
                           [s for s in view.beyond_specs if "+" in s])]


# ------------------------------------------------------------------ distillation paper


def _usable_config(config: dict, num_classes: int | None) -> bool:
    return (config.get("delta_spikerate_mean") is not None and config.get("delta_accuracy_mean") is not None
            and not at_chance(config.get("accuracy_mean"), num_classes, config.get("total_spikes_mean")))


def _describe(config: dict) -> str:
    return (f"{config['run']}: spikerate {100 * config['delta_spikerate_mean']:+.1f}% "
            f"{_fmt_ci(config.get('delta_spikerate_ci'), '%', 100.0)}, accuracy "
            f"{100 * config['delta_accuracy_mean']:+.2f}% {_fmt_ci(config.get('delta_accuracy_ci'), '%', 100.0)} "
            f"(relative)")


@dataclass
class DistillationView:
    """What the distillation paper's checks read of ``results.json``, with the evidence of its
    students (per-sample records by ``(dataset, run, seed)``)."""

    result: dict
    evidence: Evidence
    datasets: list[str]
    num_classes: dict[str, int]

    def configs(self, dataset: str, methods: Iterable[str]) -> list[dict]:
        methods = set(methods)
        return [c for c in self.result.get("configurations", []) if c["dataset"] == dataset and c["method"] in methods]

    def baseline_ok(self, dataset: str) -> bool:
        base = self.configs(dataset, ["baseline"])
        return bool(base) and not at_chance(base[0].get("accuracy_mean"), self.num_classes.get(dataset),
                                            base[0].get("total_spikes_mean"))

    def spread(self, dataset: str, key: str) -> float | None:
        found = next((s for s in self.result.get("baseline_spread", []) if s["dataset"] == dataset), {})
        return found.get(key)

    def resampled(self, config: dict) -> bool:
        return bool(config.get("resampled_seeds"))

    def deltas(self, config: dict, field_: str) -> np.ndarray:
        """The configuration's relative delta (Eqs. 11, 13) per resample, averaged over its seeds,
        each seed against the baseline of its seed on the same test samples."""
        dataset = config["dataset"]
        return np.mean([self.evidence.relative_delta((dataset, config["run"], seed), (dataset, "baseline", seed),
                                                     field_) for seed in config["resampled_seeds"]], axis=0)

    def within_loss(self, config: dict) -> np.ndarray:
        return self.deltas(config, "correct") >= -MAX_LOSS

    def best_within(self, dataset: str, methods: Iterable[str]) -> dict | None:
        """Table III's choice among the dataset's configurations of ``methods``."""
        return best_configuration([c for c in self.configs(dataset, methods) if self.resampled(c)])


def _lowering(view: DistillationView, dataset: str, config: dict, cut: float) -> Decision:
    """A configuration lowers the spikerate below ``cut`` (a relative delta) within 1% accuracy:
    margins against the baseline's seed spread of spikerate and accuracy (relative)."""
    return decide((view.deltas(config, "spikes") <= cut) & view.within_loss(config), [
        Margin(cut - config["delta_spikerate_mean"], view.spread(dataset, "spikerate")),
        Margin(config["delta_accuracy_mean"] + MAX_LOSS, view.spread(dataset, "accuracy"))], view.evidence.level)


def _no_pick(view: DistillationView, dataset: str, configs: list[dict], cut: float) -> Decision:
    return _best_support((float(((view.deltas(c, "spikes") <= cut) & view.within_loss(c)).mean())
                          for c in configs if view.resampled(c)), view.evidence.level)


def finding_activation(view: DistillationView, key: str, papers: tuple[str, ...], claim: str) -> Finding:
    """(e), (e2): activation regularization cuts the spikerate within 1% accuracy by the paper's
    share on each of its datasets (checked on the datasets standing in for them): Table III's
    ActReg pick, on each resample its spikerate delta <= the cut and its accuracy delta >= -1%."""
    marks, lines, numbers = [], [], {}
    for dataset in view.datasets:
        if _stands_in_for(dataset) not in papers:
            continue
        configs = view.configs(dataset, ["activation"])
        if not configs or not view.baseline_ok(dataset):
            marks.append(NOT_RUN)
            lines.append(f"{dataset}: {'baseline at chance' if configs else 'no activation regularization run'}")
            continue
        cut = SPIKERATE_CUTS[_stands_in_for(dataset)]
        best = view.best_within(dataset, ["activation"])
        if best is None:
            decision = _no_pick(view, dataset, configs, cut)
            marks.append(decision.mark)
            _part(numbers, dataset, decision)
            lines.append(f"{dataset}: no configuration within 1% accuracy ("
                         + ", ".join(_describe(c) for c in configs if _usable_config(c, view.num_classes.get(dataset)))
                         + f") [{_how_sure(decision)}]")
            continue
        decision = _lowering(view, dataset, best, cut)
        marks.append(decision.mark)
        _part(numbers, dataset, decision, run=best["run"])
        lines.append(f"{dataset} (needs <= {100 * cut:.0f}%): {_describe(best)} [{_how_sure(decision)}]")
    return Finding(key, "distillation", claim, combine(marks), "; ".join(lines) or "not run", numbers=numbers)


def finding_f(view: DistillationView) -> Finding:
    """(f) With tau_s = 1, heterogeneous KD lowers the spikerate more as tau_t grows: on each
    resample the spikerate deltas fall strictly with tau_t and (1, 8)'s is below 0; margins, the
    smallest step and (1, 8)'s delta, against the baseline's seed spread of spikerate."""
    marks, lines, numbers = [], [], {}
    for dataset in view.datasets:
        het = {c["setting"].get("tau_t"): c for c in view.configs(dataset, ["heterogeneous"])
               if c["setting"].get("tau_s") == 1.0 and _usable_config(c, view.num_classes.get(dataset))
               and view.resampled(c)}
        if len(het) < 2 or 8.0 not in het or not view.baseline_ok(dataset):
            marks.append(NOT_RUN)
            lines.append(f"{dataset}: needs tau_s = 1 with two tau_t values including 8")
            continue
        taus = sorted(het)
        deltas = [het[t]["delta_spikerate_mean"] for t in taus]
        resampled = [view.deltas(het[t], "spikes") for t in taus]
        satisfied = np.all([b < a for a, b in zip(resampled, resampled[1:])], axis=0) & (view.deltas(het[8.0], "spikes")
                                                                                         < 0)
        spread = view.spread(dataset, "spikerate")
        decision = decide(satisfied, [Margin(min(a - b for a, b in zip(deltas, deltas[1:])), spread),
                                      Margin(-het[8.0]["delta_spikerate_mean"], spread)], view.evidence.level)
        marks.append(decision.mark)
        _part(numbers, dataset, decision, tau_t=taus, delta_spikerate=deltas)
        lines.append(f"{dataset}: tau_t " + ", ".join(f"{t:g}: {100 * d:+.1f}%" for t, d in zip(taus, deltas))
                     + f" [{_how_sure(decision)}]")
    return Finding("f", "distillation", "With tau_s = 1, heterogeneous KD lowers the spikerate more as tau_t "
                   "grows, and (tau_s 1, tau_t 8) is below the baseline (paper Fig. 5)", combine(marks),
                   "; ".join(lines), numbers=numbers)


def finding_g(view: DistillationView) -> Finding:
    """(g) MSE KD does not lower the spikerate: on each resample every alpha's spikerate delta is
    >= 0; margin, the smallest delta, against the baseline's seed spread of spikerate (so a
    delta within the training noise of 0 leaves it undecided)."""
    marks, lines, numbers = [], [], {}
    for dataset in view.datasets:
        configs = [c for c in view.configs(dataset, ["mse"]) if _usable_config(c, view.num_classes.get(dataset))
                   and view.resampled(c)]
        if not configs or not view.baseline_ok(dataset):
            marks.append(NOT_RUN)
            continue
        satisfied = np.all([view.deltas(c, "spikes") >= 0 for c in configs], axis=0)
        decision = decide(satisfied, [Margin(min(c["delta_spikerate_mean"] for c in configs),
                                             view.spread(dataset, "spikerate"))], view.evidence.level)
        marks.append(decision.mark)
        _part(numbers, dataset, decision)
        lines.append(f"{dataset}: " + ", ".join(f"{c['run']} {100 * c['delta_spikerate_mean']:+.1f}% "
                                                f"{_fmt_ci(c.get('delta_spikerate_ci'), '%', 100.0)}" for c in configs)
                     + f" [{_how_sure(decision)}]")
    return Finding("g", "distillation", "MSE KD does not lower the spikerate (paper Fig. 2: it raises it, then "
                   "returns to the baseline)", combine(marks), "; ".join(lines) or "not in the grid", numbers=numbers)


def finding_h(view: DistillationView) -> Finding:
    """(h) Logits regularization lowers the spikerate within 1% accuracy: Table III's LogReg pick,
    on each resample its spikerate delta < 0 and its accuracy delta >= -1%."""
    marks, lines, numbers = [], [], {}
    for dataset in view.datasets:
        configs = [c for c in view.configs(dataset, ["logits"]) if _usable_config(c, view.num_classes.get(dataset))]
        if not configs or not view.baseline_ok(dataset):
            marks.append(NOT_RUN)
            continue
        best = view.best_within(dataset, ["logits"])
        decision = _lowering(view, dataset, best, 0.0) if best else _no_pick(view, dataset, configs, 0.0)
        marks.append(decision.mark)
        _part(numbers, dataset, decision, run=best["run"] if best else None)
        lines.append(f"{dataset}: " + (_describe(best) if best else "none within 1% accuracy")
                     + f" [{_how_sure(decision)}]")
    return Finding("h", "distillation", "Logits regularization lowers the spikerate (paper Table III: MNIST "
                   "-80.7%, GSC -9.9%)", combine(marks), "; ".join(lines) or "not in the grid", numbers=numbers)


def finding_beats_activation(view: DistillationView, key: str, methods: list[str], title: str) -> Finding:
    """(k), (l): methods beyond the paper against the best activation regularization: on each
    resample ours has a lower spikerate delta than ActReg's pick and keeps its accuracy delta >= -1%."""
    marks, lines, numbers = [], [], {}
    for dataset in view.datasets:
        ours = view.best_within(dataset, methods)
        reference = view.best_within(dataset, ["activation"])
        if not view.configs(dataset, methods) or reference is None or not view.baseline_ok(dataset):
            marks.append(NOT_RUN)
            continue
        if ours is None:
            marks.append(FAILS)
            lines.append(f"{dataset}: none within 1% accuracy")
            continue
        decision = decide((view.deltas(ours, "spikes") < view.deltas(reference, "spikes")) & view.within_loss(ours), [
            Margin(reference["delta_spikerate_mean"] - ours["delta_spikerate_mean"], view.spread(dataset, "spikerate")),
            Margin(ours["delta_accuracy_mean"] + MAX_LOSS, view.spread(dataset, "accuracy"))], view.evidence.level)
        marks.append(decision.mark)
        _part(numbers, dataset, decision, ours=ours["run"], reference=reference["run"])
        lines.append(f"{dataset}: {_describe(ours)} vs ActReg {_describe(reference)} [{_how_sure(decision)}]")
    return Finding(key, "distillation", f"{title} beats the paper's best method (ActReg) at equal accuracy "
                   "(a lower spikerate within 1% accuracy)", combine(marks), "; ".join(lines) or "not in the grid",
                   beyond_paper=True, numbers=numbers)


def distillation_findings(result: dict, evidence: Evidence, datasets: Iterable[str],
                          num_classes: dict[str, int]) -> list[Finding]:
    """Findings (e)-(h), (k), (l) of the distillation paper's study from ``results.json`` and the
    evidence of its students."""
    view = DistillationView(result, evidence, list(datasets), num_classes)
    hints = [m.name for m in METHODS.values() if m.hints]
    return [
        finding_activation(view, "e", ("mnist",), "Activation regularization cuts the spikerate by >= 50% within "
                           "1% accuracy on MNIST (paper Table III: -87.8% at +0.00%)"),
        finding_activation(view, "e2", ("gsc", "cifar10"), "Activation regularization cuts the spikerate within 1% "
                           "accuracy on GSC and CIFAR-10 by >= 57% of the paper's figure: >= 15% on GSC (paper: "
                           "-26.7%), >= 4% on CIFAR-10 (paper: -7.3%)"),
        finding_f(view), finding_g(view), finding_h(view),
        finding_beats_activation(view, "k", ["combined"], "KD combined with activation regularization"),
        finding_beats_activation(view, "l", hints, "Feature-based KD (FitNets hints)"),
    ]
