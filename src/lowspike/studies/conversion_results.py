"""The conversion study's aggregate, torch-free: every ``evaluate.json`` of the grid in one table
with percent changes against the baseline and their paired bootstrap intervals (docs/statistics.md),
the selections of Tables 1-2, the accuracy-vs-SynOps curves and AUCs of Table 3, the break-even
spikerates, the baseline's seed spread, the findings decided against both, and the rows of
``dvc metrics show``: ``results/conversion/results.json``, ``results.csv`` and ``metrics/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from .. import stats
from ..artifacts import read_json, write_csv, write_json
from ..config import Params
from ..models import label
from ..regularizers import is_beyond_paper
from . import RESULTS_SCHEMA_VERSION
from .common import at_chance, microjoules, percent_change, write_metrics
from .conversion_points import BASELINE, RUNS, baseline_replicas, grid
from .curves import accuracy_synops_curve
from .findings import conversion_findings

ENERGY_NETWORKS = ("snn", "dnn_dense", "dnn_effective")
ENERGY_REFERENCES = ("dnn_dense", "dnn_effective")
UNTRACKED_RECORD_KEYS = ("energy_breakdown", "activity", "per_sample")
"""The bulky parts of an ``evaluate.json`` record, kept out of MLflow and of the aggregate's rows."""
SELECTION_FIGURES = ("spikes_change_pct", "eflops_change_pct", "synops_change_pct", "dnn_accuracy_delta_pts",
                     "snn_accuracy_delta_pts", "spikes_change_pct_ci", "eflops_change_pct_ci",
                     "synops_change_pct_ci", "dnn_accuracy_delta_pts_ci", "snn_accuracy_delta_pts_ci")


def select_best(rows: list[dict], baseline: dict, max_drop: float) -> dict | None:
    """Selection rule of Tables 1-2: the model with the fewest SynOps whose SNN accuracy drop
    vs the baseline is below ``max_drop`` percentage points (diverged models and models at chance
    excluded; none when the baseline itself has no SNN accuracy, e.g. it diverged, or is at
    chance: then every "gain" would be noise)."""
    if baseline.get("snn_accuracy") is None or baseline.get("at_chance"):
        return None
    eligible = [
        r for r in rows
        if r.get("status") == "ok"
        and r.get("snn_accuracy") is not None
        and not r.get("at_chance")
        and (baseline["snn_accuracy"] - r["snn_accuracy"]) * 100.0 < max_drop
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda r: (r["synops"], -r["snn_accuracy"]))


def point_energy_columns(record: dict) -> dict[str, Any]:
    """Flat energy fields of a point's ``evaluate.json`` record (none without ``energy``), per
    model ``m``: ``energy_<m>_<net>_j`` (joules per inference of snn, dnn_dense, dnn_effective),
    ``energy_<m>_snn_over_<ref>`` (SNN/DNN ratio), ``energy_<m>_snn_cheaper_than_<ref>``,
    ``energy_<m>_break_even_spikerate_<dense|effective>``; and ``energy_spikerate``."""
    energy = record.get("energy")
    if not energy:
        return {}
    columns: dict[str, Any] = {"energy_spikerate": energy.get("spikerate")}
    for model, figures in energy.items():
        if not isinstance(figures, dict):
            continue
        for net in ENERGY_NETWORKS:
            columns[f"energy_{model}_{net}_j"] = figures.get(f"{net}_j")
        for reference in ENERGY_REFERENCES:
            suffix = reference.removeprefix("dnn_")
            columns[f"energy_{model}_snn_over_{reference}"] = figures.get(f"snn_over_{reference}")
            dnn = figures.get(f"{reference}_j")
            columns[f"energy_{model}_snn_cheaper_than_{reference}"] = (
                figures["snn_j"] < dnn if dnn is not None and figures.get("snn_j") is not None else None)
            columns[f"energy_{model}_break_even_spikerate_{suffix}"] = figures.get(f"break_even_spikerate_{suffix}")
    return columns


def slim_point_record(record: dict) -> dict:
    """A point's ``evaluate.json`` record for the aggregate table: without the per-layer activity,
    and with the energy breakdown reduced to each network's term totals in joules
    (``energy_terms``: ``{model: {net: {term: J}}}``); per-layer totals stay in ``energy``."""
    slim = {k: v for k, v in record.items() if k not in UNTRACKED_RECORD_KEYS}
    if "energy_breakdown" in record:
        slim["energy_terms"] = {model: {net: parts["terms_j"] for net, parts in nets.items()}
                                for model, nets in record["energy_breakdown"].items()}
    return slim


def architecture_break_even(baseline: dict) -> list[dict]:
    """Per energy model and DNN reference, the break-even spikerate of an architecture: the
    baseline's (:func:`lowspike.energy.break_even_spikerate`, with the baseline's per-layer
    distribution of activity), beside the baseline's own spikerate and energies."""
    columns = point_energy_columns(baseline)
    models = [m for m, figures in (baseline.get("energy") or {}).items() if isinstance(figures, dict)]
    rows = []
    for model in models:
        for reference in ENERGY_REFERENCES:
            dnn = columns.get(f"energy_{model}_{reference}_j")
            if dnn is None:
                continue
            rows.append({
                "dataset": baseline["dataset"], "arch": baseline["arch"], "model": model, "reference": reference,
                "break_even_spikerate":
                    columns[f"energy_{model}_break_even_spikerate_{reference.removeprefix('dnn_')}"],
                "baseline_spikerate": columns["energy_spikerate"], "timesteps": baseline.get("timesteps"),
                "baseline_snn_j": columns[f"energy_{model}_snn_j"], "dnn_j": dnn,
            })
    return rows


def _with_changes(rows: list[dict], baseline: dict) -> None:
    """Add to every row its energy columns, chance and beyond-the-paper marks, and its percent
    changes (spikes, EFLOPS, SynOps, energies) and accuracy deltas in points against ``baseline``.
    A diverged baseline is no baseline: every row is marked ``baseline_diverged`` and gets no
    change (as its metrics are missing, every change is None)."""
    diverged = baseline.get("status") == "diverged"
    for row in rows:
        row["baseline_diverged"] = diverged
        row.update(point_energy_columns(row))
        row["at_chance"] = row.get("status") == "ok" and at_chance(
            row.get("snn_accuracy"), row.get("num_classes"), row.get("spikes"))
        row["beyond_paper"] = row["regularizer"] != "none" and is_beyond_paper(row["regularizer"])
    for row in rows:
        for key in ("spikes", "eflops", "synops"):
            row[f"{key}_change_pct"] = percent_change(row.get(key), baseline.get(key))
        for key in [k for k, v in row.items() if k.startswith("energy_") and k.endswith("_j")
                    and not isinstance(v, dict)]:
            row[f"{key[:-2]}_change_pct"] = percent_change(row[key], baseline.get(key))
        for key in ("dnn_accuracy", "snn_accuracy"):
            if row.get(key) is not None and baseline.get(key) is not None:
                row[f"{key}_delta_pts"] = 100.0 * (row[key] - baseline[key])
            else:
                row[f"{key}_delta_pts"] = None


def _selection(dataset: str, arch: str, regularizer: str, max_drop: float, best: dict | None) -> dict:
    entry = {"dataset": dataset, "arch": arch, "regularizer": regularizer, "max_drop_pts": max_drop,
             "selected": best["point"] if best else None, "lambda": best["lambda"] if best else None}
    if best:
        entry.update({k: best.get(k) for k in SELECTION_FIGURES})
        entry.update({k: v for k, v in best.items() if k.startswith("energy_") and not isinstance(v, (bool, dict))})
    return entry


CHANGE_FIGURES = {"spikes": "spikes", "eflops": "eflops", "synops": "synops"}
"""The percent changes that get a bootstrap interval, by the per-sample field they resample."""
ACCURACY_FIGURES = {"snn_accuracy": "snn_correct", "dnn_accuracy": "dnn_correct"}


def seed_spread(records: list[dict]) -> dict[str, Any]:
    """The baseline's spread over its training seeds (the baseline and its replicas,
    ``regularization.baseline_extra_seeds``) in the units of the changes: one sample standard
    deviation of each count relative to its mean in % (``<figure>_pct``), of each accuracy and of
    the SNN-DNN gap in points (``<accuracy>_pts``, ``snn_dnn_gap_pts``); None with one seed."""
    ok = [r for r in records if r.get("status") == "ok"]
    spread: dict[str, Any] = {"seeds": len(ok), "points": [r["point"] for r in ok]}
    for figure in CHANGE_FIGURES:
        value = stats.seed_spread([r.get(figure) for r in ok])
        spread[f"{figure}_pct"] = None if value is None else 100.0 * value
    for figure in ACCURACY_FIGURES:
        value = stats.seed_spread_absolute([r.get(figure) for r in ok])
        spread[f"{figure}_pts"] = None if value is None else 100.0 * value
    gap = stats.seed_spread_absolute([r["snn_accuracy"] - r["dnn_accuracy"] for r in ok
                                      if r.get("snn_accuracy") is not None and r.get("dnn_accuracy") is not None])
    spread["snn_dnn_gap_pts"] = None if gap is None else 100.0 * gap
    return spread


def _with_intervals(rows: list[dict], evidence: stats.Evidence) -> None:
    """Add to every row whose model and baseline have per-sample records the bootstrap
    intervals (:mod:`lowspike.stats`) of its changes (``<figure>_change_pct_ci``) and accuracy
    deltas (``<accuracy>_delta_pts_ci``), paired on the same test samples."""
    for row in rows:
        key, base = (row["dataset"], row["arch"], row["point"]), (row["dataset"], row["arch"], BASELINE)
        if row["point"] == BASELINE or not (evidence.has(key) and evidence.has(base)):
            continue
        for figure, field in CHANGE_FIGURES.items():
            row[f"{figure}_change_pct_ci"] = evidence.interval(row["dataset"], evidence.change_pct(key, base, field))
        for figure, field in ACCURACY_FIGURES.items():
            row[f"{figure}_delta_pts_ci"] = evidence.interval(row["dataset"], evidence.delta_pts(key, base, field))


def _read_points(points: list, eval_root: Path, samples: dict) -> list[dict]:
    """The slim records of ``points`` that have an ``evaluate.json``; their per-sample records go
    into ``samples`` by ``(dataset, arch, point)``."""
    rows = []
    for point in points:
        path = eval_root / point.dataset / point.arch / point.name / "evaluate.json"
        if path.exists():
            record = read_json(path)
            if record.get("per_sample"):
                samples[(point.dataset, point.arch, point.name)] = record["per_sample"]
            rows.append(slim_point_record(record))
    return rows


def aggregate(params: Params, eval_root: Path = RUNS / "eval") -> dict[str, Any]:
    """Collect every evaluate.json of the current grid into one table with deltas and their
    bootstrap intervals (:func:`_with_intervals`), selections (Tables 1-2), accuracy-vs-SynOps
    AUCs (Table 3), per architecture the break-even spikerates of the energy models
    (:func:`architecture_break_even`) and the baseline's seed spread (:func:`seed_spread`), and
    the findings (:func:`lowspike.studies.findings.conversion_findings`) decided on the same
    resamples. Energy columns: :func:`point_energy_columns`, plus
    ``energy_<m>_<net>_change_pct`` vs the baseline."""
    study, stat = params.regularization, params.statistics
    result: dict[str, list] = {"rows": [], "selections": [], "curves": [], "break_even": [], "seed_spread": []}
    samples: dict[tuple, dict] = {}
    evidence = stats.Evidence(samples, stat.resamples, stat.seed, stat.level)
    for dataset in study.datasets:
        for arch in study.archs:
            rows = _read_points(grid(params, dataset, arch), eval_root, samples)
            baseline = next((r for r in rows if r["point"] == BASELINE), None)
            if baseline is None:
                continue
            replicas = _read_points(baseline_replicas(params, dataset, arch), eval_root, samples)
            result["seed_spread"].append({"dataset": dataset, "arch": arch, **seed_spread([baseline, *replicas])})
            _with_changes(rows, baseline)
            _with_intervals(rows, evidence)
            result["rows"].extend(rows)
            if baseline.get("status") == "ok":
                result["break_even"].extend(architecture_break_even(baseline))
            max_drop = study.max_accuracy_drop.get(dataset, 0.5)
            max_synops = max((r["synops"] for r in rows if r.get("status") == "ok"), default=0.0)
            chance = 1.0 / max(1, baseline.get("num_classes", 10))
            for reg in study.regularizers:
                reg_rows = [r for r in rows if r["regularizer"] == reg]
                if not reg_rows:
                    continue
                result["selections"].append(_selection(dataset, arch, reg, max_drop,
                                                       select_best(reg_rows, baseline, max_drop)))
                curve = accuracy_synops_curve([baseline, *reg_rows], max_synops, chance)
                result["curves"].append({"dataset": dataset, "arch": arch, "regularizer": reg, **curve})
    specs = study.regularizers
    result["findings"] = [f.to_dict() for f in conversion_findings(
        result, evidence, [s for s in specs if not is_beyond_paper(s)], [s for s in specs if is_beyond_paper(s)],
        {arch: label(arch) for arch in study.archs})]
    return result


def metric_rows(result: dict, params: Params) -> dict[str, dict[str, Any]]:
    """What ``dvc metrics show`` lists for the conversion study, one file per row, the same few
    columns in every file: per dataset and architecture the baseline (absolute values) and the
    model each regularizer selects (Tables 1-2: its changes in % and pts, its AUC, Table 3), and
    the mark of each finding."""
    rows: dict[str, dict[str, Any]] = {}
    models = list(params.energy.models)
    for row in result["rows"]:
        if row["point"] == BASELINE and row.get("status") == "ok":
            entry = {"snn_accuracy": row.get("snn_accuracy"), "dnn_accuracy": row.get("dnn_accuracy"),
                     "spikes": row.get("spikes"), "synops": row.get("synops"), "eflops": row.get("eflops")}
            entry.update({f"{m}_uj": microjoules(row.get(f"energy_{m}_snn_j")) for m in models})
            entry.update({f"{m}_snn_over_dnn": row.get(f"energy_{m}_snn_over_dnn_dense") for m in models})
            rows[f"{row['dataset']}-{row['arch']}-baseline"] = entry
    curves = {(c["dataset"], c["arch"], c["regularizer"]): c for c in result["curves"]}
    for selection in result["selections"]:
        key = (selection["dataset"], selection["arch"], selection["regularizer"])
        entry = {"lambda": selection.get("lambda"), "snn_accuracy_pts": selection.get("snn_accuracy_delta_pts"),
                 "spikes_pct": selection.get("spikes_change_pct"), "synops_pct": selection.get("synops_change_pct"),
                 "eflops_pct": selection.get("eflops_change_pct"),
                 "auc_smoothed": curves.get(key, {}).get("auc_smoothed")}
        entry.update({f"{m}_uj": microjoules(selection.get(f"energy_{m}_snn_j")) for m in models})
        entry.update({f"{m}_pct": selection.get(f"energy_{m}_snn_change_pct") for m in models})
        rows["-".join(key).replace("+", "_")] = entry
    for finding in result.get("findings", []):
        rows[f"finding-{finding['key']}"] = {"finding": finding["mark"]}
    return rows


def write_aggregate(params: Params, out_dir: str | Path) -> str:
    """Write results.json (with the findings, :mod:`.findings`), results.csv and the DVC metrics
    directory ``metrics/`` (:func:`metric_rows`)."""
    out_dir = Path(out_dir)
    result = {"schema_version": RESULTS_SCHEMA_VERSION, **aggregate(params)}
    write_json(out_dir / "results.json", result)
    columns = ["dataset", "arch", "point", "regularizer", "lambda", "status", "dnn_accuracy", "snn_accuracy",
               "spikes", "eflops", "synops", "spikes_change_pct", "eflops_change_pct", "synops_change_pct",
               "dnn_accuracy_delta_pts", "snn_accuracy_delta_pts", "energy_spikerate"]
    for model in params.energy.models:
        columns += [f"energy_{model}_{net}_j" for net in ENERGY_NETWORKS]
        columns += [f"energy_{model}_{net}_change_pct" for net in ("snn", "dnn_effective")]
        columns += [f"energy_{model}_snn_over_{reference}" for reference in ENERGY_REFERENCES]
        columns += [f"energy_{model}_break_even_spikerate_{reference.removeprefix('dnn_')}"
                    for reference in ENERGY_REFERENCES]
    write_csv(out_dir / "results.csv", result["rows"], columns)
    write_metrics(out_dir / "metrics", metric_rows(result, params))
    return f"{len(result['rows'])} points, {sum(1 for s in result['selections'] if s['selected'])} selections"
