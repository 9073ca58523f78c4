"""Two experiments compared at a glance (docs/reports.md): after ``dvc repro`` and ``dvc exp run -S
simulation.timesteps=...`` on the tiny pipeline, ``make exp`` shows both with the changed param
and the headline only, ``make diff`` lists what changed, and MLflow holds one pipeline run per
execution, its stage runs tagged with its id, which the UI's Compare view shows side by side
(headless Chromium, with a screenshot)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from ..browser import chromium, dump_dom  # noqa: F401 - chromium is a fixture
from ..test_tracking_ui import free_port
from .conftest import REPO, _git, dvc, make_tiny_repo, stage_env

pytestmark = pytest.mark.integration

EXPERIMENT = "t5"


def _experiments(repo, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lowspike.report.experiments", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)


def _pipeline_runs(repo) -> dict[str, str]:
    """``{dvc.exp_name or "": run id}`` of the runs of experiment ``lowspike-pipeline``."""
    with sqlite3.connect(repo / "mlflow.db") as db:
        rows = db.execute("select r.run_uuid, coalesce((select value from tags t where t.run_uuid = r.run_uuid "
                          "and t.key = 'dvc.exp_name'), '') from runs r join experiments e "
                          "on e.experiment_id = r.experiment_id where e.name = 'lowspike-pipeline'").fetchall()
    return {name: run_id for run_id, name in rows}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    repo = make_tiny_repo(tmp_path_factory.mktemp("compare") / "repo", {"tracking": {"enabled": True}})
    env = stage_env(repo)
    shutil.copytree(REPO / "profiles", repo / "profiles")
    _git(repo, env, "add", "-A")
    _git(repo, env, "commit", "-q", "-m", "the tiny pipeline")
    done = dvc(repo, "repro", env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _git(repo, env, "add", "-A")
    _git(repo, env, "commit", "-q", "-m", "the tiny pipeline's results")
    run = dvc(repo, "exp", "run", "-n", EXPERIMENT, "-S", "simulation.timesteps=5", env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return repo, env, run.stdout


def test_exp_run_reruns_the_simulations_and_what_follows_only(experiment):
    _, _, output = experiment
    ran = {line.split("'")[1].split("@")[0] for line in output.splitlines() if line.startswith("Running stage")}
    assert ran == {"simulate", "evaluate", "aggregate_conversion", "export_conversion", "report"}


def test_make_exp_shows_the_changed_param_and_the_headline_only(experiment):
    repo, env, _ = experiment
    table = _experiments(repo, env, "show", "--csv")
    assert table.returncode == 0, table.stderr
    header, *rows = list(csv.reader(io.StringIO(table.stdout)))
    assert len(header) <= 30 and "simulation.timesteps" in header
    timesteps = {row[0]: row[header.index("simulation.timesteps")] for row in rows}
    branch = next(label for label in timesteps if label not in ("workspace", EXPERIMENT))
    assert (timesteps[EXPERIMENT], timesteps[branch]) == ("5", "10")
    text = _experiments(repo, env, "show")
    lines = text.stdout.splitlines()
    assert max(len(line) for line in lines) <= 160 and "…" not in text.stdout
    assert any(line.split() == ["param", "simulation.timesteps", "5", "10", "5"] for line in lines)


def test_make_diff_lists_the_headline_changes_in_one_screen(experiment):
    repo, env, _ = experiment
    diff = _experiments(repo, env, "diff", "HEAD")
    assert diff.returncode == 0, diff.stderr
    lines = diff.stdout.splitlines()
    assert len(lines) <= 40
    assert lines[0] == "headline (schema 1): HEAD -> workspace"
    summary = [line for line in lines if line.startswith("conversion: ")]
    assert len(summary) == 1 and " of " in summary[0] and not summary[0].startswith("conversion: 0 of")
    assert lines[-1].startswith("distillation: 0 of ")  # the students do not simulate for T steps


def test_one_pipeline_run_per_execution_with_its_stage_runs_tagged(experiment):
    repo, _, _ = experiment
    runs = _pipeline_runs(repo)
    assert set(runs) == {"", EXPERIMENT}
    with sqlite3.connect(repo / "mlflow.db") as db:
        tagged = dict(db.execute("select value, count(*) from tags where key = 'lowspike.pipeline_run' "
                                 "group by value").fetchall())
        params = dict(db.execute("select run_uuid, value from params where key = 'simulation.timesteps'").fetchall())
    assert tagged[runs[EXPERIMENT]] > 0 and sum(tagged.values()) > tagged[runs[EXPERIMENT]]
    assert (params[runs[""]], params[runs[EXPERIMENT]]) == ("10", "5")


def test_the_mlflow_compare_view_shows_the_two_pipeline_runs_side_by_side(experiment, chromium, tmp_path):
    repo, env, _ = experiment
    runs = _pipeline_runs(repo)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "lowspike.tracking", "ui", "--port", str(port)], cwd=repo,
                              env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(base + "/api/2.0/mlflow/experiments/get-by-name"
                                            "?experiment_name=lowspike-pipeline", timeout=5) as response:
                    experiment_id = json.loads(response.read())["experiment"]["experiment_id"]
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline and server.poll() is None, "the MLflow UI did not start"
                time.sleep(0.5)
        ids = ",".join(f'"{run_id}"' for run_id in runs.values())
        url = f'{base}/#/compare-runs?runs=[{ids}]&experiments=["{experiment_id}"]'
        screenshot = tmp_path / "compare.png"
        page = dump_dom(chromium, url, tmp_path / "profile", budget_ms=20000, width=1600, screenshot=screenshot)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:4] == b"\x89PNG"
    assert "Comparing 2" in page.stdout, page.stdout[-2000:]
    for text in ("simulation.timesteps", "conversion.mlp_baseline_snn_accuracy_pct", "conversion.findings"):
        assert text in page.stdout, f"{text!r} not on the compare page"
