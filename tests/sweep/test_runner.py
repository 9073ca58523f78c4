"""The sweep runner on a two-node Ray cluster against a serial ``dvc repro`` of the same tiny
pipeline, in one scenario (each run costs seconds of interpreter start-up on two cores): Ctrl-C
while the trainings run records what finished and cancels the rest; a second run continues,
survives a worker SIGKILLed mid-task, uses both nodes and logs through an MLflow server; the
end state is the serial one: same dvc.lock (byte for byte), outputs and metrics, clean
``dvc status``, a following ``dvc repro`` runs nothing, one finished MLflow run per stage with
its own ``dvc.stage`` tag and the same metrics, no run left RUNNING, and the killed attempt's
run KILLED with a tag naming its retry's run."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from lowspike.sweep import SweepOptions, run_sweep

from .conftest import (CONVERSION_STAGES, TARGET, dvc, mlflow_metric, mlflow_runs, sweep_command, sweep_env,
                       workspace_files)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def serial_reference_started(serial_run):
    """Starts the serial reference ``dvc repro`` before this module's first test."""
    return serial_run

LOCK_ERROR = "Unable to acquire lock"


def _assert_up_to_date(root: Path) -> None:
    status = dvc(root, "status", "--json", TARGET)
    assert status.returncode == 0 and json.loads(status.stdout or "{}") == {}, status.stdout + status.stderr
    again = dvc(root, "repro", TARGET)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Running stage" not in again.stdout, again.stdout
    assert LOCK_ERROR not in status.stderr + again.stderr


def _finished_runs_per_stage(root: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, status, stage in mlflow_runs(root):
        if status == "FINISHED":
            counts[stage] = counts.get(stage, 0) + 1
    return counts


def _read_lines(process: subprocess.Popen, lines: list[str]) -> threading.Thread:
    def read() -> None:
        for line in process.stderr:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def _wait(predicate, timeout: float, step: float = 0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        time.sleep(step)
    return None


def _worker_running(stage: str) -> int | None:
    """The pid of the Ray worker executing ``stage`` (its process title is ``ray::stage <name>``)."""
    for process in psutil.process_iter(["pid", "cmdline"]):
        if f"ray::stage {stage}" in " ".join(process.info["cmdline"] or []):
            return process.info["pid"]
    return None


def _done(lines: list[str]) -> list[str]:
    return [line.split()[1] for line in lines if line.startswith("[") and "] " in line and " on " in line]


def _logging(root: Path, stage: str) -> bool:
    """Whether the workspace's store holds a RUNNING run of ``stage``."""
    if not (root / "mlflow.db").exists():
        return False
    try:
        return any(status == "RUNNING" and name == stage for _, status, name in mlflow_runs(root))
    except sqlite3.OperationalError:  # the store's tables are being created
        return False


def _run_tags(root: Path, run_id: str) -> dict[str, str]:
    with sqlite3.connect(root / "mlflow.db") as connection:
        return dict(connection.execute("select key, value from tags where run_uuid = ?", (run_id,)).fetchall())


def _kill_once(stage: str, root: Path, killed: list[int], stop: threading.Event) -> threading.Thread:
    """SIGKILL the Ray worker running ``stage`` once its MLflow run has started, once."""
    def watch() -> None:
        end = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < end:
            victim = _worker_running(stage)
            if victim is not None and _logging(root, stage):
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_a_stage_that_keeps_failing_fails_the_run_with_its_log_after_the_independent_stages(cluster, fresh_repo,
                                                                                          tmp_path):
    (fresh_repo / "stages" / "train_dnn.py").write_text(
        "import sys\nprint('[train_dnn] giving up on purpose', file=sys.stderr)\nraise SystemExit(3)\n")
    out = io.StringIO()
    report = run_sweep(SweepOptions(root=fresh_repo, address=cluster.address, retries=0,
                                    targets=("convert@digits-mlp", "train_teacher@digits"),
                                    scratch_root=str(tmp_path / "scratch")), stream=out)
    log = out.getvalue()
    assert report.exit_code == 1, log
    assert sorted(report.failed) == ["train_dnn_baseline@digits-mlp", "train_dnn_mlp@digits-l1-0.001"]
    assert all("exited with code 3" in message and "giving up on purpose" in message
               for message in report.failed.values())
    assert report.skipped == {"convert@digits-mlp": report.skipped["convert@digits-mlp"]}
    assert sorted(r.name for r in report.results) == ["prepare@digits", "train_teacher@digits"]
    assert "stage train_dnn_mlp@digits-l1-0.001 failed: command exited with code 3" in log
    recorded = yaml.safe_load((fresh_repo / "dvc.lock").read_text())["stages"]
    assert sorted(recorded) == ["prepare@digits", "train_teacher@digits"]
    kept = list((tmp_path / "scratch").rglob("train_dnn_mlp@digits-l1-0.001.log"))
    assert kept and "giving up on purpose" in kept[0].read_text()  # kept for a look


def test_interrupted_then_resumed_with_a_killed_worker_records_exactly_what_serial_dvc_repro_records(
        serial_repo, cluster, fresh_repo):
    # Ctrl-C while the trainings run: what finished is recorded, the rest is cancelled.
    first = subprocess.Popen(sweep_command("--address", cluster.address, TARGET), cwd=fresh_repo,
                             env=sweep_env(fresh_repo), stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = _read_lines(first, lines)
    try:
        assert _wait(lambda: _worker_running("train_dnn_mlp@digits-l1-0.001"), 120, step=0.01), lines
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=120) == 130, lines
    finally:
        if first.poll() is None:
            first.kill()
    reader.join(timeout=10)
    assert any("interrupted:" in line for line in lines), lines
    assert _wait(lambda: not any(_worker_running(stage) for stage in CONVERSION_STAGES), 30)
    serial_lock = yaml.safe_load((serial_repo / "dvc.lock").read_text())["stages"]
    recorded = yaml.safe_load((fresh_repo / "dvc.lock").read_text())["stages"]
    assert "prepare@digits" in recorded and "train_dnn_mlp@digits-l1-0.001" not in recorded
    assert sorted(recorded) == sorted(_done(lines))
    assert all(recorded[name] == serial_lock[name] for name in recorded)
    assert not list(fresh_repo.rglob(".*.sweep-*"))  # no half-written output left behind

    # Run again: it continues; the worker of one training is killed mid-task and Ray retries it.
    killed: list[int] = []
    stop = threading.Event()
    watcher = _kill_once("train_dnn_mlp@digits-l1-0.001", fresh_repo, killed, stop)
    out = io.StringIO()
    try:
        report = run_sweep(SweepOptions(root=fresh_repo, address=cluster.address, targets=(TARGET,),
                                        mlflow_server="on"), stream=out)
    finally:
        stop.set()
        watcher.join(timeout=10)
    log = out.getvalue()
    assert killed, log
    assert report.exit_code == 0, log
    assert sorted(r.name for r in report.results) == sorted(set(CONVERSION_STAGES) - set(recorded))
    cluster_nodes = {node.node_id for node in [cluster.head_node, *cluster.worker_nodes]}
    assert report.nodes == cluster_nodes  # the two trainings ran at once, one per node
    assert "MLflow: tasks log through http://127.0.0.1:" in log
    assert not any(LOCK_ERROR in text for text in (log, *lines))

    assert (fresh_repo / "dvc.lock").read_text() == (serial_repo / "dvc.lock").read_text()
    assert workspace_files(fresh_repo) == workspace_files(serial_repo)
    metrics = sorted(p.relative_to(serial_repo) for p in (serial_repo / "results/conversion/metrics").iterdir())
    assert metrics and all((fresh_repo / m).read_bytes() == (serial_repo / m).read_bytes() for m in metrics)
    _assert_up_to_date(fresh_repo)

    runs = mlflow_runs(fresh_repo)
    assert len({run_id for run_id, _, _ in runs}) == len(runs)
    assert not [run for run in runs if run[1] == "RUNNING"], runs
    # The killed attempt's run is closed by the driver and names the retry's run.
    [retry] = [run_id for run_id, status, stage in runs
               if stage == "train_dnn_mlp@digits-l1-0.001" and status == "FINISHED"]
    assert any(status == "KILLED" and _run_tags(fresh_repo, run_id).get("lowspike.retried_by_run") == retry
               for run_id, status, stage in runs if stage == "train_dnn_mlp@digits-l1-0.001"), runs
    assert _finished_runs_per_stage(fresh_repo) == _finished_runs_per_stage(serial_repo)
    assert set(_finished_runs_per_stage(fresh_repo).values()) == {1}
    for stage in CONVERSION_STAGES[1:3]:
        assert mlflow_metric(fresh_repo, stage, "best_val_accuracy") == mlflow_metric(serial_repo, stage,
                                                                                     "best_val_accuracy")

    # An output deleted from the workspace comes back from DVC's cache, as under dvc repro.
    shutil.rmtree(fresh_repo / "runs/sim/digits/mlp")
    restored = run_sweep(SweepOptions(root=fresh_repo, address=cluster.address, targets=(TARGET,)),
                         stream=io.StringIO())
    assert (restored.exit_code, restored.restored, restored.results) == (0, ["simulate@digits-mlp"], [])
    assert workspace_files(fresh_repo) == workspace_files(serial_repo)
    _assert_up_to_date(fresh_repo)
