"""The distillation study's aggregate, torch-free: every evaluated student of the grids with its
relative deltas against the same-seed baseline (Eqs. 11 and 13 of the distillation paper,
energy included), mean and standard deviation over seeds per configuration with the paired
bootstrap intervals of its deltas (docs/statistics.md), the baseline's seed spread, the
teachers' energies, the break-even spikerates, Table III's selections
(:func:`lowspike.distillation.best_configuration`), the findings decided against both, and the
rows of ``dvc metrics show``: ``results/distillation/results.json``, ``results.csv`` and
``metrics/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import read_json, write_csv, write_json
from ..config import Params
from ..distillation import RUNS, TABLE_III_MAX_ACCURACY_LOSS, best_configuration, families, student_runs
from ..energy import break_even_from_energies
from ..stats import Evidence, seed_spread
from . import RESULTS_SCHEMA_VERSION
from .common import at_chance, is_number, mean_std, microjoules, relative_delta, write_metrics
from .findings import distillation_findings

TEACHER_EVAL = "teacher"
"""``runs/student_eval/<dataset>/teacher/evaluate.json``: the teacher's evaluation, beside the
students' (no student run has this name)."""
UNTRACKED_RECORD_KEYS = ("layers", "energy_breakdown", "per_sample")
"""The bulky parts of an ``evaluate.json`` record, kept out of results.json rows and MLflow."""
TEACHER_REFERENCES = ("dnn_dense", "dnn_effective")
SUMMARY_KEYS = ("accuracy", "total_spikes", "spikerate", "spikerate_per_timestep", "delta_accuracy",
                "delta_spikerate")


def teacher_eval_path(dataset: str, eval_root: Path = RUNS / "student_eval") -> Path:
    return eval_root / dataset / TEACHER_EVAL / "evaluate.json"


def student_energy_columns(record: dict) -> dict[str, float]:
    """Flat energy figures of an ``evaluate.json`` record, student's or teacher's (none without
    ``energy``): per model ``m`` of ``energy.models``, ``energy_<m>_<figure>`` for every figure of
    ``record["energy"][m]`` that is a number: ``snn_j``, ``snn_silent_j``, ``dnn_dense_j``,
    ``dnn_effective_j``, ``snn_over_dnn_dense``, ``break_even_spikerate_dense``, ... (the names of
    :func:`lowspike.energy.evaluate_energy`; a network a model does not give is left out)."""
    columns: dict[str, float] = {}
    for model, figures in (record.get("energy") or {}).items():
        if not isinstance(figures, dict):
            continue
        for figure, value in figures.items():
            if is_number(value):
                columns[f"energy_{model}_{figure}"] = value
    return columns


def energy_models(record: dict) -> list[str]:
    return [m for m, figures in (record.get("energy") or {}).items() if isinstance(figures, dict)]


def slim_student_record(record: dict) -> dict:
    """An ``evaluate.json`` record for results.json: without the per-layer activity
    (``layers``), its energy breakdown reduced to each network's term totals in joules
    (``energy_terms``: ``{model: {net: {term: J}}}``), its flat :func:`student_energy_columns` added."""
    slim = {k: v for k, v in record.items() if k not in UNTRACKED_RECORD_KEYS}
    if "energy_breakdown" in record:
        slim["energy_terms"] = {model: {net: parts["terms_j"] for net, parts in nets.items()}
                                for model, nets in record["energy_breakdown"].items()}
    slim.update(student_energy_columns(record))
    return slim


def student_energy_deltas(row: dict, baseline: dict | None, teacher: dict | None) -> dict[str, float | None]:
    """Energy figures of a student row against its same-seed baseline and its teacher, per
    model ``m`` (rows and teacher with :func:`student_energy_columns`):

    - ``delta_energy_<m>_snn``: ``(E - E_base) / E_base`` of the SNN's energy per inference
      (Eq. 13 of the distillation paper applied to energy; None without a baseline energy);
    - ``energy_<m>_snn_over_teacher_<dense|effective>``: ``E / E_teacher`` with the teacher's
      dense or zero-skipping energy (:func:`lowspike.energy.evaluate_dnn_energy`);
    - ``energy_<m>_break_even_spikerate_teacher_<dense|effective>``: the spikerate at which the
      student would cost as much as its teacher
      (:func:`lowspike.energy.break_even_from_energies`).
    """
    figures: dict[str, float | None] = {}
    for model in energy_models(row):
        snn = row.get(f"energy_{model}_snn_j")
        figures[f"delta_energy_{model}_snn"] = relative_delta(snn, (baseline or {}).get(f"energy_{model}_snn_j"))
        for reference in TEACHER_REFERENCES:
            teacher_j = (teacher or {}).get(f"energy_{model}_{reference}_j")
            if teacher_j is None:
                continue
            suffix = reference.removeprefix("dnn_")
            figures[f"energy_{model}_snn_over_teacher_{suffix}"] = snn / teacher_j if teacher_j else None
            figures[f"energy_{model}_break_even_spikerate_teacher_{suffix}"] = break_even_from_energies(
                row["energy"]["spikerate"], snn, row[f"energy_{model}_snn_silent_j"], teacher_j)
    return figures


def _is_energy_figure(key: str, value: Any) -> bool:
    return key.startswith(("energy_", "delta_energy_")) and is_number(value)


def student_break_even(dataset: str, baselines: list[dict], teacher: dict | None) -> list[dict]:
    """Per energy model and reference, the break-even spikerate of a student architecture: the
    mean over the finished baseline seeds of :func:`lowspike.energy.break_even_spikerate`
    against the student's own non-spiking counterpart (``dnn_dense``) and of
    :func:`student_energy_deltas`'s against the teacher (``teacher_dense``,
    ``teacher_effective``), beside the baselines' spikerate and energies (``dnn_j``: the
    reference's joules). The keys of the conversion study's ``break_even`` rows, plus
    ``break_even_spikerate_std`` and ``seeds`` (baselines with a defined break-even)."""
    rows: list[dict] = []
    if not baselines:
        return rows
    references = [("dnn_dense", "break_even_spikerate_dense", lambda m, b: b.get(f"energy_{m}_dnn_dense_j"))]
    references += [(f"teacher_{ref.removeprefix('dnn_')}", f"break_even_spikerate_teacher_{ref.removeprefix('dnn_')}",
                    lambda m, b, ref=ref: (teacher or {}).get(f"energy_{m}_{ref}_j")) for ref in TEACHER_REFERENCES]
    for model in energy_models(baselines[0]):
        for reference, figure, reference_j in references:
            if all(reference_j(model, b) is None for b in baselines):
                continue
            rates = [b.get(f"energy_{model}_{figure}") for b in baselines]
            mean, std = mean_std(rates)
            rows.append({
                "dataset": dataset, "arch": baselines[0].get("model"), "model": model, "reference": reference,
                "break_even_spikerate": mean, "break_even_spikerate_std": std,
                "seeds": sum(1 for r in rates if r is not None),
                "baseline_spikerate": mean_std([b.get("spikerate") for b in baselines])[0],
                "timesteps": baselines[0].get("timesteps"),
                "baseline_snn_j": mean_std([b.get(f"energy_{model}_snn_j") for b in baselines])[0],
                "dnn_j": mean_std([reference_j(model, b) for b in baselines])[0],
            })
    return rows


def _teacher_entry(dataset: str, eval_root: Path, teacher_root: Path) -> dict | None:
    """The teacher's ``train.json`` with its evaluation (``evaluate_teacher``), slimmed."""
    train_file = teacher_root / dataset / "train.json"
    if not train_file.exists():
        return None
    entry = read_json(train_file)
    eval_file = teacher_eval_path(dataset, eval_root)
    if eval_file.exists():
        evaluation = slim_student_record(read_json(eval_file))
        entry.update({k: v for k, v in evaluation.items()
                      if k in ("samples", "energy", "energy_terms") or k.startswith("energy_")})
    return entry


def _with_deltas(found: list[dict], baselines: dict[int, dict], teacher: dict | None) -> None:
    """Add to every row its relative deltas against the baseline of its seed (Eqs. 11, 13), per
    layer too, and its energy deltas (:func:`student_energy_deltas`). A diverged baseline is no
    baseline: its seed's rows get no delta and are marked ``baseline_diverged``."""
    for row in found:
        base = baselines.get(row["seed"])
        row["baseline_diverged"] = bool(base) and base.get("status") == "diverged"
        if row["baseline_diverged"]:
            base = None
        row["delta_accuracy"] = relative_delta(row.get("accuracy"), base and base.get("accuracy"))
        row["delta_spikerate"] = relative_delta(row.get("spikerate"), base and base.get("spikerate"))
        row["delta_spikerate_per_layer"] = {
            layer: relative_delta(rate, (base or {}).get("spikerate_per_layer", {}).get(layer))
            for layer, rate in row.get("spikerate_per_layer", {}).items()
        }
        row.update(student_energy_deltas(row, base, teacher))


def _configuration(dataset: str, run_name: str, group: list[dict]) -> dict:
    """The mean and standard deviation over the seeds that did not diverge of one configuration."""
    entry = {"dataset": dataset, "run": run_name, "method": group[0]["method"],
             "setting": group[0].get("setting", {}), "seeds": len(group),
             "seed_list": [r["seed"] for r in group if r.get("status") != "diverged" and not r.get("baseline_diverged")],
             "diverged": sum(1 for r in group if r.get("status") == "diverged"),
             "baseline_diverged": sum(1 for r in group if r.get("baseline_diverged"))}
    entry["parameters"] = group[0].get("parameters")
    entry["num_classes"] = group[0].get("num_classes")
    finished = [r for r in group if r.get("status") != "diverged"]
    energy_keys = dict.fromkeys(k for r in finished for k, v in r.items() if _is_energy_figure(k, v))
    for key in (*SUMMARY_KEYS, *energy_keys):
        entry[f"{key}_mean"], entry[f"{key}_std"] = mean_std([r.get(key) for r in finished])
    layers = group[0].get("spikerate_per_layer", {})
    entry["delta_spikerate_per_layer_mean"] = {
        layer: mean_std([r["delta_spikerate_per_layer"].get(layer) for r in finished])[0] for layer in layers
    }
    return entry


def aggregate(params: Params, eval_root: Path = RUNS / "student_eval", teacher_root: Path = RUNS / "teacher"
              ) -> dict[str, Any]:
    """Every evaluated student of the current grids with its deltas, and per-configuration
    mean and standard deviation over the seeds that did not diverge.

    Energy: each row is :func:`slim_student_record` with :func:`student_energy_deltas`; each
    configuration has ``<key>_mean`` and ``<key>_std`` of every numeric ``energy_*`` and
    ``delta_energy_*`` figure; ``teachers`` carry their energies (:func:`_teacher_entry`);
    ``break_even`` lists :func:`student_break_even` per dataset."""
    rows: list[dict] = []
    teachers: list[dict] = []
    break_even: list[dict] = []
    spreads: list[dict] = []
    samples: dict[tuple, dict] = {}
    for dataset in params.distillation.datasets:
        teacher = _teacher_entry(dataset, eval_root, teacher_root)
        if teacher is not None:
            teachers.append(teacher)
        baselines: dict[int, dict] = {}
        found: list[dict] = []
        for run in student_runs(params, dataset):
            path = eval_root / dataset / run.name / f"seed{run.seed}" / "evaluate.json"
            if not path.exists():
                continue
            record = read_json(path)
            if record.get("per_sample") and record.get("status") != "diverged":
                samples[(dataset, run.name, run.seed)] = record["per_sample"]
            row = slim_student_record(record)
            found.append(row)
            if run.method == "baseline":
                baselines[run.seed] = row
        _with_deltas(found, baselines, teacher)
        rows.extend(found)
        finished_baselines = [b for _, b in sorted(baselines.items()) if b.get("status") != "diverged"]
        break_even.extend(student_break_even(dataset, finished_baselines, teacher))
        spreads.append(baseline_spread(dataset, finished_baselines))
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["run"]), []).append(row)
    summary = [_configuration(dataset, run_name, group) for (dataset, run_name), group in groups.items()]
    stat = params.statistics
    evidence = Evidence(samples, stat.resamples, stat.seed, stat.level)
    for config in summary:
        _with_intervals(config, evidence)
    result = {"rows": rows, "configurations": summary, "teachers": teachers, "break_even": break_even,
              "baseline_spread": spreads, "best_max_accuracy_loss": TABLE_III_MAX_ACCURACY_LOSS}
    result["best"] = {dataset: best_per_family(summary, dataset) for dataset in params.distillation.datasets}
    num_classes = {c["dataset"]: c.get("num_classes") for c in summary if c["method"] == "baseline"}
    result["findings"] = [f.to_dict() for f in distillation_findings(result, evidence, params.distillation.datasets,
                                                                       num_classes)]
    return result


def baseline_spread(dataset: str, baselines: list[dict]) -> dict[str, Any]:
    """The baseline's spread over its finished seeds (``distillation.baseline_seeds``) in the unit
    of the deltas: one sample standard deviation of its accuracy and of its spikerate relative to
    their means (:func:`lowspike.stats.seed_spread`; None with one seed)."""
    return {"dataset": dataset, "seeds": len(baselines),
            "accuracy": seed_spread([b.get("accuracy") for b in baselines]),
            "spikerate": seed_spread([b.get("spikerate") for b in baselines])}


def _with_intervals(config: dict, evidence: Evidence) -> None:
    """A configuration's paired bootstrap intervals (:mod:`lowspike.stats`) of its relative deltas
    (``delta_accuracy_ci``, ``delta_spikerate_ci``: per resample the mean over its seeds of each
    seed's delta against the baseline of that seed, on the same test samples), and the seeds
    they cover (``resampled_seeds``: those with per-sample records, their baseline's too)."""
    if config["method"] == "baseline":
        return
    dataset = config["dataset"]
    seeds = [seed for seed in config.get("seed_list", [])
             if evidence.has((dataset, config["run"], seed)) and evidence.has((dataset, "baseline", seed))]
    config["resampled_seeds"] = seeds
    for key, field in (("delta_accuracy", "correct"), ("delta_spikerate", "spikes")):
        config[f"{key}_ci"] = evidence.interval(dataset, np.mean(
            [evidence.relative_delta((dataset, config["run"], seed), (dataset, "baseline", seed), field)
             for seed in seeds], axis=0)) if seeds else None


def best_per_family(configurations: list[dict], dataset: str,
                    max_accuracy_loss: float = TABLE_III_MAX_ACCURACY_LOSS) -> dict[str, dict]:
    """Table III: per family the configuration :func:`lowspike.distillation.best_configuration`
    picks among the dataset's configurations of the family's methods; nothing when the baseline
    itself is at chance (every "gain" would be noise). The selected configurations carry every
    figure of :func:`aggregate`'s configurations, energies and their deltas included."""
    base = next((c for c in configurations if c["dataset"] == dataset and c["method"] == "baseline"), None)
    if base is None or at_chance(base.get("accuracy_mean"), base.get("num_classes"), base.get("total_spikes_mean")):
        return {}
    best: dict[str, dict] = {}
    for family, methods in families().items():
        chosen = best_configuration([c for c in configurations if c["dataset"] == dataset and c["method"] in methods],
                                    max_accuracy_loss)
        if chosen is not None:
            best[family] = chosen
    return best


def metric_rows(result: dict, models: list[str]) -> dict[str, dict[str, Any]]:
    """What ``dvc metrics show`` lists for the distillation study, one file per row with the same
    few columns: per dataset the teacher and the baseline (absolute values; energies in uJ per
    inference), the best configuration of each Table III family (relative deltas in %, Eqs.
    11, 13), and the mark of each finding."""
    def pct(value):
        return None if value is None else 100.0 * value

    rows: dict[str, dict[str, Any]] = {}
    for teacher in result["teachers"]:
        rows[f"{teacher['dataset']}-teacher"] = {
            "run": teacher.get("model"), "accuracy": teacher.get("accuracy"),
            **{f"{m}_uj": microjoules(teacher.get(f"energy_{m}_dnn_dense_j")) for m in models}}
    for config in result["configurations"]:
        if config["method"] == "baseline":
            rows[f"{config['dataset']}-baseline"] = {
                "run": "baseline", "accuracy": config.get("accuracy_mean"), "spikerate": config.get("spikerate_mean"),
                "total_spikes": config.get("total_spikes_mean"),
                **{f"{m}_uj": microjoules(config.get(f"energy_{m}_snn_j_mean")) for m in models},
                **{f"{m}_over_teacher": config.get(f"energy_{m}_snn_over_teacher_dense_mean") for m in models}}
    for dataset, chosen in result["best"].items():
        for family, config in chosen.items():
            rows[f"{dataset}-best-{family.replace('+', '_')}"] = {
                "run": config["run"], "delta_accuracy_pct": pct(config.get("delta_accuracy_mean")),
                "delta_spikerate_pct": pct(config.get("delta_spikerate_mean")),
                **{f"{m}_uj": microjoules(config.get(f"energy_{m}_snn_j_mean")) for m in models},
                **{f"{m}_over_teacher": config.get(f"energy_{m}_snn_over_teacher_dense_mean") for m in models},
                **{f"delta_{m}_pct": pct(config.get(f"delta_energy_{m}_snn_mean")) for m in models}}
    for finding in result.get("findings", []):
        rows[f"finding-{finding['key']}"] = {"finding": finding["mark"]}
    return rows


def write_aggregate(params: Params, out_dir: str | Path) -> str:
    """Write results.json (rows, configurations, teachers, Table III selections, break-even
    spikerates, findings), results.csv and the DVC metrics directory ``metrics/``
    (:func:`metric_rows`)."""
    out_dir = Path(out_dir)
    result = {"schema_version": RESULTS_SCHEMA_VERSION, **aggregate(params)}
    write_json(out_dir / "results.json", result)
    models = list(params.energy.models)
    columns = ["dataset", "run", "method", "seed", "status", "accuracy", "total_spikes", "spikerate",
               "delta_accuracy", "delta_spikerate"]
    for model in models:
        columns += [f"energy_{model}_snn_j", f"energy_{model}_dnn_dense_j", f"delta_energy_{model}_snn",
                    f"energy_{model}_snn_over_dnn_dense", f"energy_{model}_snn_over_teacher_dense",
                    f"energy_{model}_break_even_spikerate_dense"]
    write_csv(out_dir / "results.csv", result["rows"], columns)
    write_metrics(out_dir / "metrics", metric_rows(result, models))
    return f"{len(result['rows'])} students, {len(result['teachers'])} teachers"
