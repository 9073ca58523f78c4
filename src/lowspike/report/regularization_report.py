"""The regularization paper's report: Tables 1-3, Figs. 2-3, accuracy vs timestep, paper vs run.

Input: ``results/conversion/results.json`` written by ``studies.conversion.write_aggregate``:
``rows`` (one evaluate record per grid point with ``*_change_pct`` = 100 (x - x_base) / x_base
and ``*_accuracy_delta_pts`` = 100 (acc - acc_base)), ``selections`` (the Tables 1-2 rule:
fewest SynOps with an SNN accuracy drop below ``max_drop_pts``) and ``curves`` (Fig. 3:
accuracy vs SynOps / max SynOps with its trapezoidal AUC, original and isotonic-smoothed,
Table 3). The conversion study trains one seed per point, so nothing here is averaged.
"""

from __future__ import annotations

from typing import Any

from ..config import Params
from ..models import label as arch_label
from ..regularizers import BEYOND_MARK, is_beyond_paper
from ..regularizers import regularizer_label as name_regularizer
from . import published
from .common import Context, mean_of, plural, usable
from .document import Document, Heading, Paragraph
from .findings_tables import findings_blocks
from .figures import (
    RenderedFigure,
    diverged_handle,
    finite,
    lambda_axis,
    mark_diverged,
    new_figure,
    placeholder,
    render,
)
from .tables import (
    MISSING,
    Table,
    fmt_count,
    fmt_energy,
    fmt_fraction_percent,
    fmt_lambda,
    fmt_number,
    fmt_pair,
    fmt_percent,
    fmt_points,
)

BASELINE = "baseline"
PAPER_ORDER = ("l2", "l1", "lp0.5", "lp0.01", "hoyer", "hoyer_square")
NOT_RUN = "not run"


def regularizer_label(spec: str) -> str:
    """The paper's name of a regularizer spec, a dagger marking those beyond the paper:
    ``lp0.5`` -> ``L0.5``, ``synops`` -> ``SynOps\u2020``, ``l1+wl1`` -> ``L1+wL1\u2020``."""
    return name_regularizer(spec, mark_beyond=True)


class ConversionResults:
    """Indexed view of ``results.json`` of the conversion study."""

    def __init__(self, results: dict[str, Any] | None):
        results = results or {}
        self.rows: list[dict] = results.get("rows", [])
        self.selections: list[dict] = results.get("selections", [])
        self.curves: list[dict] = results.get("curves", [])
        self.findings: list[dict] | None = results.get("findings")
        self.break_even: list[dict] = results.get("break_even", [])

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r["dataset"] for r in self.rows))

    def points(self, dataset: str, arch: str, regularizer: str | None = None) -> list[dict]:
        found = [r for r in self.rows if r["dataset"] == dataset and r["arch"] == arch]
        if regularizer is not None:
            found = [r for r in found if r["regularizer"] == regularizer]
        return sorted(found, key=lambda r: r["lambda"])

    def baseline(self, dataset: str, arch: str) -> dict | None:
        return next((r for r in self.points(dataset, arch) if r["point"] == BASELINE), None)

    def selection(self, dataset: str, arch: str, regularizer: str) -> dict | None:
        return next((s for s in self.selections
                     if (s["dataset"], s["arch"], s["regularizer"]) == (dataset, arch, regularizer)), None)

    def selected_row(self, dataset: str, arch: str, regularizer: str) -> dict | None:
        chosen = self.selection(dataset, arch, regularizer)
        if not chosen or not chosen.get("selected"):
            return None
        return next((r for r in self.points(dataset, arch, regularizer) if r["point"] == chosen["selected"]), None)

    def curve(self, dataset: str, arch: str, regularizer: str) -> dict | None:
        return next((c for c in self.curves
                     if (c["dataset"], c["arch"], c["regularizer"]) == (dataset, arch, regularizer)), None)


def _ok(row: dict | None) -> bool:
    return row is not None and row.get("status") == "ok"


def _accuracy_pair(row: dict | None) -> str:
    if not _ok(row):
        return MISSING
    return fmt_pair(fmt_fraction_percent(row.get("dnn_accuracy")), fmt_fraction_percent(row.get("snn_accuracy")))


def _delta_pair(entry: dict | None) -> str:
    if entry is None:
        return MISSING
    return fmt_pair(fmt_points(entry.get("dnn_accuracy_delta_pts")), fmt_points(entry.get("snn_accuracy_delta_pts")))


def _unselected_reason(res: ConversionResults, dataset: str, arch: str, reg: str, max_drop: float) -> str:
    points = res.points(dataset, arch, reg)
    if not points:
        return NOT_RUN
    if any(p.get("baseline_diverged") for p in points):
        return "baseline diverged, no change"
    if all(p.get("status") == "diverged" for p in points):
        return "all diverged"
    return f"none within {max_drop:g} pts"


def _max_drop(params: Params, res: ConversionResults, dataset: str) -> float:
    recorded = next((s.get("max_drop_pts") for s in res.selections if s["dataset"] == dataset), None)
    return recorded if usable(recorded) else params.regularization.max_accuracy_drop.get(dataset, 0.5)


def _timesteps(res: ConversionResults, dataset: str) -> str:
    steps = sorted({r["timesteps"] for r in res.rows if r["dataset"] == dataset and usable(r.get("timesteps"))})
    return "/".join(str(s) for s in steps) or "?"


def _setting(params: Params, ctx: Context, res: ConversionResults, dataset: str) -> str:
    return (f"dataset {dataset}, profile {ctx.profile}, T = {_timesteps(res, dataset)} timesteps, "
            f"one training seed (regularization.train.seed = {params.regularization.train.seed}), no averaging")


def selection_table(res: ConversionResults, params: Params, ctx: Context, dataset: str, number: int) -> Table:
    """Table 1 (MNIST-like datasets) or Table 2 (CIFAR-10): baseline absolute values, then per
    regularizer the selected lambda with its percent changes and accuracy deltas."""
    max_drop = _max_drop(params, res, dataset)
    models = list(params.energy.models)
    rows: list[list[str]] = []
    for arch in params.regularization.archs:
        base = res.baseline(dataset, arch)
        if base is None:
            rows.append([f"{arch_label(arch)} baseline"] + [NOT_RUN] * (4 + len(models)))
            continue
        name = f"{arch_label(arch)} baseline" + ("" if _ok(base) else f" ({base.get('status')})")
        rows.append([name, fmt_count(base.get("spikes")), fmt_count(base.get("eflops")),
                     fmt_count(base.get("synops")), _accuracy_pair(base)]
                    + [fmt_energy(base.get(f"energy_{m}_snn_j")) for m in models])
        for reg in params.regularization.regularizers:
            chosen = res.selection(dataset, arch, reg)
            if chosen and chosen.get("selected"):
                rows.append([f"{regularizer_label(reg)} @ {fmt_lambda(chosen['lambda'])}",
                             fmt_percent(chosen.get("spikes_change_pct")), fmt_percent(chosen.get("eflops_change_pct")),
                             fmt_percent(chosen.get("synops_change_pct")), _delta_pair(chosen)]
                            + [fmt_percent(chosen.get(f"energy_{m}_snn_change_pct")) for m in models])
            else:
                reason = _unselected_reason(res, dataset, arch, reg, max_drop)
                rows.append([f"{regularizer_label(reg)}: {reason}", MISSING, MISSING, MISSING, MISSING]
                            + [MISSING for _ in models])
    archs = " and ".join(arch_label(a) for a in params.regularization.archs)
    caption = (f"Table {number}: Results for {archs} on {dataset} ({_setting(params, ctx, res, dataset)}). "
               f"Baseline rows: spikes, EFLOPS and SynOps per test sample, DNN / SNN accuracy. Regularizer rows: "
               f"the lambda with the fewest SynOps whose SNN accuracy is less than {max_drop:g} pts below the "
               f"baseline, its % changes vs the baseline and its DNN / SNN accuracy change in percentage points. "
               f"Energy: the SNN's per inference under each energy model (docs/energy.md), baseline in joules, "
               f"selected models in % change. {BEYOND_MARK}: beyond the paper (its Sec. 5).")
    return Table(f"table{number}-{dataset}", caption,
                 ["Model / Reg. @ lambda", "Spikes / %Spikes", "EFLOPS / %EFLOPS", "SynOps / %SynOps",
                  "Accuracy DNN / SNN (baseline); change in pts"]
                 + [f"Energy {m} / %" for m in models], rows)


def _auc_cell(curve: dict | None) -> str:
    if curve is None:
        return NOT_RUN
    return fmt_pair(fmt_number(curve.get("auc")), fmt_number(curve.get("auc_smoothed")))


def _ran_curve(res: ConversionResults, dataset: str, arch: str, reg: str) -> dict | None:
    """The Fig. 3 curve of ``reg``, None when none of its points was run (a baseline-only curve)."""
    return res.curve(dataset, arch, reg) if res.points(dataset, arch, reg) else None


def auc_table(res: ConversionResults, params: Params, ctx: Context, dataset: str) -> Table:
    """Table 3: AUC of accuracy vs normalized SynOps, original / smoothed, with the mean over archs."""
    regs = params.regularization.regularizers
    rows = []
    for arch in params.regularization.archs:
        rows.append([arch_label(arch)] + [_auc_cell(_ran_curve(res, dataset, arch, reg)) for reg in regs])
    average = ["Average"]
    for reg in regs:
        curves = [_ran_curve(res, dataset, arch, reg) for arch in params.regularization.archs]
        curves = [c for c in curves if c is not None]
        average.append(fmt_pair(fmt_number(mean_of(c.get("auc") for c in curves)),
                                fmt_number(mean_of(c.get("auc_smoothed") for c in curves))))
    rows.append(average)
    caption = (f"Table 3: Area under the curve (AUC) of SNN accuracy vs normalized SynOps on {dataset} "
               f"({_setting(params, ctx, res, dataset)}), formatted as AUC (original) / AUC (smoothed); the curve "
               f"starts at (0, chance) and smoothing is isotonic; Average is the mean over architectures.")
    return Table(f"table3-{dataset}", caption, ["Architecture"] + [regularizer_label(r) for r in regs], rows)


def all_points_table(res: ConversionResults, params: Params, ctx: Context, dataset: str) -> Table:
    """Every point of the sweep with its status: a diverged point is listed as diverged, a point
    whose baseline diverged says so (it has no change)."""
    rows = []
    order = {reg: k for k, reg in enumerate(["none", *params.regularization.regularizers])}
    for arch in params.regularization.archs:
        for row in sorted(res.points(dataset, arch), key=lambda r: (order.get(r["regularizer"], len(order)),
                                                                    r["lambda"])):
            reg = "baseline" if row["point"] == BASELINE else regularizer_label(row["regularizer"])
            status = row.get("status", "?")
            if row.get("baseline_diverged") and row["point"] != BASELINE:
                status += " (baseline diverged)"
            rows.append([arch_label(arch), reg, fmt_lambda(row["lambda"]), status,
                         fmt_count(row.get("spikes")), fmt_count(row.get("eflops")), fmt_count(row.get("synops")),
                         fmt_fraction_percent(row.get("dnn_accuracy")), fmt_fraction_percent(row.get("snn_accuracy")),
                         fmt_percent(row.get("synops_change_pct"))])
    caption = (f"All points of the sweep on {dataset} ({_setting(params, ctx, res, dataset)}); a diverged "
               f"training has no metric (n/a).")
    return Table(f"points-{dataset}", caption,
                 ["Model", "Reg.", "lambda", "Status", "Spikes", "EFLOPS", "SynOps", "DNN acc.", "SNN acc.",
                  "%SynOps"], rows)


def _paper_pair(paper_value: str, ours: str) -> str:
    return fmt_pair(paper_value, ours)


def _paper_baseline_row(res: ConversionResults, label: str, paper_dataset: str, dataset: str | None,
                        arch: str) -> list[str]:
    """One row of the baselines table: paper / this run for spikes, EFLOPS, SynOps, accuracies."""
    paper_baseline = published.REGULARIZATION_BASELINES.get((paper_dataset, arch))
    ours = res.baseline(dataset, arch) if dataset else None
    cells = []
    for key in ("spikes", "eflops", "synops"):
        cells.append(_paper_pair(fmt_count(paper_baseline[key]) if paper_baseline else "not in paper",
                                 fmt_count(ours.get(key)) if ours else NOT_RUN))
    for key in ("dnn_accuracy", "snn_accuracy"):
        cells.append(_paper_pair(fmt_fraction_percent(paper_baseline[key]) if paper_baseline else "not in paper",
                                 fmt_fraction_percent(ours.get(key)) if ours else NOT_RUN))
    return [label, arch_label(arch)] + cells


def _paper_selection_row(res: ConversionResults, params: Params, label: str, paper_dataset: str,
                         dataset: str | None, arch: str, reg: str) -> list[str]:
    """One row of the selections table: the paper's selected lambda, changes and AUC beside ours."""
    pub = published.REGULARIZATION_SELECTIONS.get((paper_dataset, arch), {}).get(reg)
    mine = res.selection(dataset, arch, reg) if dataset else None
    ran = dataset is not None and bool(res.points(dataset, arch, reg))
    if mine and mine.get("selected"):
        ours_cells = [fmt_lambda(mine.get("lambda")), fmt_percent(mine.get("spikes_change_pct")),
                      fmt_percent(mine.get("synops_change_pct")), fmt_points(mine.get("snn_accuracy_delta_pts"))]
    else:
        reason = _unselected_reason(res, dataset, arch, reg, _max_drop(params, res, dataset)) if ran else NOT_RUN
        ours_cells = [reason, MISSING, MISSING, MISSING]
    if pub:
        paper_cells = [fmt_lambda(pub["lambda"]), fmt_percent(pub["spikes_change_pct"]),
                       fmt_percent(pub["synops_change_pct"]), fmt_points(pub["snn_accuracy_delta_pts"])]
    else:
        paper_cells = ["not in paper"] * 4
    auc = published.REGULARIZATION_AUC.get((paper_dataset, arch), {}).get(reg)
    paper_auc = fmt_pair(fmt_number(auc[0]), fmt_number(auc[1])) if auc else "not in paper"
    curve = _ran_curve(res, dataset, arch, reg) if ran else None
    ours_auc = fmt_pair(fmt_number(curve.get("auc")), fmt_number(curve.get("auc_smoothed"))) if curve else NOT_RUN
    return ([label, arch_label(arch), regularizer_label(reg)]
            + [_paper_pair(p, o) for p, o in zip(paper_cells, ours_cells)] + [paper_auc, ours_auc])


def paper_tables(res: ConversionResults, params: Params, ctx: Context) -> list[Table]:
    """The paper's Tables 1-3 beside this run's numbers: baselines, then the selections and AUCs.

    Each of this run's datasets is compared with the paper's dataset it stands in for
    (``mnist5k`` and ``digits`` with MNIST); the paper's CIFAR-10 rows read "not run" unless
    CIFAR-10 was run."""
    comparisons: list[tuple[str, str | None]] = [(published.PAPER_DATASET.get(d, d), d) for d in res.datasets]
    for paper_dataset in ("mnist", "cifar10"):
        if paper_dataset not in {p for p, _ in comparisons}:
            comparisons.append((paper_dataset, None))
    base_rows, sel_rows = [], []
    for paper_dataset, dataset in comparisons:
        paper_label = published.PAPER_DATASET_LABEL.get(paper_dataset, paper_dataset)
        label = f"{paper_label} / {published.dataset_label(dataset, params)}"
        archs = list(params.regularization.archs) if dataset else []
        archs += [a for (p, a) in published.REGULARIZATION_BASELINES if p == paper_dataset and a not in archs]
        for arch in archs:
            base_rows.append(_paper_baseline_row(res, label, paper_dataset, dataset, arch))
            published_sel = published.REGULARIZATION_SELECTIONS.get((paper_dataset, arch), {})
            ours = list(params.regularization.regularizers) if dataset else []
            order = [r for r in PAPER_ORDER if r in published_sel or r in ours]
            for reg in order + [r for r in ours if r not in order]:
                sel_rows.append(_paper_selection_row(res, params, label, paper_dataset, dataset, arch, reg))
    setting = (f"this run: profile {ctx.profile}, regularization.train max_epochs "
               f"{params.regularization.train.max_epochs}, lr {params.regularization.train.lr:g}; paper: full MNIST "
               f"(55k/5k/10k) and CIFAR-10, lr 1e-4, patience 20, T = 100 (1000 for CIFAR-10)")
    base = Table("paper-baselines",
                 f"Paper vs this run, baselines ({published.REGULARIZATION_SOURCE}, Tables 1-2): each cell is "
                 f"paper / this run; per test sample; {setting}.",
                 ["Paper dataset / this run's dataset", "Model", "Spikes", "EFLOPS", "SynOps", "DNN acc.",
                  "SNN acc."], base_rows)
    sel = Table("paper-selections",
                f"Paper vs this run, selected models (Tables 1-2) and AUC original / smoothed (Table 3): in "
                f"the lambda, %Spikes, %SynOps and accuracy columns each cell is paper / this run; accuracy "
                f"change in pts; "
                f"{setting}.",
                ["Paper dataset / this run's dataset", "Model", "Reg.", "lambda", "%Spikes", "%SynOps",
                 "SNN acc. change (pts)", "AUC paper", "AUC this run"], sel_rows)
    return [base, sel]


# ------------------------------------------------------------------------------------ figures

METRICS = (("spikes", "Spikes per sample"), ("eflops", "EFLOPS per sample"), ("synops", "SynOps per sample"),
           ("dnn_accuracy", "DNN accuracy (%)"), ("snn_accuracy", "SNN accuracy (%)"))


def figure_sweep(res: ConversionResults, params: Params, ctx: Context, dataset: str, arch: str) -> RenderedFigure:
    """Fig. 2: spikes, EFLOPS, SynOps, DNN and SNN accuracy vs lambda, one line per regularizer,
    the baseline dashed, diverged points as red crosses on the x axis."""
    fig, axes = new_figure(2, 3, width=9.6, height=5.2)
    base = res.baseline(dataset, arch)
    lambdas = sorted({r["lambda"] for r in res.points(dataset, arch) if r["point"] != BASELINE})
    for ax, (key, title) in zip(axes, METRICS):
        scale = 100.0 if key.endswith("accuracy") else 1.0
        for reg in params.regularization.regularizers:
            pts = res.points(dataset, arch, reg)
            ok = [p for p in pts if _ok(p)]
            if ok:
                ax.plot([p["lambda"] for p in ok], [v * scale for v in finite(p.get(key) for p in ok)],
                        marker="o", markersize=3, label=regularizer_label(reg))
            mark_diverged(ax, [p["lambda"] for p in pts if p.get("status") == "diverged"])
        if _ok(base) and usable(base.get(key)):
            ax.axhline(base[key] * scale, color="black", linestyle="--", linewidth=1, label="baseline")
        lambda_axis(ax, lambdas)
        ax.set_xlabel("lambda")
        ax.set_title(title)
    handles, labels = axes[0].get_legend_handles_labels()
    if any(p.get("status") == "diverged" for p in res.points(dataset, arch)):
        handles, labels = handles + [diverged_handle()], labels + ["diverged"]
    axes[5].axis("off")
    if handles:
        axes[5].legend(handles, labels, loc="center", title="regularizer")
    diverged = sum(1 for p in res.points(dataset, arch) if p.get("status") == "diverged")
    caption = (f"Fig. 2: Metrics of the converted {arch_label(arch)} vs the regularization strength lambda on "
               f"{dataset} ({_setting(params, ctx, res, dataset)}); dashed: unregularized baseline"
               + (f"; red crosses: the {plural(diverged, 'training')} that diverged." if diverged else "."))
    return render(fig, f"regularization_fig2_{dataset}_{arch}", caption, list(ctx.formats), ctx.dpi)


def figure_accuracy_synops(res: ConversionResults, params: Params, ctx: Context, dataset: str,
                           arch: str) -> RenderedFigure:
    """Fig. 3: SNN accuracy vs SynOps / max SynOps, original (left) and isotonic-smoothed (right)."""
    fig, axes = new_figure(1, 2, width=8.0, height=3.4)
    drawn = False
    for reg in params.regularization.regularizers:
        curve = _ran_curve(res, dataset, arch, reg)
        if not curve:
            continue
        drawn = True
        for ax, ykey, akey in ((axes[0], "y", "auc"), (axes[1], "y_smoothed", "auc_smoothed")):
            ax.plot(curve["x"], finite(curve[ykey]), marker="o", markersize=3,
                    label=f"{regularizer_label(reg)} (AUC {fmt_number(curve.get(akey))})")
    for ax, title in zip(axes, ("original", "smoothed")):
        if not drawn:
            placeholder(ax, "no curve")
            continue
        ax.set_title(title)
        ax.set_xlabel("SynOps / max SynOps")
        ax.set_ylabel("SNN accuracy")
        ax.legend(loc="lower right")
    caption = (f"Fig. 3: SNN accuracy vs SynOps normalized to the maximum over the models of the "
               f"{arch_label(arch)} on {dataset} ({_setting(params, ctx, res, dataset)}); original (left) and "
               f"smoothed (right), anchored at (0, chance); AUC in the legend (Table 3).")
    return render(fig, f"regularization_fig3_{dataset}_{arch}", caption, list(ctx.formats), ctx.dpi)


def figure_timesteps(res: ConversionResults, params: Params, ctx: Context, dataset: str, arch: str) -> RenderedFigure:
    """SNN accuracy after t timesteps, t = 1..T, for the baseline and each selected model."""
    fig, axes = new_figure(1, 1, width=6.4, height=3.4)
    ax = axes[0]
    series = [("baseline", res.baseline(dataset, arch))]
    for reg in params.regularization.regularizers:
        row = res.selected_row(dataset, arch, reg)
        if row is not None:
            series.append((f"{regularizer_label(reg)} @ {fmt_lambda(row['lambda'])}", row))
    drawn = False
    for label, row in series:
        curve = row.get("accuracy_per_timestep") if _ok(row) else None
        if curve:
            drawn = True
            ax.plot(range(1, len(curve) + 1), [100 * v for v in finite(curve)], label=label,
                    linestyle="--" if label == "baseline" else "-", color="black" if label == "baseline" else None)
    if drawn:
        ax.set_xlabel("timestep t")
        ax.set_ylabel("SNN accuracy after t steps (%)")
        ax.legend(loc="lower right")
    else:
        placeholder(ax, "no simulation")
    caption = (f"SNN accuracy vs simulation timestep of the converted {arch_label(arch)} on {dataset} "
               f"({_setting(params, ctx, res, dataset)}): the baseline (dashed) and the selected model of each "
               f"regularizer (Table 1).")
    return render(fig, f"regularization_timesteps_{dataset}_{arch}", caption, list(ctx.formats), ctx.dpi)


# ------------------------------------------------------------------------------------ energy

ENERGY_MODEL_LABELS = {"ops": "ops (Horowitz 2014)", "lemaire": "lemaire (Lemaire et al. 2022)"}


def figure_accuracy_energy(res: ConversionResults, params: Params, ctx: Context, dataset: str,
                           arch: str) -> RenderedFigure:
    """SNN accuracy vs energy per inference of every point, one panel per energy model, the
    DNN's energy (dense, and zero-skipping for ops) as vertical reference lines."""
    models = list(params.energy.models)
    fig, axes = new_figure(1, len(models), width=4.2 * len(models), height=3.4)
    base = res.baseline(dataset, arch)
    for ax, model in zip(axes, models):
        for reg in ["none", *params.regularization.regularizers]:
            pts = [p for p in res.points(dataset, arch, reg) if _ok(p) and usable(p.get(f"energy_{model}_snn_j"))]
            if pts:
                ax.plot([p[f"energy_{model}_snn_j"] for p in pts], [100 * p["snn_accuracy"] for p in pts],
                        marker="o", markersize=3, linestyle="none" if reg == "none" else "-",
                        color="black" if reg == "none" else None,
                        label="baseline" if reg == "none" else regularizer_label(reg))
        if _ok(base):
            for key, style, label in ((f"energy_{model}_dnn_dense_j", "--", "DNN (dense)"),
                                      (f"energy_{model}_dnn_effective_j", ":", "DNN (zero-skipping)")):
                if usable(base.get(key)):
                    ax.axvline(base[key], color="black", linestyle=style, linewidth=1, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("energy per inference (J)")
        ax.set_ylabel("SNN accuracy (%)")
        ax.set_title(ENERGY_MODEL_LABELS.get(model, model))
        ax.legend(loc="lower right", fontsize=6)
    caption = (f"SNN accuracy vs energy per inference of every converted {arch_label(arch)} on {dataset} "
               f"({_setting(params, ctx, res, dataset)}), per energy model; the vertical lines are the energy of "
               f"the baseline DNN (dense MACs, and for ops the zero-skipping MACs of Eq. 1): points left of a line "
               f"cost less than that DNN.")
    return render(fig, f"regularization_energy_{dataset}_{arch}", caption, list(ctx.formats), ctx.dpi)


def break_even_table(res: ConversionResults, params: Params, ctx: Context, dataset: str) -> Table:
    """Per architecture, energy model and DNN reference: the baseline's spikerate, the break-even
    spikerate (the SNN costs what its DNN costs) and how many points of the sweep cost less."""
    rows = []
    for entry in res.break_even:
        if entry["dataset"] != dataset:
            continue
        arch, model, reference = entry["arch"], entry["model"], entry["reference"]
        key = f"energy_{model}_snn_cheaper_than_{reference}"
        points = [p for p in res.points(dataset, arch) if _ok(p) and p.get(key) is not None]
        cheaper = [p for p in points if p[key]]
        rows.append([arch_label(arch), ENERGY_MODEL_LABELS.get(model, model),
                     "DNN dense" if reference == "dnn_dense" else "DNN zero-skipping",
                     fmt_number(entry.get("baseline_spikerate"), 2), fmt_number(entry.get("break_even_spikerate"), 2)
                     if usable(entry.get("break_even_spikerate")) else "none (a silent SNN costs more)",
                     fmt_energy(entry.get("baseline_snn_j")), fmt_energy(entry.get("dnn_j")),
                     f"{len(cheaper)} of {len(points)}"])
    caption = (f"Break-even on {dataset} ({_setting(params, ctx, res, dataset)}): the spikerate (spikes per neuron "
               f"per inference, Eq. 12 of the distillation paper, in [0, T]) at which the converted SNN costs as "
               f"much as its DNN, assuming the SNN's energy affine in its spikes with the baseline's distribution over "
               f"layers; and how many points of the sweep cost less than the DNN.")
    return Table(f"break-even-{dataset}", caption,
                 ["Model", "Energy model", "Reference", "Baseline spikerate", "Break-even spikerate",
                  "Baseline SNN", "DNN", "Points cheaper than the DNN"], rows)


def beyond_paper_table(res: ConversionResults, params: Params, ctx: Context, dataset: str) -> Table | None:
    """The regularizers beyond the paper beside the paper's best (fewest SynOps within the
    accuracy drop): SynOps, EFLOPS, connection sparsity and energy changes."""
    specs = params.regularization.regularizers
    beyond = [s for s in specs if is_beyond_paper(s)]
    if not beyond:
        return None
    models = list(params.energy.models)
    rows = []
    for arch in params.regularization.archs:
        paper_best = [res.selection(dataset, arch, s) for s in specs if not is_beyond_paper(s)]
        paper_best = [s for s in paper_best if s and s.get("selected")]
        chosen = [min(paper_best, key=lambda s: s["synops_change_pct"])] if paper_best else []
        for selection in chosen + [res.selection(dataset, arch, s) for s in beyond]:
            if selection is None:
                continue
            row = res.selected_row(dataset, arch, selection["regularizer"])
            name = regularizer_label(selection["regularizer"])
            if selection in chosen:
                name += " (the paper's best here)"
            if row is None:
                rows.append([arch_label(arch), name, _unselected_reason(res, dataset, arch, selection["regularizer"],
                                                                        _max_drop(params, res, dataset))]
                            + [MISSING] * (5 + len(models)))
                continue
            rows.append([arch_label(arch), name, fmt_lambda(row["lambda"]),
                         fmt_points(row.get("snn_accuracy_delta_pts")),
                         fmt_percent(row.get("synops_change_pct")), fmt_percent(row.get("eflops_change_pct")),
                         fmt_fraction_percent(row.get("connection_sparsity")),
                         fmt_count(row.get("spikes"))]
                        + [fmt_percent(row.get(f"energy_{m}_snn_change_pct")) for m in models])
    caption = (f"Beyond the paper on {dataset} ({_setting(params, ctx, res, dataset)}): the SynOps regularizer "
               f"(activity weighted by each neuron's fan-out, Sorbaro et al. 2020) and joint L1 weight and activity "
               f"regularization (weight lambda {params.regularization.weight_lambda:g}, weights below "
               f"{params.regularization.prune_threshold:g} set to 0), each at its selected lambda (Table 1's rule), "
               f"beside the paper's best regularizer here. Connection sparsity: the fraction of zero weights.")
    return Table(f"beyond-{dataset}", caption,
                 ["Model", "Regularizer", "lambda", "SNN acc. change (pts)", "%SynOps", "%EFLOPS",
                  "Connection sparsity", "Spikes"] + [f"%Energy {m}" for m in models], rows)


# ----------------------------------------------------------------------------------- plot data


def plot_data(res: ConversionResults, params: Params) -> dict[str, list[dict]]:
    """Long-format tables for ``dvc plots``: the sweep, the Fig. 3 curves, accuracy vs timestep."""
    sweep = [{k: r.get(k) for k in ("dataset", "arch", "regularizer", "lambda", "status", "spikes", "eflops",
                                     "synops", "dnn_accuracy", "snn_accuracy", "synops_change_pct")}
             for r in res.rows]
    curves = [{"dataset": c["dataset"], "arch": c["arch"], "regularizer": c["regularizer"],
               "synops_normalized": x, "accuracy": y, "accuracy_smoothed": s}
              for c in res.curves if res.points(c["dataset"], c["arch"], c["regularizer"])
              for x, y, s in zip(c["x"], c["y"], c["y_smoothed"])]
    timesteps = []
    for dataset in res.datasets:
        for arch in params.regularization.archs:
            chosen = [res.baseline(dataset, arch)]
            chosen += [res.selected_row(dataset, arch, reg) for reg in params.regularization.regularizers]
            for row in chosen:
                if _ok(row) and row.get("accuracy_per_timestep"):
                    timesteps += [{"dataset": dataset, "arch": arch, "point": row["point"], "timestep": t + 1,
                                   "snn_accuracy": v} for t, v in enumerate(row["accuracy_per_timestep"])]
    return {"regularization_sweep": sweep, "regularization_accuracy_synops": curves,
            "regularization_accuracy_timestep": timesteps}


# ------------------------------------------------------------------------------------- report


def _introduction(res: ConversionResults, params: Params, ctx: Context, source: str, ran: bool) -> list:
    """What was run, and what has no result."""
    study = params.regularization
    blocks = [Paragraph(
        f"Reproduction of {published.REGULARIZATION_SOURCE} from `{source}`. Profile `{ctx.profile}`; datasets "
        f"{', '.join(study.datasets)}; architectures {', '.join(arch_label(a) for a in study.archs)}; regularizers "
        f"{', '.join(regularizer_label(r) for r in study.regularizers)}, each at its own lambdas "
        f"(`regularization.points`); conversion percentile {params.conversion.percentile:g}, "
        f"{params.simulation.timesteps} timesteps, {params.simulation.input_coding} input coding; "
        f"{plural(len(res.rows), 'point')} "
        f"({sum(1 for r in res.rows if r.get('status') == 'diverged')} diverged).")]
    if not ran:
        blocks.append(Paragraph(f"The conversion study has no results: `{source}` does not exist (run `dvc repro "
                                f"aggregate_conversion`). The paper's numbers are listed alone."))
    missing = [d for d in study.datasets if d not in res.datasets]
    if ran and missing:
        blocks.append(Paragraph(f"No results for dataset(s) {', '.join(missing)} (no evaluated baseline)."))
    if "cifar10" not in study.datasets:
        blocks.append(Paragraph("CIFAR-10 was not run (`regularization.datasets` = "
                                f"[{', '.join(study.datasets)}]): the paper's Table 2 has no counterpart here."))
    return blocks


SPIKE_COUNT_CAVEAT = (
    "Caveat on the paper's spike counts: its Table 1 baselines print 326,185 spikes for the MLP and 4,600,497 "
    "for LeNet-5, but an IF network emits at most one spike per neuron and timestep: 410 neurons x 100 steps = "
    "41,000 per sample for the MLP, 6,518 x 100 = 651,800 for LeNet-5. They are not per-sample counts under the "
    "stated protocol (perhaps summed over a batch or over the input spikes), so compare the relative changes "
    "(%Spikes, %SynOps), not the absolute values.")


def _per_architecture(res: ConversionResults, params: Params, heading: str, draw) -> list:
    """A heading, then ``draw(dataset, arch)`` for every architecture run on every dataset."""
    blocks: list = [Heading(heading)]
    for dataset in res.datasets:
        for arch in params.regularization.archs:
            if res.points(dataset, arch):
                blocks.append(draw(dataset, arch))
    return blocks


def _energy_section(res: ConversionResults, params: Params, ctx: Context) -> list:
    blocks: list = [Heading("Energy per inference"), Paragraph(
        "Energy of every converted SNN and of its DNN under the two energy models of docs/energy.md: "
        "ops (Horowitz 2014: MACs and accumulates only) and lemaire (Lemaire et al. 2022: also the memory "
        "traffic of weights, membrane potentials and spikes, and event addressing).")]
    for dataset in res.datasets:
        blocks.append(break_even_table(res, params, ctx, dataset))
        for arch in params.regularization.archs:
            if any(usable(p.get(f"energy_{m}_snn_j")) for p in res.points(dataset, arch) for m in params.energy.models):
                blocks.append(figure_accuracy_energy(res, params, ctx, dataset, arch))
    for dataset in res.datasets:
        table = beyond_paper_table(res, params, ctx, dataset)
        if table is not None:
            blocks += [Heading(f"Beyond the paper {BEYOND_MARK}"), table]
    return blocks


def build(results: dict[str, Any] | None, params: Params, ctx: Context,
          source: str = "results/conversion/results.json") -> tuple[Document, dict[str, list[dict]]]:
    """The regularization report and its ``dvc plots`` data."""
    res = ConversionResults(results)
    doc = Document("Activity regularization before DNN-to-SNN conversion: this run vs the paper")
    doc.add(*_introduction(res, params, ctx, source, results is not None))
    doc.add(*findings_blocks(res.findings if results is not None else None, published.REGULARIZATION_SOURCE,
                             ctx.profile))
    doc.add(Heading("Paper vs this run"), *paper_tables(res, params, ctx), Paragraph(SPIKE_COUNT_CAVEAT))
    doc.add(Heading("Tables 1-2: selected models"))
    for dataset in res.datasets:
        doc.add(selection_table(res, params, ctx, dataset, 2 if dataset == "cifar10" else 1))
    doc.add(Heading("Table 3: area under the accuracy-SynOps curve"))
    for dataset in res.datasets:
        doc.add(auc_table(res, params, ctx, dataset))
    doc.add(Heading("Fig. 2: metrics vs lambda"))
    for dataset in res.datasets:
        for arch in params.regularization.archs:
            doc.add(figure_sweep(res, params, ctx, dataset, arch) if res.points(dataset, arch)
                    else Paragraph(f"{arch_label(arch)} on {dataset}: {NOT_RUN}."))
    doc.add(*_per_architecture(res, params, "Fig. 3: accuracy vs normalized SynOps",
                               lambda d, a: figure_accuracy_synops(res, params, ctx, d, a)))
    doc.add(*_energy_section(res, params, ctx))
    doc.add(*_per_architecture(res, params, "Accuracy vs timestep of the converted SNNs",
                               lambda d, a: figure_timesteps(res, params, ctx, d, a)))
    doc.add(Heading("All points"))
    for dataset in res.datasets:
        doc.add(all_points_table(res, params, ctx, dataset))
    return doc, plot_data(res, params)
