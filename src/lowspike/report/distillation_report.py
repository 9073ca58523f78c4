"""The distillation paper's report: Tables II-III, Figs. 2-7, paper vs run.

Input: ``results/distillation/results.json`` written by ``studies.distillation.write_aggregate``:
``rows`` (one evaluated student per dataset x run x seed), ``configurations`` (per dataset x
run: mean and sample standard deviation over seeds of accuracy, total spikes, spikerate
(Eq. 12, spikes per neuron per inference, in [0, T]) and of the relative deltas
``delta = (x - x_baseline) / x_baseline`` against the same-seed baseline (Eq. 11 for
accuracy, Eq. 13 for spikerate), ``teachers`` and ``best`` (Table III: per family the lowest
spikerate delta whose accuracy delta is at least ``-max_accuracy_loss``). Deltas are shown
in percent.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..config import Params
from ..distillation import TABLE_III_MAX_ACCURACY_LOSS, best_configuration, families, family_beyond_paper, own_seeds
from ..models import label as model_label
from ..regularizers import BEYOND_MARK
from . import published
from .common import Context, plural, usable
from .document import Document, Heading, Paragraph
from .findings_tables import findings_blocks
from .figures import RenderedFigure, finite, new_figure, placeholder, render
from .tables import (
    MISSING,
    Table,
    fmt_count,
    fmt_energy,
    fmt_fraction_percent,
    fmt_lambda,
    fmt_mean_std,
    fmt_number,
    fmt_pair,
)

FAMILIES = families()
BEYOND_PAPER = tuple(f for f in FAMILIES if family_beyond_paper(f))
"""Families the paper did not run (its Sec. VI, future work), marked \u2020 in the tables."""
NOT_RUN = "not run"


def _pct(value) -> str:
    return fmt_fraction_percent(value, sign=True)


def _acc(value) -> str:
    return fmt_fraction_percent(value)


class DistillationResults:
    """Indexed view of ``results.json`` of the distillation study."""

    def __init__(self, results: dict[str, Any] | None):
        results = results or {}
        self.rows: list[dict] = results.get("rows", [])
        self.configurations: list[dict] = results.get("configurations", [])
        self.teachers: list[dict] = results.get("teachers", [])
        self.best: dict[str, dict] = results.get("best", {})
        self.findings: list[dict] | None = results.get("findings")
        self.break_even: list[dict] = results.get("break_even", [])
        self.baseline_spread: list[dict] = results.get("baseline_spread", [])
        loss = results.get("best_max_accuracy_loss")
        self.max_accuracy_loss = loss if usable(loss) else TABLE_III_MAX_ACCURACY_LOSS

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys([c["dataset"] for c in self.configurations] + [t["dataset"] for t in self.teachers]))

    def configs(self, dataset: str, methods: tuple[str, ...] | None = None) -> list[dict]:
        return [c for c in self.configurations
                if c["dataset"] == dataset and (methods is None or c["method"] in methods)]

    def baseline(self, dataset: str) -> dict | None:
        return next(iter(self.configs(dataset, ("baseline",))), None)

    def teacher(self, dataset: str) -> dict | None:
        return next((t for t in self.teachers if t["dataset"] == dataset), None)

    def _row_value(self, dataset: str, key: str):
        return next((r.get(key) for r in self.rows if r["dataset"] == dataset and r.get(key) is not None), None)

    def student_model(self, dataset: str) -> str:
        model = self._row_value(dataset, "model")
        return model_label(model)

    def timesteps(self, dataset: str):
        return self._row_value(dataset, "timesteps")

    def seeds(self, dataset: str, method: str) -> int:
        """How many seeds the dataset's students of ``method`` were trained with."""
        return len({r["seed"] for r in self.rows if r["dataset"] == dataset and r["method"] == method})

    def spread(self, dataset: str, key: str) -> float | None:
        """The baseline's seed spread of ``accuracy`` or ``spikerate`` (relative std), or None."""
        return next((s.get(key) for s in self.baseline_spread if s["dataset"] == dataset), None)

    def best_of(self, dataset: str, family: str) -> dict | None:
        """Table III's choice: from ``best`` in results.json, else by the same rule here."""
        if dataset in self.best:
            return self.best[dataset].get(family)
        return best_configuration(self.configs(dataset, FAMILIES[family]), self.max_accuracy_loss)


def _setting(res: DistillationResults, ctx: Context, dataset: str) -> str:
    baseline_seeds = res.seeds(dataset, "baseline")
    methods = {m: res.seeds(dataset, m) for m in dict.fromkeys(c["method"] for c in res.configs(dataset))
               if m != "baseline"}
    usual = Counter(methods.values()).most_common(1)[0][0] if methods else 0
    others = ", ".join(f"{method} {count}" for method, count in methods.items() if count != usual)
    averaged = "mean ± std over seeds" if max([baseline_seeds, *methods.values()]) > 1 else "no averaging"
    return (f"dataset {dataset}, profile {ctx.profile}, baseline {plural(baseline_seeds, 'seed')}, configurations "
            f"{plural(usual, 'seed')}{f' ({others})' if others else ''}, {averaged}")


def _ci(config: dict | None, key: str) -> str:
    """``[-1.2, +0.4]%``: the 95% paired bootstrap interval of a relative delta, or nothing."""
    interval = (config or {}).get(f"{key}_ci")
    if not interval:
        return ""
    return f" [{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}]%"


INTERVALS_NOTE = ("[a, b]: 95% paired bootstrap interval of the delta over the test samples, each seed against the "
                  "baseline of its seed (docs/statistics.md); the baseline's own seed spread is its ± in Table II. "
                  "The selection is the paper's rule on the point estimates, which flatters the best of a grid (a "
                  "pick's interval, not its point estimate, says how sure it is).")


def _ms(config: dict | None, key: str, formatter) -> str:
    if config is None:
        return MISSING
    return fmt_mean_std(config.get(f"{key}_mean"), config.get(f"{key}_std"), config.get("seeds", 1), formatter)


def _diverged_note(config: dict | None) -> str:
    """``(1/3 diverged)``, and for a configuration some of whose seeds' baselines diverged (those
    seeds have no delta) ``(baseline diverged for 1/3 seeds)``."""
    notes = []
    if config and config.get("diverged"):
        notes.append(f"{config['diverged']}/{config.get('seeds', '?')} diverged")
    if config and config.get("baseline_diverged") and config.get("method") != "baseline":
        notes.append(f"baseline diverged for {config['baseline_diverged']}/{config.get('seeds', '?')} seeds")
    return f" ({'; '.join(notes)})" if notes else ""


def describe_setting(config: dict) -> str:
    """A configuration's setting in the paper's symbols: ``tau_s=1, tau_t=8``, ``l1, lambda=5e-01``."""
    s = config.get("setting") or {}
    parts = []
    for key in ("alpha", "tau", "tau_s", "tau_t"):
        if key in s:
            parts.append(f"{key}={s[key]:g}")
    if "norm" in s:
        parts.append(f"{s['norm']}, lambda={fmt_lambda(s.get('lam'))}")
    return ", ".join(parts) or "-"


def table_baselines(res: DistillationResults, ctx: Context) -> Table:
    """Table II: teachers and baselines with parameters, accuracy, total spikes and spikerate."""
    rows = []
    for dataset in res.datasets:
        teacher = res.teacher(dataset)
        if teacher:
            name = model_label(teacher.get("model"))
            rows.append([dataset, f"Teacher ({name})" + ("" if teacher.get("status") == "ok" else
                                                          f" ({teacher.get('status')})"),
                         fmt_count(teacher.get("parameters")), _acc(teacher.get("accuracy")),
                         "n/a (FNN)", "n/a (FNN)", "n/a (FNN)"])
        else:
            rows.append([dataset, "Teacher", NOT_RUN, NOT_RUN, NOT_RUN, NOT_RUN, NOT_RUN])
        base = res.baseline(dataset)
        if base:
            rows.append([dataset, f"Baseline ({res.student_model(dataset)}, T = {res.timesteps(dataset)})"
                         + _diverged_note(base), fmt_count(base.get("parameters")), _ms(base, "accuracy", _acc),
                         _ms(base, "total_spikes", fmt_count), _ms(base, "spikerate", fmt_number),
                         _ms(base, "spikerate_per_timestep", fmt_number)])
        else:
            rows.append([dataset, "Baseline", NOT_RUN, NOT_RUN, NOT_RUN, NOT_RUN, NOT_RUN])
    settings = "; ".join(_setting(res, ctx, d) for d in res.datasets) or f"profile {ctx.profile}"
    caption = (f"Table II: Teachers (FNN) and baseline students ({settings}). Total spikes per test sample over T "
               f"timesteps; spikerate (Eq. 12) = spikes per neuron per inference, in [0, T]; per timestep = "
               f"spikerate / T, the paper's convention in its Table II. The baseline's ± (std over its seeds) is the "
               f"training noise a finding's margin must exceed.")
    return Table("table2", caption, ["Dataset", "Model", "Params", "Accuracy", "Total spikes", "Spikerate [0, T]",
                                     "Spikerate per timestep"], rows)


def _energy_cell(config: dict | None, model: str, baseline: bool) -> str:
    if config is None:
        return MISSING
    energy = fmt_energy(config.get(f"energy_{model}_snn_j_mean"))
    return energy if baseline else fmt_pair(energy, _ms(config, f"delta_energy_{model}_snn", _pct))


def table_best(res: DistillationResults, ctx: Context, models: list[str] | None = None) -> Table:
    """Table III: the baseline and, per family, the configuration of Table III's rule, with the
    energy per inference of each (and its delta against the baseline) per energy model."""
    models = list(models or [])
    rows = []
    for dataset in res.datasets:
        base = res.baseline(dataset)
        arch = f"{res.student_model(dataset)}/{fmt_count(base.get('parameters')) if base else '?'}/" \
               f"{res.timesteps(dataset)}"
        rows.append([dataset, "Baseline", "baseline" + _diverged_note(base), arch,
                     fmt_pair(_ms(base, "accuracy", _acc), "="), fmt_pair(_ms(base, "total_spikes", fmt_count), "=")]
                    + [_energy_cell(base, m, True) for m in models])
        for family, methods in FAMILIES.items():
            label = family + (BEYOND_MARK if family in BEYOND_PAPER else "")
            best = res.best_of(dataset, family)
            if best is None:
                reason = (f"none lowers the spikerate within {100 * res.max_accuracy_loss:g}% accuracy"
                          if res.configs(dataset, methods) else NOT_RUN)
                rows.append([dataset, label, reason, arch, MISSING, MISSING] + [MISSING for _ in models])
                continue
            rows.append([dataset, label, f"{best['run']} ({describe_setting(best)})" + _diverged_note(best), arch,
                         fmt_pair(_ms(best, "accuracy", _acc), _ms(best, "delta_accuracy", _pct) + _ci(best, "delta_accuracy")),
                         fmt_pair(_ms(best, "total_spikes", fmt_count),
                                  _ms(best, "delta_spikerate", _pct) + _ci(best, "delta_spikerate"))]
                        + [_energy_cell(best, m, False) for m in models])
    settings = "; ".join(_setting(res, ctx, d) for d in res.datasets) or f"profile {ctx.profile}"
    caption = (f"Table III: Per family the configuration with the lowest spikerate delta that lowers the "
               f"spikerate with an accuracy delta (Eq. 11) of at least {-100 * res.max_accuracy_loss:g}% and is "
               f"not at chance ({settings}). Deltas relative to the same-seed baseline (Eqs. 11, 13) in percent; KD "
               f"= MSE, soft targets or heterogeneous temperatures. {BEYOND_MARK} beyond the paper (its Sec. VI): "
               f"KD+ActReg = heterogeneous KD with activation regularization; Feature = FitNets hints from the "
               f"teacher's feature maps to the student's spike rates; Feature+ActReg = hints with activation "
               f"regularization. Energy: per inference under each energy model (docs/energy.md), / its delta. "
               f"{INTERVALS_NOTE}")
    return Table("table3", caption, ["Dataset", "Method", "Run", "Arch./Params/T", "Acc / delta acc",
                                     "Tot. spikes / delta Sr"] + [f"Energy {m} / delta" for m in models], rows)


def table_energy(res: DistillationResults, ctx: Context, models: list[str]) -> Table:
    """Energy per inference of the teacher (FNN), of the baseline student and of its non-spiking
    counterpart, the SNN/DNN ratios and the break-even spikerates, per energy model."""
    rows = []
    for dataset in res.datasets:
        teacher, base = res.teacher(dataset), res.baseline(dataset)
        for model in models:
            entries = {e["reference"]: e for e in res.break_even if e["dataset"] == dataset and e["model"] == model}
            teacher_j = teacher.get(f"energy_{model}_dnn_dense_j") if teacher else None
            rows.append([dataset, model,
                         fmt_energy(teacher_j),
                         fmt_energy(base.get(f"energy_{model}_snn_j_mean")) if base else NOT_RUN,
                         fmt_energy(base.get(f"energy_{model}_dnn_dense_j_mean")) if base else NOT_RUN,
                         fmt_number(base.get(f"energy_{model}_snn_over_dnn_dense_mean"), 2) if base else NOT_RUN,
                         fmt_number(base.get(f"energy_{model}_snn_over_teacher_dense_mean"), 3) if base else NOT_RUN,
                         _ms(base, "spikerate", fmt_number) if base else NOT_RUN]
                        + [fmt_number(entries[r].get("break_even_spikerate"), 2)
                           if r in entries and usable(entries[r].get("break_even_spikerate"))
                           else ("none" if r in entries else MISSING) for r in ("dnn_dense", "teacher_dense")])
    settings = "; ".join(_setting(res, ctx, d) for d in res.datasets) or f"profile {ctx.profile}"
    caption = (f"Energy per inference ({settings}) under each energy model (docs/energy.md): the FNN teacher, the "
               f"baseline student (SNN) and the same layers as a non-spiking network (ReLU, dense MACs). Break-even: "
               f"the spikerate (Eq. 12, in [0, T]) at which the student would cost as much as that network or as the "
               f"teacher, its energy assumed affine in its spikes; none: even a silent student costs more.")
    return Table("energy", caption, ["Dataset", "Energy model", "Teacher", "Baseline SNN", "Same layers, non-spiking",
                                     "SNN / non-spiking", "SNN / teacher", "Baseline spikerate",
                                     "Break-even vs non-spiking", "Break-even vs teacher"], rows)


def table_neurobench(res: DistillationResults, ctx: Context) -> Table | None:
    """NeuroBench 2.3.0's own metrics of every student beside our counts (first N test samples)."""
    rows = []
    for row in res.rows:
        report = row.get("neurobench")
        if not report:
            continue
        nb, ours = report.get("neurobench", {}), report.get("lowspike", {})
        synops = nb.get("SynapticOperations", {}) if isinstance(nb.get("SynapticOperations"), dict) else {}
        rows.append([row["dataset"], f"{row['run']} s{row['seed']}", str(report.get("samples", "?")),
                     fmt_number(nb.get("ActivationSparsity"), 4), fmt_count(synops.get("Effective_ACs")),
                     fmt_count(synops.get("Effective_MACs")), fmt_count(synops.get("Dense")),
                     fmt_number(nb.get("ConnectionSparsity"), 4), fmt_count(nb.get("Footprint")),
                     fmt_count(nb.get("ParameterCount")), fmt_count(ours.get("Spikes")),
                     fmt_count(ours.get("SynOps"))])
    if not rows:
        return None
    caption = ("NeuroBench 2.3.0's metrics of each student, computed with its own classes on the snntorch "
               "reference network with the same weights (first test samples; `distillation.neurobench_samples`), "
               "beside our spike and SynOps counts per sample. They agree where the conventions coincide; "
               "NeuroBench counts the analog first layer's MACs at every timestep (we count the constant current "
               "once), counts averaged-pooled inputs as MACs per non-zero cell (we count each spike with the fan-out "
               "of its pooled cell), leaves out biases and residual additions, and rounds weights to 4 decimals in "
               "ConnectionSparsity.")
    return Table("neurobench", caption, ["Dataset", "Student", "Samples", "ActivationSparsity", "Effective ACs",
                                         "Effective MACs", "Dense", "ConnectionSparsity", "Footprint (B)",
                                         "Parameters", "Our spikes", "Our SynOps"], rows)


def table_configurations(res: DistillationResults, ctx: Context) -> Table:
    rows = []
    for dataset in res.datasets:
        for c in res.configs(dataset):
            rows.append([dataset, c["run"], c["method"], str(c.get("seeds", "?")), str(c.get("diverged", 0)),
                         _ms(c, "accuracy", _acc), _ms(c, "total_spikes", fmt_count), _ms(c, "spikerate", fmt_number),
                         _ms(c, "delta_accuracy", _pct) + _ci(c, "delta_accuracy"),
                         _ms(c, "delta_spikerate", _pct) + _ci(c, "delta_spikerate")])
    settings = "; ".join(_setting(res, ctx, d) for d in res.datasets) or f"profile {ctx.profile}"
    caption = (f"Every configuration ({settings}); deltas relative to the same-seed baseline (Eqs. 11, 13); n/a "
               f"where the baseline is silent (no spike, so no relative delta) or no seed has a value. "
               f"{INTERVALS_NOTE}")
    return Table("configurations", caption, ["Dataset", "Run", "Method", "Seeds", "Diverged", "Accuracy",
                                             "Total spikes", "Spikerate", "delta acc", "delta Sr"], rows)


def paper_table(res: DistillationResults, ctx: Context, params: Params | None = None) -> Table:
    """The paper's Tables II-III beside this run, per paper dataset (MNIST, GSC, CIFAR-10)."""
    datasets = [(published.PAPER_DATASET.get(d, d), d) for d in res.datasets]
    for p in published.DISTILLATION_BASELINES:
        if p not in {x for x, _ in datasets}:
            datasets.append((p, None))
    rows = []
    for paper_dataset, dataset in datasets:
        ours_label = published.dataset_label(dataset, params) if params is not None else (dataset or NOT_RUN)
        label = f"{published.PAPER_DATASET_LABEL.get(paper_dataset, paper_dataset)} / {ours_label}"
        pub = published.DISTILLATION_BASELINES.get(paper_dataset)
        teacher = res.teacher(dataset) if dataset else None
        base = res.baseline(dataset) if dataset else None
        ours_arch = (f"{res.student_model(dataset)}/{fmt_count(base.get('parameters'))}/{res.timesteps(dataset)}"
                     if base else NOT_RUN)
        if pub:
            rows.append([label, "Teacher", f"{pub['teacher']}/{fmt_count(pub['teacher_parameters'])}",
                         (f"{model_label(teacher.get('model'))}/"
                          f"{fmt_count(teacher.get('parameters'))}") if teacher else NOT_RUN,
                         _acc(pub["teacher_accuracy"]), _acc(teacher.get("accuracy")) if teacher else NOT_RUN,
                         "n/a (FNN)", "n/a (FNN)", "n/a (FNN)", "n/a (FNN)"])
            rows.append([label, "Baseline", f"{pub['student']}/{fmt_count(pub['parameters'])}/{pub['timesteps']}",
                         ours_arch, _acc(pub["accuracy"]), _ms(base, "accuracy", _acc) if base else NOT_RUN,
                         fmt_count(pub["total_spikes"]), _ms(base, "total_spikes", fmt_count) if base else NOT_RUN,
                         fmt_number(pub["spikerate_per_timestep"], 2),
                         _ms(base, "spikerate_per_timestep", fmt_number) if base else NOT_RUN])
        for family in ("KD", "LogReg", "ActReg"):
            pub_best = published.DISTILLATION_BEST.get(paper_dataset, {}).get(family)
            mine = res.best_of(dataset, family) if dataset else None
            if mine is not None:
                ours_acc = fmt_pair(_ms(mine, "accuracy", _acc), _ms(mine, "delta_accuracy", _pct))
                ours_spk = fmt_pair(_ms(mine, "total_spikes", fmt_count), _ms(mine, "delta_spikerate", _pct))
                ours_rate = _ms(mine, "spikerate_per_timestep", fmt_number)
                ours_run = mine["run"]
            else:
                ran = dataset is not None and res.configs(dataset, FAMILIES[family])
                ours_acc = ours_spk = ours_rate = MISSING
                ours_run = "none eligible" if ran else NOT_RUN
            if pub_best:
                pub_acc = fmt_pair(_acc(pub_best["accuracy"]), _pct(pub_best["delta_accuracy"]))
                pub_spk = fmt_pair(fmt_count(pub_best["total_spikes"]), _pct(pub_best["delta_spikerate"]))
            else:
                pub_acc = pub_spk = "not in paper"
            rows.append([label, f"{family} (this run: {ours_run})",
                         published.DISTILLATION_BEST_ARCH.get(paper_dataset, "not in paper"), ours_arch,
                         pub_acc, ours_acc, pub_spk, ours_spk, "not in paper", ours_rate])
    caption = (f"Paper vs this run ({published.DISTILLATION_SOURCE}, Tables II-III): the paper's MNIST, GSC and "
               f"CIFAR-10 beside this run's dataset standing in for each (profile {ctx.profile}; "
               + "; ".join(_setting(res, ctx, d) for d in res.datasets)
               + "; the paper averages three runs). Spikerate per timestep = Eq. 12 / T. Deltas: Eqs. 11, 13.")
    return Table("paper", caption, ["Paper dataset / this run's dataset", "Row", "Model/params/T paper",
                                    "this run", "Accuracy (/ delta) paper", "this run", "Total spikes (/ delta Sr) "
                                    "paper", "this run", "Spikerate per timestep paper", "this run"], rows)


# ------------------------------------------------------------------------------------ figures


def _errors(configs: list[dict], key: str) -> tuple[list[float], np.ndarray]:
    """Point estimates (%) of a delta and their error bars ``[2, n]``: the 95% bootstrap
    interval where the aggregate has one, else the std over seeds."""
    means = [100 * v for v in finite(c.get(f"{key}_mean") for c in configs)]
    low, high = [], []
    for mean, c in zip(means, configs):
        interval = c.get(f"{key}_ci")
        if interval and np.isfinite(mean):
            low.append(max(mean - 100 * interval[0], 0.0))
            high.append(max(100 * interval[1] - mean, 0.0))
        else:
            std = c.get(f"{key}_std")
            low.append(100 * std if usable(std) else 0.0)
            high.append(100 * std if usable(std) else 0.0)
    return means, np.array([low, high])


def _spread_band(ax, res: DistillationResults, dataset: str, key: str) -> None:
    """A grey band of +-1 seed spread of the baseline around 0 (the training noise)."""
    spread = res.spread(dataset, {"delta_accuracy": "accuracy", "delta_spikerate": "spikerate"}[key])
    if usable(spread) and spread:
        ax.axhspan(-100 * spread, 100 * spread, color="grey", alpha=0.15, linewidth=0)


def _delta_panels(axes, res: DistillationResults, dataset: str, configs: list[dict], x_key: str, label: str) -> None:
    """Accuracy delta (first axis) and spikerate delta (second) against a setting, one curve."""
    ordered = sorted(configs, key=lambda c: c["setting"][x_key])
    xs = [c["setting"][x_key] for c in ordered]
    for ax, key in zip(axes, ("delta_accuracy", "delta_spikerate")):
        means, errors = _errors(ordered, key)
        ax.errorbar(xs, means, yerr=errors, marker="o", markersize=3, capsize=2, label=label)
        _spread_band(ax, res, dataset, key)


def _label_axes(axes, x_label: str, log_x: bool = False) -> None:
    for ax, label in zip(axes, ("accuracy delta (%, Eq. 11)", "spikerate delta (%, Eq. 13)")):
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(x_label)
        ax.set_ylabel(label)
        if log_x:
            ax.set_xscale("log", base=2)
        ax.legend(fontsize=7)


CURVE_NOTE = ("error bars: 95% paired bootstrap intervals over the test samples; grey band: +-1 std of the "
              "baseline over its seeds (the training noise)")


def figure_kd_sweep(res: DistillationResults, ctx: Context, method: str, x_key: str, number: int,
                    title: str) -> RenderedFigure | None:
    """Figs. 2 and 3: accuracy delta (left) and spikerate delta (right) vs alpha or tau, one curve
    per dataset, with intervals (:func:`_errors`) and the baseline's seed spread."""
    if not any(res.configs(d, (method,)) for d in res.datasets):
        return None
    fig, axes = new_figure(1, 2, width=8.0, height=3.2)
    for dataset in res.datasets:
        configs = res.configs(dataset, (method,))
        if configs:
            _delta_panels(axes, res, dataset, configs, x_key, dataset)
    _label_axes(axes, x_key, log_x=x_key == "tau")
    settings = "; ".join(_setting(res, ctx, d) for d in res.datasets if res.configs(d, (method,)))
    caption = (f"Fig. {number}: {title} (left: accuracy delta, right: spikerate delta vs the baseline; {settings}; "
               f"{CURVE_NOTE}).")
    return render(fig, f"distillation_fig{number}_{method}", caption, list(ctx.formats), ctx.dpi)


def figure_heterogeneous(res: DistillationResults, ctx: Context, dataset: str) -> RenderedFigure | None:
    """Figs. 5-6: both deltas against tau_t, one curve per tau_s, with intervals."""
    configs = res.configs(dataset, ("heterogeneous",))
    if not configs:
        return None
    fig, axes = new_figure(1, 2, width=8.0, height=3.4)
    for tau_s in sorted({c["setting"]["tau_s"] for c in configs}):
        _delta_panels(axes, res, dataset, [c for c in configs if c["setting"]["tau_s"] == tau_s], "tau_t",
                      f"tau_s = {tau_s:g}")
    _label_axes(axes, "teacher temperature tau_t", log_x=True)
    caption = (f"Figs. 5-6: Heterogeneous-temperature KD (Eq. 5) on {dataset}: accuracy delta (left) and "
               f"spikerate delta (right) vs the baseline against tau_t, one curve per tau_s "
               f"({_setting(res, ctx, dataset)}; {CURVE_NOTE}).")
    return render(fig, f"distillation_fig5_heterogeneous_{dataset}", caption, list(ctx.formats), ctx.dpi)


def figure_per_layer(res: DistillationResults, ctx: Context, dataset: str) -> RenderedFigure | None:
    """Fig. 4: per-layer spikerate delta of the best heterogeneous KD, logits and activation
    regularization (the Table III rule within each)."""
    chosen = []
    for label, methods in (("HET KD", ("heterogeneous",)), ("LogReg", ("logits",)), ("ActReg", ("activation",))):
        best = best_configuration(res.configs(dataset, methods), res.max_accuracy_loss)
        if best and best.get("delta_spikerate_per_layer_mean"):
            chosen.append((f"{label}: {best['run']}", best["delta_spikerate_per_layer_mean"]))
    if not chosen:
        return None
    layers = list(chosen[0][1])
    fig, axes = new_figure(1, 1, width=6.4, height=3.2)
    ax = axes[0]
    width = 0.8 / len(chosen)
    for k, (label, per_layer) in enumerate(chosen):
        values = [100 * v for v in finite(per_layer.get(layer) for layer in layers)]
        ax.bar(np.arange(len(layers)) + (k - (len(chosen) - 1) / 2) * width, np.nan_to_num(values), width,
               label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_ylabel("spikerate delta (%)")
    ax.legend()
    caption = (f"Fig. 4: Spikerate delta per spiking layer on {dataset} for the heterogeneous KD, logits and "
               f"activation regularization configurations with the lowest spikerate delta within "
               f"{-100 * res.max_accuracy_loss:g}% accuracy delta ({_setting(res, ctx, dataset)}); a layer that is "
               f"silent in the baseline has no relative delta and is drawn at 0.")
    return render(fig, f"distillation_fig4_per_layer_{dataset}", caption, list(ctx.formats), ctx.dpi)


def figure_regularization(res: DistillationResults, ctx: Context, dataset: str) -> RenderedFigure | None:
    """Fig. 7: accuracy delta vs spikerate delta, one point per lambda, for logits (left) and
    activation (right) regularization, one line per norm."""
    if not res.configs(dataset, ("logits", "activation")):
        return None
    fig, axes = new_figure(1, 2, width=8.0, height=3.4)
    for ax, method, title in zip(axes, ("logits", "activation"), ("logits regularization",
                                                                  "activation regularization")):
        configs = res.configs(dataset, (method,))
        norms = list(dict.fromkeys(c["setting"]["norm"] for c in configs))
        for norm in norms:
            series = sorted((c for c in configs if c["setting"]["norm"] == norm), key=lambda c: c["setting"]["lam"])
            xs, x_errors = _errors(series, "delta_spikerate")
            ys, y_errors = _errors(series, "delta_accuracy")
            ax.errorbar(xs, ys, xerr=x_errors, yerr=y_errors, marker="o", markersize=3, capsize=2, elinewidth=0.7,
                        label={"l2sq": "l2 squared"}.get(norm, norm))
            for x, y, c in zip(xs, ys, series):
                if np.isfinite(x) and np.isfinite(y):
                    ax.annotate(fmt_lambda(c["setting"]["lam"]), (x, y), fontsize=6, xytext=(3, 3),
                                textcoords="offset points")
        ax.set_title(title)
        ax.set_xlabel("spikerate delta (%)")
        ax.set_ylabel("accuracy delta (%)")
        _spread_band(ax, res, dataset, "delta_accuracy")
        ax.axhline(0.0, color="black", linewidth=0.8)
        if norms:
            ax.legend()
        else:
            placeholder(ax, NOT_RUN)
    caption = (f"Fig. 7: Logits (left) and activation (right) regularization on {dataset}: accuracy delta vs "
               f"spikerate delta, each point a lambda (labelled) ({_setting(res, ctx, dataset)}; error bars: 95% "
               f"paired bootstrap intervals of both deltas; grey band: +-1 std of the baseline's accuracy over its "
               f"seeds).")
    return render(fig, f"distillation_fig7_regularization_{dataset}", caption, list(ctx.formats), ctx.dpi)


CLEAR_ACCURACY_LOSS = -0.02
"""The accuracy delta (Eq. 11) the largest lambda of a Fig. 7 curve must reach, its interval
below 0, for the curve to show the trade-off up to a clear loss."""


def curve_ranges(res: DistillationResults, dataset: str) -> list[dict[str, Any]]:
    """Per Fig. 7 curve (method and norm, at least two lambdas) whether it spans the trade-off:
    ``no_effect`` when the smallest lambda's accuracy-delta interval contains 0, ``clear_loss``
    when the largest lambda's delta is at most :data:`CLEAR_ACCURACY_LOSS` with its interval
    below 0; a bound without an interval is neither."""
    curves = []
    for method in ("activation", "logits"):
        configs = res.configs(dataset, (method,))
        for norm in dict.fromkeys(c["setting"]["norm"] for c in configs):
            series = sorted((c for c in configs if c["setting"]["norm"] == norm), key=lambda c: c["setting"]["lam"])
            if len(series) < 2:
                continue
            smallest, largest = series[0], series[-1]
            low, high = smallest.get("delta_accuracy_ci"), largest.get("delta_accuracy_ci")
            loss = largest.get("delta_accuracy_mean")
            curves.append({"method": method, "norm": norm, "lambdas": len(series), "smallest": smallest,
                           "largest": largest, "no_effect": bool(low) and low[0] <= 0.0 <= low[1],
                           "clear_loss": bool(high) and high[1] < 0.0 and usable(loss)
                           and loss <= CLEAR_ACCURACY_LOSS})
    return curves


def table_curve_ranges(res: DistillationResults, ctx: Context) -> Table | None:
    """Whether each Fig. 7 curve runs from no visible effect to a clear accuracy loss (:func:`curve_ranges`)."""
    rows = []
    for dataset in res.datasets:
        for curve in curve_ranges(res, dataset):
            ends = [f"{fmt_lambda(c['setting']['lam'])}: {_ms(c, 'delta_accuracy', _pct)}{_ci(c, 'delta_accuracy')}"
                    for c in (curve["smallest"], curve["largest"])]
            spans = curve["no_effect"] and curve["clear_loss"]
            rows.append([dataset, f"{curve['method']} {curve['norm']}", str(curve["lambdas"]),
                         ends[0], "yes" if curve["no_effect"] else "no", ends[1],
                         "yes" if curve["clear_loss"] else "no", "spans" if spans else "does not span"])
    if not rows:
        return None
    settings = "; ".join(_setting(res, ctx, d) for d in res.datasets)
    caption = (f"Range of each Fig. 7 curve ({settings}): it spans the trade-off when its smallest lambda is within "
               f"noise of the baseline (the accuracy-delta interval contains 0) and its largest costs accuracy "
               f"beyond noise (delta at most {100 * CLEAR_ACCURACY_LOSS:.0f}%, interval below 0). The intervals "
               f"count the test samples only: a curve on one training seed, paired with the same-seed baseline, "
               f"can also move by the training noise (the baseline's seed spread, Table II); on several seeds a "
               f"point is the mean of each seed's paired delta, its ± their spread.")
    return Table("curve_ranges", caption, ["Dataset", "Curve", "Lambdas", "Smallest lambda: delta acc",
                                           "Within noise", "Largest lambda: delta acc", "Clear loss", "Curve"], rows)


def figure_energy_deltas(res: DistillationResults, ctx: Context, dataset: str,
                         models: list[str]) -> RenderedFigure | None:
    """Accuracy delta vs energy delta (Eq. 13 applied to the energy per inference) of every
    configuration, one panel per energy model, one marker per method family."""
    configs = [c for c in res.configs(dataset) if c["method"] != "baseline"
               and any(usable(c.get(f"delta_energy_{m}_snn_mean")) for m in models)]
    if not configs:
        return None
    fig, axes = new_figure(1, len(models), width=4.2 * len(models), height=3.4)
    for ax, model in zip(axes, models):
        for family, methods in FAMILIES.items():
            chosen = [c for c in configs if c["method"] in methods
                      and usable(c.get(f"delta_energy_{model}_snn_mean")) and usable(c.get("delta_accuracy_mean"))]
            if chosen:
                ax.plot([100 * c[f"delta_energy_{model}_snn_mean"] for c in chosen],
                        [100 * c["delta_accuracy_mean"] for c in chosen], marker="o", markersize=4,
                        linestyle="none", label=family + (BEYOND_MARK if family in BEYOND_PAPER else ""))
        ax.axvline(0, color="black", linewidth=0.8)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"energy delta, {model} (%)")
        ax.set_ylabel("accuracy delta (%)")
        ax.legend(loc="lower left", fontsize=6)
    caption = (f"Accuracy delta vs energy-per-inference delta of every configuration on {dataset}, per energy model "
               f"(relative to the same-seed baseline, Eqs. 11 and 13) ({_setting(res, ctx, dataset)}). "
               f"{BEYOND_MARK}: beyond the paper.")
    return render(fig, f"distillation_energy_{dataset}", caption, list(ctx.formats), ctx.dpi)


def plot_data(res: DistillationResults) -> dict[str, list[dict]]:
    """Per configuration the mean deltas in percent, for ``dvc plots`` (x = spikerate delta)."""
    rows = []
    for c in res.configurations:
        rows.append({"dataset": c["dataset"], "run": c["run"], "method": c["method"], "seeds": c.get("seeds"),
                     "accuracy": c.get("accuracy_mean"),
                     "delta_accuracy_pct": 100 * c["delta_accuracy_mean"] if usable(c.get("delta_accuracy_mean"))
                     else None,
                     "delta_spikerate_pct": 100 * c["delta_spikerate_mean"] if usable(c.get("delta_spikerate_mean"))
                     else None})
    return {"distillation_deltas": rows}


def _own_seeds(study) -> str:
    """`` (spoken-commands logits: 0, 1, 2)``: the grids that write seeds of their own."""
    own = [f"{dataset} {method}: {', '.join(str(s) for s in seeds)}"
           for (dataset, method), seeds in own_seeds(study.grids).items()]
    return f" ({'; '.join(sorted(own))})" if own else ""


def build(results: dict[str, Any] | None, params: Params, ctx: Context,
          source: str = "results/distillation/results.json") -> tuple[Document, dict[str, list[dict]]]:
    """The distillation report and its ``dvc plots`` data."""
    res = DistillationResults(results)
    study = params.distillation
    doc = Document("Distillation and regularization of directly trained SNNs: this run vs the paper")
    doc.add(Paragraph(
        f"Reproduction of {published.DISTILLATION_SOURCE} from `{source}`. Profile `{ctx.profile}`; datasets "
        f"{', '.join(study.datasets)}; seeds {', '.join(str(s) for s in study.seeds)}{_own_seeds(study)}; KD weight alpha = "
        f"{study.alpha:g} (Eq. 1); surrogate {study.surrogate}; {plural(len(res.rows), 'student')}, "
        f"{plural(len(res.teachers), 'teacher')}; "
        f"{sum(1 for r in res.rows if r.get('status') == 'diverged')} diverged."))
    if results is None:
        doc.add(Paragraph(f"The distillation study has no results: `{source}` does not exist (run `dvc repro "
                          f"aggregate_distillation`). The paper's numbers are listed alone."))
    missing = [d for d in study.datasets if d not in res.datasets]
    if results is not None and missing:
        doc.add(Paragraph(f"No results for dataset(s) {', '.join(missing)}."))
    not_run = [published.PAPER_DATASET_LABEL[p] for p in published.DISTILLATION_BASELINES
               if p not in {published.PAPER_DATASET.get(d) for d in res.datasets}]
    if not_run:
        doc.add(Paragraph(f"Not run here: {', '.join(not_run)} (no dataset of `distillation.datasets` stands in "
                          f"for it); their rows of the paper's tables are shown without a counterpart."))

    models = list(params.energy.models)
    doc.add(*findings_blocks(res.findings if results is not None else None, published.DISTILLATION_SOURCE,
                             ctx.profile))
    doc.add(Heading("Paper vs this run"), paper_table(res, ctx, params))
    doc.add(Heading("Table II: teachers and baselines"), table_baselines(res, ctx))
    doc.add(Heading("Table III: best configuration per family"), table_best(res, ctx, models))
    doc.add(Heading("Energy per inference"), table_energy(res, ctx, models))
    for dataset in res.datasets:
        figure = figure_energy_deltas(res, ctx, dataset, models)
        if figure is not None:
            doc.add(figure)
    neurobench = table_neurobench(res, ctx)
    if neurobench is not None:
        doc.add(Heading("NeuroBench"), neurobench)
    doc.add(Heading("Knowledge distillation"))
    for method, x_key, number, title in (("mse", "alpha", 2, "MSE knowledge distillation (Eq. 2) vs alpha"),
                                         ("soft_targets", "tau", 3, "Soft-target knowledge distillation (Eq. 4) "
                                                                    "vs the temperature tau")):
        figure = figure_kd_sweep(res, ctx, method, x_key, number, title)
        doc.add(figure if figure else Paragraph(f"Fig. {number}: {NOT_RUN} (no {method} configuration)."))
    for dataset in res.datasets:
        figure = figure_heterogeneous(res, ctx, dataset)
        doc.add(figure if figure else Paragraph(f"Figs. 5-6 on {dataset}: {NOT_RUN} (no heterogeneous KD)."))
    doc.add(Heading("Per-layer spikerate"))
    for dataset in res.datasets:
        figure = figure_per_layer(res, ctx, dataset)
        doc.add(figure if figure else Paragraph(f"Fig. 4 on {dataset}: no eligible configuration."))
    doc.add(Heading("Regularization"))
    for dataset in res.datasets:
        figure = figure_regularization(res, ctx, dataset)
        doc.add(figure if figure else Paragraph(f"Fig. 7 on {dataset}: {NOT_RUN} (no regularized student)."))
    ranges = table_curve_ranges(res, ctx)
    if ranges is not None:
        doc.add(ranges)
    doc.add(Heading("All configurations"), table_configurations(res, ctx))
    return doc, plot_data(res)
