"""Every stage kind on the tiny digits pipeline, with tracking on and every point-name form (the
joint points ``l1+wl1-...``, ``het-...+act-...`` and ``feat-...+act-...`` included), each stage
run with a recording view of its params, one after another in one process as a warm sweep
worker runs them (tests/params_probe.py):

- a stage reads no params key outside its declaration (:mod:`lowspike.stage_params`, the
  ``params:`` of ``dvc.yaml``) but the tracking settings, after its command-line checks;
- no stage prints "tracking disabled", every MLflow run ends FINISHED, and each run holds one
  metric per number of the records its stage wrote (none lost to an illegal key).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lowspike.distillation import METHODS, run_from_args
from lowspike.stage_params import LOGGING_ONLY, covered, stage_keys
from lowspike.studies.distillation_results import student_energy_columns
from lowspike.tracking import metric_key

from ..reliability.conftest import EMPTY_GRIDS, REPO, stage_env, tiny_params, write_params

pytestmark = pytest.mark.integration

POINTS = ["l1-0.001", "l1+wl1-0.001"]
GRIDS = {"mse": {"alphas": [0.5]}, "logits": {"l2": [0.5], "l2sq": []},
         "combined": {"tau_s": [1.0], "tau_t": [2.0], "norms": ["l1"], "lambdas": [0.5]},
         "feature_act": {"weights": [1.0], "norms": ["l1"], "lambdas": [0.5]}}
STUDENTS = [("baseline", {}), ("mse", {"alpha": 0.5}), ("logits", {"norm": "l2", "lam": 0.5}),
            ("combined", {"tau_s": 1.0, "tau_t": 2.0, "norm": "l1", "lam": 0.5}),
            ("feature_act", {"weight": 1.0, "norm": "l1", "lam": 0.5})]


def _student_args(method: str, setting: dict) -> list[str]:
    flags = [item for key, value in setting.items() for item in (f"--{key.replace('_', '-')}", str(value))]
    return ["train_student", "train_student.py", "--dataset", "digits", "--method", method, *flags, "--seed", "0"]


STAGES = ([("prepare", "prepare.py", "--dataset", "digits")]
          + [("train_dnn", "train_dnn.py", "--dataset", "digits", "--arch", "mlp", "--point", point)
             for point in ("baseline", *POINTS)]
          + [(kind, f"{kind}.py", "--dataset", "digits", "--arch", "mlp") for kind in ("convert", "simulate", "evaluate")]
          + [("aggregate_conversion", "aggregate_conversion.py"), ("train_teacher", "train_teacher.py", "--dataset", "digits")]
          + [tuple(_student_args(method, setting)) for method, setting in STUDENTS]
          + [("evaluate_students", "evaluate_students.py", "--dataset", "digits"),
             ("aggregate_distillation", "aggregate_distillation.py"),
             ("export_conversion", "export.py", "--study", "conversion", "--dataset", "digits", "--arch", "mlp"),
             ("export_distillation", "export.py", "--study", "distillation", "--dataset", "digits"),
             ("report", "report.py")])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The tiny pipeline run stage by stage: ``{(kind, args): {"exit", "reads", "stderr"}}`` (the
    stage's output in "stderr")."""
    root = tmp_path_factory.mktemp("every-stage")
    params = tiny_params({"regularization": {"points": {"mlp": POINTS, "lenet5": []}},
                          "distillation": {"grids": {"digits": {**EMPTY_GRIDS, **GRIDS}}, "neurobench_samples": 16}, "tracking": {"enabled": True}})
    write_params(root / "params.yaml", params)
    (root / "profiles").mkdir()
    plan = [{"argv": [str(REPO / "stages" / script), *args], "out": str(root / f"probe-{index}.json"),
             "log": str(root / f"probe-{index}.log")} for index, (_, script, *args) in enumerate(STAGES)]
    (root / "plan.json").write_text(json.dumps(plan))
    done = subprocess.run([sys.executable, str(REPO / "tests" / "params_probe.py"), str(root / "plan.json")],
                          cwd=root, env=stage_env(root), capture_output=True, text=True, timeout=900)
    runs = {}
    for (kind, _, *args), stage in zip(STAGES, plan):
        log = Path(stage["log"]).read_text() if Path(stage["log"]).exists() else done.stderr
        assert Path(stage["out"]).exists(), f"{kind} {args}: {log[-3000:]}"
        run = json.loads(Path(stage["out"]).read_text())
        assert run["exit"] == 0, f"{kind} {args}: {log[-3000:]}"
        runs[(kind, tuple(args))] = {**run, "stderr": log}
    assert done.returncode == 0, done.stderr[-3000:]
    return root, runs


def _declared(kind: str, args: tuple[str, ...]) -> list[str]:
    if kind != "train_student":
        return stage_keys(kind, "digits")
    method = args[args.index("--method") + 1]
    return stage_keys(kind, "digits", study_alpha=METHODS[method].uses_study_alpha)


def test_every_stage_reads_only_the_params_it_declares(pipeline):
    _, runs = pipeline
    for (kind, args), run in runs.items():
        undeclared = [key for key in run["reads"] if not covered(key, [*_declared(kind, args), *LOGGING_ONLY])]
        assert not undeclared, f"{kind} {' '.join(args)} reads {undeclared} beyond {_declared(kind, args)}"
        assert run["reads"] or kind.startswith("aggregate"), kind


def test_no_stage_loses_tracking_and_every_run_finishes(pipeline):
    root, runs = pipeline
    for (kind, args), run in runs.items():
        assert "tracking disabled" not in run["stderr"] and "warning: MLflow" not in run["stderr"], (kind, run["stderr"])
    with sqlite3.connect(root / "mlflow.db") as db:
        statuses = db.execute("select status, count(*) from runs group by status").fetchall()
    tracked = sum(1 for kind, _ in runs if kind not in ("prepare", "aggregate_conversion", "aggregate_distillation"))
    assert statuses == [("FINISHED", tracked)]  # the report stage's run is the pipeline run


def _numbers(value, prefix: str = "") -> set[str]:
    """The dotted keys of every finite number (booleans too) in a JSON record, lists aside."""
    if isinstance(value, dict):
        return {key for k, v in value.items() for key in _numbers(v, f"{prefix}{k}.")}
    if isinstance(value, bool) or (isinstance(value, (int, float)) and value == value):
        return {prefix[:-1]}
    return set()


def _metrics(root: Path, run_name: str) -> set[str]:
    with sqlite3.connect(root / "mlflow.db") as db:
        return {key for (key,) in db.execute(
            "select m.key from latest_metrics m join runs r on r.run_uuid = m.run_uuid where r.name = ?", (run_name,))}


def test_every_number_of_the_records_reaches_mlflow_under_a_legal_key(pipeline):
    root, _ = pipeline
    for kind, file, untracked in (("convert", "convert.json", ()), ("simulate", "simulation.json", ()),
                                  ("evaluate", "evaluate.json", ("energy_breakdown", "activity"))):
        folder = {"convert": "snn", "simulate": "sim", "evaluate": "eval"}[kind]
        expected = set()
        for point in ("baseline", *POINTS):
            record = json.loads((root / "runs" / folder / "digits" / "mlp" / point / file).read_text())
            record = {k: v for k, v in record.items() if k not in untracked}
            expected |= {f"{metric_key(point)}.{key}" for key in _numbers(record)}
            if "accuracy_per_timestep" in record:
                expected.add(f"{metric_key(point)}.snn_accuracy_per_timestep")
        assert _metrics(root, f"{kind} digits/mlp") == expected, kind
    expected = set()
    for method, setting in STUDENTS:
        run = run_from_args("digits", method, 0, **setting)
        record = json.loads((root / run.folder("student_eval") / "evaluate.json").read_text())
        figures = {k: record[k] for k in ("accuracy", "spikerate", "total_spikes")}
        figures |= student_energy_columns(record)
        figures["neurobench"] = record["neurobench"]["neurobench"]
        expected |= {f"{metric_key(f'{run.name}.seed0')}.{key}" for key in _numbers(figures)}
    teacher = json.loads((root / "runs/student_eval/digits/teacher/evaluate.json").read_text())
    expected |= {f"teacher.{key}" for key in _numbers(student_energy_columns(teacher))}
    assert _metrics(root, "evaluate digits") == expected
    assert any("_plus_" in key for key in expected)


def test_the_report_stage_logs_one_pipeline_run_with_the_headline_and_the_params(pipeline):
    root, runs = pipeline
    headlines = {study: json.loads((root / "results" / study / "headline.json").read_text())
                 for study in ("conversion", "distillation")}
    assert all(h["schema_version"] == 1 for h in headlines.values())
    with sqlite3.connect(root / "mlflow.db") as db:
        (run_id,), = db.execute("select r.run_uuid from runs r join experiments e on r.experiment_id = e.experiment_id "
                                "where e.name = 'lowspike-pipeline'").fetchall()
        metrics = {key for (key,) in db.execute("select key from latest_metrics where run_uuid = ?", (run_id,))}
        tags = dict(db.execute("select key, value from tags where run_uuid = ?", (run_id,)).fetchall())
        params = {key for (key,) in db.execute("select key from params where run_uuid = ?", (run_id,))}
        same_params = db.execute("select count(distinct run_uuid) from tags where key = 'params.sha256' and value = ?",
                                 (tags["params.sha256"],)).fetchone()[0]
        tagged = {name for (name,) in db.execute("select r.name from runs r join tags t on t.run_uuid = r.run_uuid "
                                                 "where t.key = 'lowspike.pipeline_run' and t.value = ?", (run_id,))}
        current = {name for (name,) in db.execute("select r.name from runs r join tags t on t.run_uuid = r.run_uuid "
                                                  "where t.key = 'lowspike.current' and t.value = 'true' "
                                                  "and r.run_uuid != ?", (run_id,))}
    numeric = {f"{study}.{key}" for study, h in headlines.items() for key, value in h.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "schema_version"}
    assert metrics == numeric and "distillation.baseline_accuracy_pct" in metrics
    assert tags["conversion.schema_version"] == "1"
    assert tags["conversion.findings"] == headlines["conversion"]["findings"] and tags["lowspike.pipeline"] == "true"
    assert "statistics.resamples" in params and "distillation.setups.digits.timesteps" in params
    stage_runs = [kind for kind, _ in runs if kind not in ("prepare", "aggregate_conversion", "aggregate_distillation")]
    assert same_params == len(stage_runs)
    assert tagged == current and len(tagged) == len(stage_runs) - 1 == int(tags["lowspike.stage_runs"])
    assert {"convert digits/mlp", "evaluate digits"} <= tagged


def test_the_export_stages_write_the_selected_models_as_nir_files_that_both_libraries_run(pipeline):
    root, _ = pipeline
    conversion = json.loads((root / "runs/export/conversion/digits/mlp/deploy.json").read_text())
    results = json.loads((root / "results/conversion/results.json").read_text())
    selected = [row["selected"] for row in results["selections"] if row["arch"] == "mlp" and row.get("selected")]
    assert [entry["model"] for entry in conversion["models"]] == ["baseline", *selected]
    distillation = json.loads((root / "runs/export/distillation/digits/deploy.json").read_text())
    best = json.loads((root / "results/distillation/results.json").read_text())["best"]["digits"]
    assert len(distillation["models"]) == 1 + sum(1 for choice in best.values() if choice)
    for record in (conversion, distillation):
        for entry in record["models"]:
            assert (root / "runs/export" / record["study"] / "digits" / record.get("arch", "") / entry["file"]).is_file()
            assert entry["sinabs"]["spikes"] > 0 and entry["sinabs"]["same_prediction"] == 1.0
            assert entry["snntorch"]["totals_differing"] == 0 and entry["snntorch"]["same_prediction"] == 1.0
            if record["study"] == "conversion":
                assert entry["sinabs"]["events_differing"] == 0
    report = (root / "reports" / "regularization.md").read_text()
    assert "## Deploy: NIR files run in sinabs and snntorch" in report and "Deploy (digits, mlp)" in report
    assert "Deploy (digits" in (root / "reports" / "distillation.md").read_text()
    with sqlite3.connect(root / "mlflow.db") as db:
        artifacts = db.execute("select r.artifact_uri from runs r where r.name = 'export digits/mlp'").fetchall()
    [(uri,)] = artifacts
    folder = Path(uri.removeprefix("file://")) / "nir"
    assert sorted(p.name for p in folder.iterdir()) == sorted(e["file"] for e in conversion["models"])
