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


def test_default_tags_name_the_experiment_commit_dirty_flag_and_params_hash(tmp_path, monkeypatch):
    import hashlib
    import subprocess

    from lowspike.tracking import default_tags

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    params = tmp_path / "params.yaml"
    params.write_text("a: 1\n")
    git("init", "-q")
    git("add", "params.yaml")
    git("commit", "-qm", "params")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(tmp_path)
    for name in ("LOWSPIKE_GIT_COMMIT", "LOWSPIKE_GIT_DIRTY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DVC_STAGE", "train_dnn_baseline@mnist5k-mlp")
    monkeypatch.setenv("DVC_EXP_NAME", "spiky-lamb")
    clean = default_tags()
    assert clean == {"dvc.stage": "train_dnn_baseline@mnist5k-mlp", "dvc.exp_name": "spiky-lamb",
                     "mlflow.source.git.commit": commit, "git.commit": commit, "git.dirty": "false",
                     "params.sha256": hashlib.sha256(b"a: 1\n").hexdigest()[:16]}
    params.write_text("a: 2\n")
    edited = default_tags()
    assert edited["git.dirty"] == "true" and edited["git.commit"] == commit
    assert edited["params.sha256"] == hashlib.sha256(b"a: 2\n").hexdigest()[:16] != clean["params.sha256"]


HELD_SIGNAL_SCRIPT = """
import os, signal, threading, time
from lowspike.tracking import _interrupts_deferred
handled = []
signal.signal(signal.SIGTERM, lambda *_: handled.append("handled"))
stop = threading.Event()
threading.Thread(target=stop.wait, daemon=True).start()  # started before the write
with _interrupts_deferred():
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # bytecodes run: a handler would run here
        pass
    inside = list(handled)
for _ in range(1000):
    if handled:
        break
    time.sleep(0.001)
print(inside, handled, signal.getsignal(signal.SIGTERM) not in (None, signal.SIG_DFL))
"""


def test_a_signal_during_a_store_write_is_held_until_the_write_ends_even_with_other_threads_running():
    """The kernel may hand a process-directed SIGTERM to any thread that does not block it; a
    mask on the main thread alone let Python run the handler inside the write (a fresh process:
    pytest's own threads and handlers stay out of it)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", HELD_SIGNAL_SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] ['handled'] True"
