"""MLflow tracking: runs land in the SQLite store with their metrics and curves, and a store that
cannot be written leaves the stage running with one warning."""

from mlflow.tracking import MlflowClient

from lowspike.config import TrackingConfig
from lowspike.tracking import flatten, log_point_record, start_run


def test_flatten_nested_mapping():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_point_record_is_logged_with_its_timestep_curve(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DVC_STAGE", "simulate@mnist5k-mlp")
    with start_run(TrackingConfig(), "regularization", "simulate mnist5k/mlp", {"dataset": "mnist5k"}) as run:
        log_point_record(run, "l1-0.001", {"snn_accuracy": 0.9, "status": "ok", "spikes_per_layer": {"if1": 12.5},
                                           "accuracy_per_timestep": [0.5, 0.8, 0.9]})
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("lowspike-regularization")
    [logged] = client.search_runs([experiment.experiment_id])
    assert logged.data.metrics["l1-0.001.snn_accuracy"] == 0.9
    assert logged.data.metrics["l1-0.001.spikes_per_layer.if1"] == 12.5
    assert logged.data.tags["dvc.stage"] == "simulate@mnist5k-mlp" and logged.data.tags["dataset"] == "mnist5k"
    curve = client.get_metric_history(logged.info.run_id, "l1-0.001.snn_accuracy_per_timestep")
    assert [(m.step, m.value) for m in sorted(curve, key=lambda m: m.step)] == [(1, 0.5), (2, 0.8), (3, 0.9)]
    assert logged.info.status == "FINISHED"


def test_unwritable_store_warns_once_and_the_stage_goes_on(tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store's folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocked / 'mlflow.db'}")
    with start_run(TrackingConfig(), "distillation", "student", {}) as run:
        run.log_metrics({"accuracy": 0.5})
        run.log_series("curve", [1.0, 2.0])
        finished = True
    assert finished
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: MLflow")]
    assert len(warnings) == 1
