"""The dozen numbers per study that a user compares after a params edit (docs/reports.md):
``results/<study>/headline.json``, written by the report stage, declared as DVC metrics.

- conversion: the findings' marks in one string; per architecture (and dataset, when there are
  several) the baseline SNN accuracy, the largest SynOps cut among the models Tables 1-2
  select (which regularizer and lambda, its SynOps change in %, its SNN accuracy change in
  points) and that model's energy per inference under each energy model (uJ);
- distillation: the findings' marks; per dataset the baseline accuracy, the lowest spikerate
  among Table III's picks (which run, its spikerate and accuracy deltas in %, Eqs. 11, 13) and
  its energy per inference under each energy model (uJ).

Every file carries :data:`SCHEMA_VERSION`; ``make diff`` compares two files only when their
versions agree and says so in one line otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifacts import write_json
from .common import load_results

SCHEMA_VERSION = 1
"""The layout of the headline files; raise it when a key changes meaning or name."""

FINDING_MARKS = {"holds": "holds", "does not hold": "no", "undecided": "undecided", "not run": "not run"}


def _round(value: Any, digits: int) -> Any:
    return round(float(value), digits) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def findings_line(findings: list[dict]) -> str:
    """``"a holds, b no, c undecided"``: each finding's key and mark."""
    return ", ".join(f"{f['key']} {FINDING_MARKS.get(f['mark'], f['mark'])}" for f in findings)


def _prefix(dataset: str, model: str, datasets: list[str]) -> str:
    return f"{model}_" if len(datasets) == 1 else f"{dataset}_{model}_"


def conversion_headline(result: dict, models: list[str]) -> dict[str, Any]:
    """The conversion study's headline (see the module docstring) from its ``results.json``."""
    headline: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "findings": findings_line(result.get("findings", []))}
    baselines = {(r["dataset"], r["arch"]): r for r in result.get("rows", []) if r.get("point") == "baseline"}
    datasets = sorted({dataset for dataset, _ in baselines})
    for (dataset, arch), baseline in baselines.items():
        prefix = _prefix(dataset, arch, datasets)
        headline[f"{prefix}baseline_snn_accuracy_pct"] = _round(100 * (baseline.get("snn_accuracy") or 0), 2) \
            if baseline.get("snn_accuracy") is not None else None
        picks = [s for s in result.get("selections", []) if s["dataset"] == dataset and s["arch"] == arch
                 and s.get("selected") and s.get("synops_change_pct") is not None]
        best = min(picks, key=lambda s: s["synops_change_pct"], default=None)
        headline[f"{prefix}best_cut"] = best["selected"] if best else "none"
        headline[f"{prefix}best_cut_synops_pct"] = _round(best["synops_change_pct"], 1) if best else None
        headline[f"{prefix}best_cut_snn_accuracy_pts"] = _round(best.get("snn_accuracy_delta_pts"), 2) if best else None
        for model in models:
            joules = (best or baseline).get(f"energy_{model}_snn_j")
            headline[f"{prefix}best_cut_{model}_uj"] = _round(joules * 1e6, 4) if joules is not None else None
    return headline


def distillation_headline(result: dict, models: list[str]) -> dict[str, Any]:
    """The distillation study's headline (see the module docstring) from its ``results.json``."""
    headline: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "findings": findings_line(result.get("findings", []))}
    baselines = {c["dataset"]: c for c in result.get("configurations", []) if c.get("method") == "baseline"}
    datasets = sorted(baselines)
    for dataset, baseline in baselines.items():
        prefix = f"{dataset.replace('-', '_')}_" if len(datasets) > 1 else ""
        accuracy = baseline.get("accuracy_mean")
        headline[f"{prefix}baseline_accuracy_pct"] = _round(100 * accuracy, 2) if accuracy is not None else None
        picks = [c for c in result.get("best", {}).get(dataset, {}).values() if c.get("delta_spikerate_mean") is not None]
        best = min(picks, key=lambda c: c["delta_spikerate_mean"], default=None)
        headline[f"{prefix}best_cut"] = best["run"] if best else "none"
        headline[f"{prefix}best_cut_spikerate_pct"] = _round(100 * best["delta_spikerate_mean"], 1) if best else None
        headline[f"{prefix}best_cut_accuracy_pct"] = _round(100 * best["delta_accuracy_mean"], 2) \
            if best and best.get("delta_accuracy_mean") is not None else None
        for model in models:
            joules = (best or baseline).get(f"energy_{model}_snn_j_mean")
            headline[f"{prefix}best_cut_{model}_uj"] = _round(joules * 1e6, 4) if joules is not None else None
    return headline


def write_headlines(models: list[str], conversion_dir: str | Path = "results/conversion",
                    distillation_dir: str | Path = "results/distillation") -> dict[str, dict[str, Any]]:
    """Write ``headline.json`` beside each study's ``results.json`` (a study not run gets a file
    with its schema version only); returns ``{study: headline}``."""
    written = {}
    for study, folder, build in (("conversion", conversion_dir, conversion_headline),
                                 ("distillation", distillation_dir, distillation_headline)):
        result = load_results(Path(folder) / "results.json")
        written[study] = build(result, models) if result is not None else {"schema_version": SCHEMA_VERSION}
        write_json(Path(folder) / "headline.json", written[study])
    return written


def numbers(headlines: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The numeric headline values as ``<study>.<key>`` (what an MLflow run can hold as metrics),
    the schema version aside (:func:`words`)."""
    return {f"{study}.{key}": value for study, data in headlines.items() for key, value in data.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "schema_version"}


def words(headlines: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The headline's strings (findings, which model makes each best cut) and its schema version
    as ``<study>.<key>`` (an MLflow run's tags)."""
    return {f"{study}.{key}": str(value) for study, data in headlines.items() for key, value in data.items()
            if isinstance(value, str) or key == "schema_version"}
