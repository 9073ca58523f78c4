"""Two experiments at once: both finish, both log to the one MLflow SQLite store without
"database is locked" failures (retry with backoff), and no metric lands in the other's run.

Fast: :func:`lowspike.tracking._with_retry` against a lock held by another connection, and two
processes logging to one fresh store at the same moment. Slow: two ``dvc exp run --queue``
experiments started by ``dvc queue start -j 2``."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lowspike import tracking
from lowspike.config import TrackingConfig

from .conftest import dvc, make_tiny_repo, stage_env

# ------------------------------------------------------------------ retry with backoff


def _locked_store(tmp_path: Path) -> tuple[Path, sqlite3.Connection]:
    """A SQLite file with a table, and a connection holding an exclusive lock on it."""
    db = tmp_path / "store.db"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("create table t (x integer)")
    holder.execute("begin exclusive")
    return db, holder


def _insert(db: Path, attempts: list[float]):
    def action() -> int:
        attempts.append(time.monotonic())
        connection = sqlite3.connect(db, timeout=0)
        try:
            connection.execute("insert into t values (1)")
            connection.commit()
            return connection.execute("select count(*) from t").fetchone()[0]
        finally:
            connection.close()

    return action


def test_a_write_waits_out_a_lock_held_by_another_connection(tmp_path):
    db, holder = _locked_store(tmp_path)
    attempts: list[float] = []
    release = threading.Timer(0.4, lambda: holder.execute("commit"))
    release.start()
    try:
        assert tracking._with_retry(_insert(db, attempts)) == 1
    finally:
        release.join()
        holder.close()
    assert len(attempts) >= 3
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[1] > gaps[0]  # the wait grows between attempts


def test_a_lock_that_never_goes_gives_up_after_bounded_exponential_backoff(tmp_path, monkeypatch):
    db, holder = _locked_store(tmp_path)
    slept: list[float] = []
    monkeypatch.setattr(tracking.time, "sleep", slept.append)
    attempts: list[float] = []
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            tracking._with_retry(_insert(db, attempts))
    finally:
        holder.close()
    assert len(attempts) == tracking._RETRIES and len(slept) == tracking._RETRIES - 1
    for i, delay in enumerate(slept):
        assert 0.05 * 2 ** i <= delay <= 0.1 * 2 ** i


def test_other_errors_are_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise ValueError("no such table: runs")

    with pytest.raises(ValueError):
        tracking._with_retry(broken)
    assert calls == [1]


PATH_SAYS_LOCKED = ("tracking._with_retry retries any error whose text contains 'locked', so a store under a "
                    "folder named e.g. 'blocked' is retried 8 times (~13 s) before the warning; fix: match "
                    "'database is locked' (see the reliability report)")


def test_an_error_that_only_names_a_locked_looking_path_is_not_retried(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(tracking.time, "sleep", slept.append)
    calls = []

    def unopenable():
        calls.append(1)
        raise sqlite3.OperationalError("unable to open database file: /srv/blocked/mlflow.db")

    with pytest.raises(sqlite3.OperationalError):
        tracking._with_retry(unopenable)
    assert calls == [1] and slept == []


def _log_run(uri: str, name: str, value: float, barrier) -> None:
    import os

    os.environ["MLFLOW_TRACKING_URI"] = uri
    barrier.wait()
    with tracking.start_run(TrackingConfig(), "regularization", name, {"worker": name}) as run:
        run.log_params({"lr": value})
        for step in range(1, 21):
            run.log_metrics({"val_accuracy": value, "step_value": value * step}, step=step)
    os._exit(0 if run.active else 3)


@pytest.mark.parametrize("store", ["fresh", "initialized"])
def test_two_processes_log_to_one_store_at_once(tmp_path, capfd, store):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if store == "initialized":
        tracking.ensure_experiment(MlflowClient(uri), "lowspike-regularization")
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_log_run, args=(uri, name, value, barrier))
               for name, value in (("a", 0.25), ("b", 0.75))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    err = capfd.readouterr().err
    assert [w.exitcode for w in workers] == [0, 0], err
    assert "warning: MLflow" not in err and "locked" not in err, err

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("lowspike-regularization")
    runs = {r.data.tags["worker"]: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["a", "b"]
    for name, value in (("a", 0.25), ("b", 0.75)):
        run = runs[name]
        assert run.info.status == "FINISHED" and run.data.params["lr"] == str(value)
        history = client.get_metric_history(run.info.run_id, "step_value")
        assert sorted((m.step, m.value) for m in history) == [(s, value * s) for s in range(1, 21)]


# ------------------------------------------------------------------ dvc queue start -j 2


def _mlflow_runs(db: Path) -> list[dict]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("lowspike-regularization")
    return [{"params": r.data.params, "metrics": r.data.metrics, "tags": r.data.tags, "status": r.info.status,
             "start": r.info.start_time, "end": r.info.end_time,
             "val_loss": sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, "val_loss"))}
            for r in client.search_runs([experiment.experiment_id])]


@pytest.mark.integration
def test_two_queued_experiments_run_at_once_and_log_to_one_store(tmp_path):
    # keyword list without yes/no/on/off: `dvc exp run -S` rewrites params.yaml and unquotes them
    # (test_params_fuzz.py::test_params_rewritten_by_dvc_exp_run_set_param_stay_valid)
    words = ["up", "down", "left", "right", "stop", "go"]
    train = {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 16, "max_epochs": 12, "patience": 12, "seed": 0}
    repo = make_tiny_repo(tmp_path / "repo", {"tracking": {"enabled": True}, "regularization": {"train": train},
                                              "data": {"spoken_commands": {"words": words}}}, commit=True)
    # a fresh store: the first two stages create its tables and the experiment at once
    # (tracking._first_use_lock serializes them)
    # no MLFLOW_TRACKING_URI: each stage finds <DVC_ROOT>/mlflow.db, the parent repository's store,
    # from inside its temporary experiment workspace
    env = stage_env(repo)
    del env["MLFLOW_TRACKING_URI"]
    target = "train_dnn_baseline@digits-mlp"
    lrs = {"fast": 2.0e-2, "slow": 1.0e-3}
    for name, lr in lrs.items():
        queued = dvc(repo, "exp", "run", "--queue", "--name", name, "-S", f"regularization.train.lr={lr}", target,
                     env=env)
        assert queued.returncode == 0, queued.stdout + queued.stderr
    started = dvc(repo, "queue", "start", "-j", "2", env=env)
    assert started.returncode == 0, started.stdout + started.stderr

    deadline = time.monotonic() + 480
    while time.monotonic() < deadline:
        status = dvc(repo, "queue", "status", env=env).stdout
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(3)
    logs = {name: dvc(repo, "queue", "logs", name, env=env).stdout for name in lrs}
    assert "Success" in status and "Failed" not in status, status + json.dumps(logs)
    for name, text in logs.items():
        assert "database is locked" not in text and "warning: MLflow" not in text, text

    shown = dvc(repo, "exp", "show", "--json", env=env).stdout
    assert all(f'"{name}"' in shown for name in lrs), shown
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=repo,
                          capture_output=True, text=True, check=True).stdout.split()
    summaries = {}
    for name in lrs:
        ref = next(r for r in refs if r.endswith(f"/{name}"))
        text = subprocess.run(["git", "show", f"{ref}:runs/dnn/digits/mlp/baseline/train.json"], cwd=repo,
                              capture_output=True, text=True, check=True).stdout
        summaries[name] = json.loads(text)
    assert summaries["fast"]["history"] != summaries["slow"]["history"]

    runs = [r for r in _mlflow_runs(repo / "mlflow.db") if r["tags"].get("stage") == "train_dnn"]
    assert len(runs) == 2 and {r["status"] for r in runs} == {"FINISHED"}
    assert max(r["start"] for r in runs) < min(r["end"] for r in runs)  # the two trainings overlapped
    by_lr = {float(r["params"]["regularization.train.lr"]): r for r in runs}
    assert sorted(by_lr) == sorted(lrs.values())
    for name, lr in lrs.items():
        logged, summary = by_lr[lr], summaries[name]
        assert logged["val_loss"] == [(h["epoch"], pytest.approx(h["val_loss"])) for h in summary["history"]]
        assert logged["metrics"]["epochs_run"] == summary["epochs_run"]
        assert logged["metrics"]["best_val_loss"] == pytest.approx(summary["best_val_loss"])
