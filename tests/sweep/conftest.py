"""Fixtures of the sweep-runner tests: the tiny pipeline of the reliability tests run once by a
serial ``dvc repro`` (the reference), and a two-node Ray cluster on loopback started once
(``ray.cluster_utils.Cluster``: a head and a second node, one CPU each, so two tasks at once
must use both nodes), stopped at the end with every process it started.

Every run reproduces ``aggregate_conversion`` (prepare, two DNN trainings, convert, simulate,
evaluate, aggregate: seven stages) with MLflow tracking on.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep Ray on 127.0.0.1 (read at import)

from ..reliability.conftest import VENV_BIN, dvc, make_tiny_repo, stage_env, tiny_params, write_params  # noqa: E402

TARGET = "aggregate_conversion"
TRACKED = {"tracking": {"enabled": True}}
CONVERSION_STAGES = ["prepare@digits", "train_dnn_mlp@digits-l1-0.001", "train_dnn_baseline@digits-mlp",
                     "convert@digits-mlp", "simulate@digits-mlp", "evaluate@digits-mlp", "aggregate_conversion"]


def sweep_env(root: Path) -> dict[str, str]:
    """The environment of a runner process: a stage's (venv first in PATH, tools offline, one
    torch thread) without a tracking URI, so the stages find ``<DVC_ROOT>/mlflow.db`` as under
    ``dvc repro``."""
    env = stage_env(root)
    env.pop("MLFLOW_TRACKING_URI")
    env.update({"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONUNBUFFERED": "1"})
    return env


def tiny_params_file(path: Path) -> Path:
    """The tiny pipeline's params written to ``path`` (a profile for the plan mode)."""
    return write_params(path, tiny_params())


def sweep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lowspike.sweep", *args]


def workspace_files(root: Path) -> dict[str, bytes]:
    """Every file the pipeline wrote (``runs/``, ``results/``, ``data/prepared/``)."""
    files = {}
    for folder in ("runs", "results", "data/prepared"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.name != ".gitignore":
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def mlflow_runs(root: Path) -> list[tuple[str, str, str]]:
    """``(run id, status, dvc.stage tag)`` of every MLflow run in the workspace's store."""
    with sqlite3.connect(root / "mlflow.db") as connection:
        return connection.execute(
            "select r.run_uuid, r.status, t.value from runs r join tags t on t.run_uuid = r.run_uuid "
            "where t.key = 'dvc.stage'").fetchall()


def mlflow_metric(root: Path, stage: str, key: str) -> float:
    with sqlite3.connect(root / "mlflow.db") as connection:
        return connection.execute(
            "select m.value from latest_metrics m join tags t on t.run_uuid = m.run_uuid join runs r "
            "on r.run_uuid = m.run_uuid where t.key = 'dvc.stage' and t.value = ? and m.key = ? "
            "and r.status = 'FINISHED'", (stage, key)).fetchone()[0]


@pytest.fixture(scope="session")
def serial_run(tmp_path_factory):
    """The tiny pipeline reproduced by a plain serial ``dvc repro``, started in the background
    (the runner's tests start it first, so it uses one core while they use the other)."""
    root = make_tiny_repo(tmp_path_factory.mktemp("serial") / "repo", TRACKED, commit=True)
    process = subprocess.Popen([str(VENV_BIN / "dvc"), "repro", TARGET], cwd=root, env=stage_env(root),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield root, process
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="session")
def serial_repo(serial_run) -> Path:
    """The serial reference, once its ``dvc repro`` finished."""
    root, process = serial_run
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A two-node Ray cluster on 127.0.0.1 whose processes have the stages' environment (the
    variables are this process's only while the nodes start)."""
    from ray.cluster_utils import Cluster

    saved, env = dict(os.environ), sweep_env(tmp_path_factory.mktemp("cluster"))
    os.environ.clear()
    os.environ.update(env)
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                                "include_dashboard": False})
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture
def fresh_repo(tmp_path) -> Path:
    return make_tiny_repo(tmp_path / "repo", TRACKED, commit=True)


__all__ = ["CONVERSION_STAGES", "TARGET", "VENV_BIN", "dvc", "mlflow_metric", "mlflow_runs", "sweep_command",
           "sweep_env", "tiny_params_file", "workspace_files"]
