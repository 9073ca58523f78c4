"""`python -m lowspike.tracking ui` serves the store: the MLflow REST API on a free loopback port
lists the experiment and the run logged through lowspike.tracking, with its metrics."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from lowspike.config import TrackingConfig
from lowspike.tracking import start_run

STARTUP_S = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(base: str, path: str, payload: dict | None = None) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def stop(process: subprocess.Popen) -> None:
    """End the UI and every worker it started: its whole process group."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_ui_serves_the_logged_run_over_rest(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    with start_run(TrackingConfig(), "regularization", "evaluate mnist5k/mlp", {"dataset": "mnist5k"}) as run:
        run.log_metrics({"baseline.snn_accuracy": 0.975, "baseline.synops": 20000.0})
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    process = subprocess.Popen([sys.executable, "-m", "lowspike.tracking", "ui", "--port", str(port)],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        experiments = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                experiments = call(base, "/api/2.0/mlflow/experiments/search", {"max_results": 100})
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert experiments is not None, f"UI did not answer within {STARTUP_S} s (exit code {process.poll()})"
        by_name = {e["name"]: e["experiment_id"] for e in experiments["experiments"]}
        assert "lowspike-regularization" in by_name
        runs = call(base, "/api/2.0/mlflow/runs/search",
                    {"experiment_ids": [by_name["lowspike-regularization"]], "max_results": 10})["runs"]
        assert len(runs) == 1
        [found] = runs
        metrics = {m["key"]: m["value"] for m in found["data"]["metrics"]}
        assert metrics == {"baseline.snn_accuracy": 0.975, "baseline.synops": 20000.0}
        tags = {t["key"]: t["value"] for t in found["data"]["tags"]}
        assert tags["dataset"] == "mnist5k" and found["info"]["status"] == "FINISHED"
    finally:
        stop(process)
    assert process.poll() is not None
