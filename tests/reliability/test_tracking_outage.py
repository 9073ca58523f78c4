"""With the MLflow store unwritable, unreadable or failing mid-run, a stage still finishes and writes
its DVC outputs, printing one warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowspike import tracking
from lowspike.artifacts import read_json
from lowspike.config import TrackingConfig

from .conftest import TRAIN_BASELINE, tiny_params, write_params

BASELINE = Path("runs/dnn/digits/mlp/baseline")


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: MLflow")]


@pytest.mark.parametrize("outage", ["folder-is-a-file", "not-a-database"])
def test_a_training_stage_finishes_with_one_warning_when_the_store_is_broken(workdir, stage_main, capsys,
                                                                             monkeypatch, outage):
    if outage == "folder-is-a-file":
        (workdir / "store").write_text("a file where the store's folder should be")
        uri = f"sqlite:///{workdir / 'store' / 'mlflow.db'}"
    else:
        (workdir / "mlflow.db").write_bytes(b"this is not an SQLite database\n" * 64)
        uri = f"sqlite:///{workdir / 'mlflow.db'}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_params(workdir / "params.yaml", tiny_params({"tracking": {"enabled": True, "uri": uri}}))

    assert stage_main(*TRAIN_BASELINE) == 0
    err = capsys.readouterr().err
    assert len(_warnings(err)) == 1, err
    assert "[train_dnn digits/mlp/baseline] status ok" in err
    summary = read_json(BASELINE / "train.json")
    assert summary["status"] == "ok" and summary["epochs_run"] == 4
    assert (BASELINE / "model.pt").exists()


class _FailingClient:
    """An MLflow client whose store went away after the run started."""

    def __init__(self, message: str):
        self.message = message
        self.calls = 0

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            self.calls += 1
            raise RuntimeError(self.message)

        return fail


@pytest.mark.parametrize("message", ["(sqlite3.OperationalError) database is locked", "disk I/O error"])
def test_a_store_failing_mid_run_warns_once_and_goes_quiet(monkeypatch, capsys, message):
    slept: list[float] = []
    monkeypatch.setattr(tracking.time, "sleep", slept.append)
    run = tracking.Run(TrackingConfig(), "regularization", "train", {})
    run.client, run.run_id = _FailingClient(message), "r1"
    run.log_params({"lr": 0.1})
    run.log_metrics({"val_accuracy": 0.5}, step=1)
    run.log_series("curve", [0.1, 0.2])
    run.log_artifact("train.json")
    run.__exit__(None, None, None)

    [warning] = _warnings(capsys.readouterr().err)
    assert warning == f"warning: MLflow tracking disabled for this stage, the store is unreachable (RuntimeError: {message})"
    assert not run.active
    locked = "locked" in message
    assert run.client.calls == (tracking._RETRIES if locked else 1)
    assert len(slept) == (tracking._RETRIES - 1 if locked else 0)
