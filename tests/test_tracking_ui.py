"""`python -m lowspike.tracking ui` serves the store: the MLflow REST API lists the runs logged
through lowspike.tracking; in MLflow 3.17's UI (headless Chromium) the printed address opens the
project's runs table and a run's page shows its metrics and tags; and
SIGTERM stops the server with every worker it started and frees the port.

One server for the module (it takes 10-20 s to start); the last test stops it."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lowspike.config import TrackingConfig
from lowspike.tracking import start_run

from .browser import chromium, dump_dom  # noqa: F401 - chromium is a fixture

pytestmark = pytest.mark.integration

STARTUP_S = 90
RUNS = {"train mnist5k/mlp/l1-0.001": (0.9712, 3.25), "train mnist5k/mlp/l1-0.01": (0.9588, 0.75)}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def call(base: str, path: str, payload: dict | None = None) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def process_group(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    os.environ.update(MLFLOW_TRACKING_URI=uri, DVC_ROOT=str(root))
    try:
        for name, (accuracy, penalty) in RUNS.items():
            with start_run(TrackingConfig(), "regularization", name,
                           {"dataset": "mnist5k", "method": "l1", "stage": "train_dnn"}) as run:
                run.log_metrics({"val_accuracy": accuracy, "train_penalty": penalty})
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true", "PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "lowspike.tracking", "ui"], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    handle = {"process": process, "base": base, "port": port, "root": root, "server_pgid": None}
    try:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                call(base, "/api/2.0/mlflow/experiments/search", {"max_results": 100})
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        else:
            raise AssertionError(f"UI did not answer within {STARTUP_S} s (exit code {process.poll()})")
        [server] = children(process.pid)
        handle["server_pgid"] = os.getpgid(server)
        handle["first_line"] = process.stdout.readline().strip()
        yield handle
    finally:
        if process.poll() is None:
            process.kill()
        if handle["server_pgid"] and process_group(handle["server_pgid"]):
            os.killpg(handle["server_pgid"], signal.SIGKILL)


def test_ui_serves_the_logged_runs_over_rest(ui):
    experiments = call(ui["base"], "/api/2.0/mlflow/experiments/search", {"max_results": 100})["experiments"]
    by_name = {e["name"]: e for e in experiments}
    experiment = by_name["lowspike-regularization"]
    assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in experiment["tags"]
    runs = call(ui["base"], "/api/2.0/mlflow/runs/search",
                {"experiment_ids": [experiment["experiment_id"]], "max_results": 10})["runs"]
    assert sorted(r["info"]["run_name"] for r in runs) == sorted(RUNS)
    for run in runs:
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert metrics == dict(zip(("val_accuracy", "train_penalty"), RUNS[run["info"]["run_name"]]))
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert tags["dataset"] == "mnist5k" and tags["lowspike.current"] == "true"
        assert run["info"]["status"] == "FINISHED"


def test_the_printed_address_opens_the_runs_table_in_the_browser(ui, chromium, tmp_path):
    match = re.search(r"(http://127\.0\.0\.1:\d+/#/experiments/\d+/runs\?workflowType=machine_learning)",
                      ui["first_line"])
    assert match, ui["first_line"]
    page = dump_dom(chromium, match.group(1), tmp_path / "profile", budget_ms=20000)
    for name in RUNS:
        assert name in page.stdout, f"run {name!r} not in the runs table"
    assert "Model training" in page.stdout and ">Runs<" in page.stdout


def test_a_run_page_shows_its_metrics_and_tags(ui, chromium, tmp_path):
    """(The Compare view is checked on two real pipeline runs in
    tests/reliability/test_experiment_compare.py.)"""
    experiment_id = re.search(r"/experiments/(\d+)/runs", ui["first_line"]).group(1)
    runs = call(ui["base"], "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})["runs"]
    run_id = runs[0]["info"]["run_id"]
    page = dump_dom(chromium, f"{ui['base']}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning",
                    tmp_path / "run", budget_ms=20000)
    for text in ("val_accuracy", "train_penalty", "lowspike.current", "mnist5k"):
        assert text in page.stdout, f"{text!r} not on the run page"


def test_sigterm_stops_the_server_and_its_workers_and_frees_the_port(ui):
    process, pgid = ui["process"], ui["server_pgid"]
    assert len(process_group(pgid)) >= 2  # the server and the workers it started
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (process_group(pgid) or not port_is_free(ui["port"])):
        time.sleep(0.5)
    assert process_group(pgid) == [] and port_is_free(ui["port"])
