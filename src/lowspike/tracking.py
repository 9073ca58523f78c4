"""MLflow tracking: one run per stage execution, one experiment per study.

The store is a SQLite file at the repository root (``DVC_ROOT`` when DVC runs the stage,
so queued experiments log to the same place) with artifacts under ``mlartifacts/``;
``MLFLOW_TRACKING_URI`` or ``tracking.uri`` override it. DVC owns the results: when MLflow
cannot write, the stage goes on and prints one warning.

``python -m lowspike.tracking ui [--host H] [--port N]`` (``make ui HOST=... PORT=...``) serves
``mlflow ui`` against the store and prints the runs table of the project's experiment.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from .config import TrackingConfig

T = TypeVar("T")

_RETRIES = 8
_LOCKED = re.compile(r"database (?:table )?is locked", re.IGNORECASE)


def repo_root() -> Path:
    """``DVC_ROOT`` when set, else the enclosing git work tree, else the current folder."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists() or (folder / ".dvc").is_dir():
            return folder
    return here


def tracking_uri(cfg: TrackingConfig | None = None) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if cfg is not None and cfg.uri:
        return cfg.uri
    return f"sqlite:///{repo_root() / 'mlflow.db'}"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become their string form."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _with_retry(action: Callable[[], T]) -> T:
    """Run ``action``, retrying with jittered exponential backoff while SQLite is locked."""
    delay = 0.05
    for attempt in range(_RETRIES):
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - MLflow wraps sqlite errors in several types
            if not _LOCKED.search(str(exc)) or attempt == _RETRIES - 1:
                raise
            time.sleep(delay * (1.0 + random.random()))
            delay *= 2
    raise RuntimeError("unreachable")


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C (SIGINT) and SIGTERM while a store write runs, and deliver them after it: a
    ``KeyboardInterrupt`` raised inside SQLAlchemy leaves the SQLite store locked by this very
    process, and ending the run as KILLED then waits on that lock.

    The signals' Python handlers are swapped for one that only records them, and the recorded
    signals are raised again once the old handlers are back. A thread mask
    (``pthread_sigmask``) would not hold them: the kernel hands a process-directed signal to any
    thread that does not block it (MLflow's and torch's threads, started earlier), and Python
    then runs the handler in the main thread at its next bytecode, inside the write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HELD_SIGNALS}
    previous = {signum: handler for signum, handler in previous.items() if handler is not None}
    received: list[int] = []
    for signum in previous:
        signal.signal(signum, lambda number, _frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


@contextlib.contextmanager
def _first_use_lock(uri: str):
    """Hold an exclusive lock on ``<store>.lock`` while a process opens a SQLite store: MLflow
    creates and migrates the tables on first use, and two stages doing that at once (``dvc queue
    start -j 2`` on a fresh store) collide with "duplicate column name"."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri[len("sqlite:///"):])
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_OUTAGE = re.compile(r"database (?:table )?is locked|unable to open database|readonly database|disk I/O error|"
                     r"file is not a database|database disk image is malformed|"
                     r"connection (?:refused|reset|aborted)|max retries exceeded|failed to establish|"
                     r"name or service not known|timed out", re.IGNORECASE)
_ILLEGAL_KEY = re.compile(r"[^A-Za-z0-9_\-. :/]")


def metric_key(name: str) -> str:
    """A key MLflow accepts for a metric or param named ``name``: MLflow allows letters, digits,
    underscores, dashes, periods, spaces, colons and slashes; a ``+`` (the joint points
    ``l1+wl1-1e-4`` and ``het-s1.0-t8.0+act-l1-2.0``) becomes ``_plus_`` and any other character
    ``_``. The original name of a point is kept as a tag ``lowspike.point.<key>``."""
    return _ILLEGAL_KEY.sub("_", name.replace("+", "_plus_"))


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the store is unreachable or unwritable: a locked,
    missing, read-only or damaged SQLite file, a refused or dropped connection to a server. Any other
    tracking error is a bug of the caller and is raised."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (OSError, ConnectionError, TimeoutError)) or _OUTAGE.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a flattened mapping (booleans as 1/0), by legal key."""
    return {metric_key(k): float(v) for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and math.isfinite(float(v))}


class Run:
    """An MLflow run that does not break the stage when the store is down: the first outage
    (:func:`is_outage`) disables it with one warning and the stage goes on; any other error
    (a refused key, a wrong call) is raised, and the run ends as FAILED."""

    def __init__(self, cfg: TrackingConfig, study: str, run_name: str, tags: Mapping[str, Any]):
        self.cfg = cfg
        self.study = study
        self.run_name = run_name
        self.tags = {k: str(v) for k, v in tags.items() if v is not None}
        self.client = None
        self.run_id: str | None = None
        self.active = cfg.enabled

    def _guard(self, action: Callable[[], Any]) -> None:
        if not self.active:
            return
        try:
            with _interrupts_deferred():
                _with_retry(action)
        except Exception as exc:  # noqa: BLE001 - MLflow raises many types; outages are told apart below
            if not is_outage(exc):
                raise
            self.active = False
            print(f"warning: MLflow tracking disabled for this stage, the store is unreachable "
                  f"({type(exc).__name__}: {exc})".splitlines()[0], file=sys.stderr)

    def __enter__(self) -> "Run":
        self._guard(self._start)
        return self

    def _start(self) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mlflow.tracking import MlflowClient  # the stage's MLflow import, skipped with tracking off
        for logger in ("mlflow", "alembic"):  # store creation and migration notices: not the stage's news
            logging.getLogger(logger).setLevel(logging.WARNING)

        uri = tracking_uri(self.cfg)
        with _first_use_lock(uri):
            self.client = MlflowClient(tracking_uri=uri)
            experiment_id = ensure_experiment(self.client, f"{self.cfg.experiment_prefix}-{self.study}")
        tags = {**default_tags(), **self.tags}
        current = in_user_workspace()
        tags[CURRENT_TAG] = "true" if current else "false"
        run = self.client.create_run(experiment_id, run_name=self.run_name, tags=tags)
        self.run_id = run.info.run_id
        self.experiment_id = experiment_id
        if current:
            self._retire_earlier_runs()

    def _same_stage_runs(self, extra_filter: str = "") -> list:
        name = self.run_name.replace("'", "\\'")
        query = f"attributes.run_name = '{name}'" + (f" and {extra_filter}" if extra_filter else "")
        return [r for r in self.client.search_runs([self.experiment_id], query, max_results=1000)
                if r.info.run_id != self.run_id]

    def _retire_earlier_runs(self) -> None:
        """This run's outputs replace those of every earlier run of the same stage in the
        workspace: they lose the ``lowspike.current`` mark."""
        for run in self._same_stage_runs(f"tags.`{CURRENT_TAG}` = 'true'"):
            self.client.set_tag(run.info.run_id, CURRENT_TAG, "false")

    def link_interrupted(self, resumed_from_epoch: int) -> None:
        """Tag this run as the continuation, from ``resumed_from_epoch``, of the latest interrupted
        (``KILLED``) run of the same stage, and that run as continued by this one."""
        if not resumed_from_epoch:
            return

        def action() -> None:
            self.client.set_tag(self.run_id, "lowspike.resumed_from_epoch", str(resumed_from_epoch))
            killed = [r for r in self._same_stage_runs() if r.info.status == "KILLED"]
            if killed:
                previous = max(killed, key=lambda r: r.info.start_time)
                self.client.set_tag(self.run_id, "lowspike.resumed_from_run", previous.info.run_id)
                self.client.set_tag(previous.info.run_id, "lowspike.continued_by_run", self.run_id)

        self._guard(action)

    def tag_current_stage_runs(self) -> None:
        """Tag the runs whose outputs this pipeline run summarizes, the latest run of every stage in
        the workspace (``lowspike.current``, in the other ``<prefix>-*`` experiments), with
        ``lowspike.pipeline_run`` = this run's id; this run gets ``lowspike.stage_runs``, their
        number. A stage that DVC did not re-run keeps its run, tagged with the newest pipeline run
        that used it (docs/tracking.md)."""

        def action() -> None:
            prefix = self.cfg.experiment_prefix.replace("'", "\\'")
            experiments = [e.experiment_id for e in self.client.search_experiments(filter_string=f"name LIKE '{prefix}-%'")
                           if e.experiment_id != self.experiment_id]
            runs = self.client.search_runs(experiments, f"tags.`{CURRENT_TAG}` = 'true'",
                                           max_results=50000) if experiments else []
            for run in runs:
                self.client.set_tag(run.info.run_id, PIPELINE_RUN_TAG, self.run_id)
            self.client.set_tag(self.run_id, "lowspike.stage_runs", str(len(runs)))

        self._guard(action)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        def action() -> None:
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, str(value)[:5000])

        self._guard(action)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log ``params`` (nested mappings flattened with dots) as strings."""
        if not self.active:
            return
        from mlflow.entities import Param

        items = [Param(metric_key(k), str(v)[:6000]) for k, v in flatten(params).items()]

        def action() -> None:
            for start in range(0, len(items), 100):
                self.client.log_batch(self.run_id, params=items[start:start + 100])

        self._guard(action)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log every finite number of ``metrics`` (nested mappings flattened with dots, booleans as
        1/0) under its legal key (:func:`metric_key`) at ``step``."""
        if not self.active:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, value, now, step or 0) for key, value in _numbers(metrics).items()]

        def action() -> None:
            for start in range(0, len(items), 500):
                self.client.log_batch(self.run_id, metrics=items[start:start + 500])

        self._guard(action)

    def log_series(self, name: str, values: list[float], start_step: int = 1) -> None:
        """Log ``values`` as one metric over steps ``start_step, start_step + 1, ...`` in one batch."""
        if not self.active:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(metric_key(name), float(v), now, start_step + i) for i, v in enumerate(values)
                 if isinstance(v, (int, float)) and math.isfinite(float(v))]

        def action() -> None:
            for start in range(0, len(items), 500):
                self.client.log_batch(self.run_id, metrics=items[start:start + 500])

        self._guard(action)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._guard(lambda: self.client.log_artifact(self.run_id, str(path), artifact_path))

    def __exit__(self, exc_type, exc, tb) -> None:
        """FINISHED, KILLED for Ctrl-C (an interrupted run, resumed by the next ``dvc repro``:
        see :meth:`link_interrupted`), FAILED otherwise."""
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
            epoch = getattr(exc, "epoch", 0)  # lowspike.training.TrainingInterrupted's finished epochs
            if epoch:
                self._guard(lambda: self.client.set_tag(self.run_id, "lowspike.interrupted_after_epoch", str(epoch)))
        else:
            status = "FAILED"
        self._guard(lambda: self.client.set_terminated(self.run_id, status=status))


EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
"""Marks the experiments as model training: MLflow 3.17's UI then opens them on their runs
table instead of the GenAI overview page."""


def ensure_experiment(client, name: str) -> str:
    """The id of experiment ``name``, created with an absolute artifact location if missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = (repo_root() / "mlartifacts" / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
    except Exception:  # another process created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


CURRENT_TAG = "lowspike.current"
"""``true`` on the latest run of each stage whose outputs are in the user's workspace."""

PIPELINE_RUN_TAG = "lowspike.pipeline_run"
"""On a stage run: the id of the newest pipeline run (experiment ``<prefix>-pipeline``) whose
report read its outputs (:meth:`Run.tag_current_stage_runs`)."""


def in_user_workspace() -> bool:
    """False inside the temporary copy where ``dvc queue`` runs an experiment (its outputs do not
    replace the workspace's until the experiment is applied)."""
    root = repo_root()
    here = Path.cwd().resolve()
    return not (here != root and (root / ".dvc" / "tmp") in (here, *here.parents))


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                              cwd=Path.cwd()).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def default_tags(params_path: str | Path = "params.yaml") -> dict[str, str]:
    """Where the run comes from: DVC stage and experiment name (``dvc exp run``), git commit and
    whether the code differed from it (``git.dirty``), and the sha256 of the params file the stage
    read (runs with equal ``params.sha256`` ran on the same params, whatever the commit says)."""
    tags = {"dvc.stage": os.environ.get("DVC_STAGE", ""), "dvc.exp_name": os.environ.get("DVC_EXP_NAME", ""),
            "lowspike.sweep_run": os.environ.get("LOWSPIKE_SWEEP_RUN", "")}
    # the sweep runner passes both to nodes that run a stage without the checkout
    commit = os.environ.get("LOWSPIKE_GIT_COMMIT") or _git("rev-parse", "HEAD")
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git.commit"] = commit
        dirty = os.environ.get("LOWSPIKE_GIT_DIRTY") or (
            "true" if _git("status", "--porcelain", "--untracked-files=no") else "false")
        tags["git.dirty"] = dirty
    params_file = Path(params_path)
    if params_file.is_file():
        tags["params.sha256"] = hashlib.sha256(params_file.read_bytes()).hexdigest()[:16]
    return {k: v for k, v in tags.items() if v}


def log_point_record(run: Run, point: str, record: Mapping[str, Any]) -> None:
    """Log one grid point's record under ``<point>.<metric>`` (every finite number at any depth,
    lists aside; the point's legal key by :func:`metric_key`, its own name as the tag
    ``lowspike.point.<key>``); the per-timestep accuracy (``accuracy_per_timestep``) becomes a
    curve over steps 1..T."""
    key = metric_key(point)
    if key != point:
        run.set_tags({f"lowspike.point.{key}": point})
    run.log_metrics({f"{key}.{k}": v for k, v in record.items() if not isinstance(v, (list, str))})
    if isinstance(record.get("accuracy_per_timestep"), list):
        run.log_series(f"{key}.snn_accuracy_per_timestep", record["accuracy_per_timestep"])


def start_run(cfg: TrackingConfig, study: str, run_name: str, tags: Mapping[str, Any] | None = None) -> Run:
    """A :class:`Run` to use as a context manager."""
    return Run(cfg, study, run_name, tags or {})


def experiment_runs_url(base: str, uri: str, study: str = "regularization", prefix: str = "lowspike") -> str:
    """The runs table of the study's experiment in the MLflow 3.17 UI, in its "Model training" view
    (``#/experiments/<id>/runs?workflowType=machine_learning``; without it the UI opens an
    experiment on its GenAI overview), or the experiment list when there is no such experiment."""
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name(f"{prefix}-{study}")
    if experiment is None:
        return f"{base}/#/experiments"
    return f"{base}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"


def serve_ui(host: str = "127.0.0.1", port: int = 5000) -> int:
    """``mlflow ui`` on ``host:port`` against the project's store, in a process group of its own:
    SIGTERM or Ctrl-C to this process stops the server and every worker it started, and frees
    the port."""
    uri = tracking_uri()
    base = f"http://{host}:{port}"
    try:
        print(f"MLflow UI for {uri}: {experiment_runs_url(base, uri)}", flush=True)
    except Exception:  # noqa: BLE001 - a store that cannot be read yet: mlflow ui reports it
        print(f"MLflow UI for {uri}: {base}", flush=True)
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                               "--host", host, "--port", str(port)], start_new_session=True)
    received: list[int] = []

    def forward(signum, frame) -> None:
        received.append(signum)
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        server.wait(timeout=None if not received else 15)
    except subprocess.TimeoutExpired:
        pass
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM if server.poll() is None else 0)
            server.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(server.pid, signal.SIGKILL)  # workers that outlived the server
        except ProcessLookupError:
            pass
    return 128 + received[0] if received else server.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lowspike.tracking")
    sub = parser.add_subparsers(dest="command", required=True)
    ui = sub.add_parser("ui", help="serve the MLflow UI on the project's store")
    ui.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
    ui.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 5000))
    args = parser.parse_args(argv)
    code = serve_ui(args.host, args.port)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # without waiting for the threads that importing MLflow started


if __name__ == "__main__":
    raise SystemExit(main())
