"""The direct-training study (distillation paper): teachers, students, evaluation, aggregation.

Artifacts:

- ``runs/teacher/<dataset>/model.pt`` and ``train.json`` (accuracy, parameter count)
- ``runs/student/<dataset>/<run>/seed<seed>/model.pt`` and ``train.json``, where ``<run>``
  names the method and its setting: ``baseline``, ``mse-a<alpha>``, ``st-t<tau>``,
  ``het-s<tau_s>-t<tau_t>``, ``act-<norm>-<lambda>``, ``log-<norm>-<lambda>``
- ``runs/student_eval/<dataset>/<run>/seed<seed>/evaluate.json`` accuracy, spikes, spikerate,
  per-layer spikerate on the test split
- ``results/distillation/results.json`` (and ``.csv``) every run with its relative deltas
  against the baseline of the same dataset, model and seed (Eqs. 11 and 13), and the
  mean/std over seeds per configuration.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import read_json
from ..config import Params
from .common import format_value

RUNS = Path("runs")
METHODS = ("baseline", "mse", "soft_targets", "heterogeneous", "activation", "logits")


@dataclass(frozen=True)
class StudentRun:
    """One student training: a method with its setting, on a dataset, for a seed."""

    dataset: str
    method: str
    seed: int
    settings: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    @property
    def setting(self) -> dict[str, Any]:
        return dict(self.settings)

    @property
    def name(self) -> str:
        s = self.setting
        if self.method == "baseline":
            return "baseline"
        if self.method == "mse":
            return f"mse-a{format_value(s['alpha'])}"
        if self.method == "soft_targets":
            return f"st-t{format_value(s['tau'])}"
        if self.method == "heterogeneous":
            return f"het-s{format_value(s['tau_s'])}-t{format_value(s['tau_t'])}"
        prefix = "act" if self.method == "activation" else "log"
        return f"{prefix}-{s['norm']}-{format_value(s['lam'])}"

    def folder(self, kind: str = "student") -> Path:
        return RUNS / kind / self.dataset / self.name / f"seed{self.seed}"

    @property
    def uses_teacher(self) -> bool:
        return self.method in ("mse", "soft_targets", "heterogeneous")


def student_runs(params: Params, dataset: str) -> list[StudentRun]:
    """Every student of the grids in params.yaml for ``dataset``, the baselines first."""
    study = params.distillation
    grids = study.grids
    runs: list[StudentRun] = []
    for seed in study.seeds:
        runs.append(StudentRun(dataset, "baseline", seed))
        runs += [StudentRun(dataset, "mse", seed, (("alpha", a),)) for a in grids.mse.alphas]
        runs += [StudentRun(dataset, "soft_targets", seed, (("tau", t),)) for t in grids.soft_targets.taus]
        runs += [
            StudentRun(dataset, "heterogeneous", seed, (("tau_s", s), ("tau_t", t)))
            for s in grids.heterogeneous.tau_s
            for t in grids.heterogeneous.tau_t
        ]
        runs += [
            StudentRun(dataset, "activation", seed, (("norm", n), ("lam", lam)))
            for n in grids.activation.norms
            for lam in grids.activation.lambdas
        ]
        runs += [
            StudentRun(dataset, "logits", seed, (("norm", n), ("lam", lam)))
            for n in grids.logits.norms
            for lam in grids.logits.lambdas
        ]
    return runs


def relative_delta(value: float | None, baseline: float | None) -> float | None:
    """Eqs. 11 and 13 of the distillation paper: ``(value - baseline) / baseline``.

    None when the baseline is 0 or missing (a silent baseline has no relative delta).
    """
    if value is None or baseline is None or baseline == 0:
        return None
    return (value - baseline) / baseline


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(params: Params, eval_root: Path = RUNS / "student_eval", teacher_root: Path = RUNS / "teacher"
              ) -> dict[str, Any]:
    """Every evaluated student of the current grids with its deltas, and per-configuration
    mean and standard deviation over seeds."""
    rows: list[dict] = []
    teachers: list[dict] = []
    for dataset in params.distillation.datasets:
        teacher_file = teacher_root / dataset / "train.json"
        if teacher_file.exists():
            teachers.append(read_json(teacher_file))
        baselines: dict[int, dict] = {}
        found: list[dict] = []
        for run in student_runs(params, dataset):
            path = eval_root / dataset / run.name / f"seed{run.seed}" / "evaluate.json"
            if not path.exists():
                continue
            row = read_json(path)
            found.append(row)
            if run.method == "baseline":
                baselines[run.seed] = row
        for row in found:
            base = baselines.get(row["seed"])
            row["delta_accuracy"] = relative_delta(row.get("accuracy"), base and base.get("accuracy"))
            row["delta_spikerate"] = relative_delta(row.get("spikerate"), base and base.get("spikerate"))
            row["delta_spikerate_per_layer"] = {
                layer: relative_delta(rate, (base or {}).get("spikerate_per_layer", {}).get(layer))
                for layer, rate in row.get("spikerate_per_layer", {}).items()
            }
        rows.extend(found)

    configurations: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        configurations.setdefault((row["dataset"], row["run"]), []).append(row)
    summary = []
    for (dataset, run_name), group in configurations.items():
        entry = {"dataset": dataset, "run": run_name, "method": group[0]["method"],
                 "setting": group[0].get("setting", {}), "seeds": len(group),
                 "diverged": sum(1 for r in group if r.get("status") == "diverged")}
        for key in ("accuracy", "total_spikes", "spikerate", "delta_accuracy", "delta_spikerate"):
            entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std([r.get(key) for r in group])
        layers = group[0].get("spikerate_per_layer", {})
        entry["delta_spikerate_per_layer_mean"] = {
            layer: _mean_std([r["delta_spikerate_per_layer"].get(layer) for r in group])[0] for layer in layers
        }
        summary.append(entry)
    return {"rows": rows, "configurations": summary, "teachers": teachers}


def best_per_method(configurations: list[dict], dataset: str, max_accuracy_loss: float = 0.01) -> dict[str, dict]:
    """Table III: per family (KD, logits regularization, activation regularization) the
    configuration with the lowest spikerate delta whose relative accuracy delta is at least
    ``-max_accuracy_loss``."""
    families = {"KD": ("mse", "soft_targets", "heterogeneous"), "LogReg": ("logits",), "ActReg": ("activation",)}
    best: dict[str, dict] = {}
    for family, methods in families.items():
        candidates = [
            c for c in configurations
            if c["dataset"] == dataset and c["method"] in methods
            and c.get("delta_accuracy_mean") is not None and c["delta_accuracy_mean"] >= -max_accuracy_loss
            and c.get("delta_spikerate_mean") is not None
        ]
        if candidates:
            best[family] = min(candidates, key=lambda c: c["delta_spikerate_mean"])
    return best
