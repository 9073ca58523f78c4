"""MLflow tracking: one run per stage execution, one experiment per study.

The store is a SQLite file at the repository root (``DVC_ROOT`` when DVC runs the stage,
so queued experiments log to the same place) with artifacts under ``mlartifacts/``;
``MLFLOW_TRACKING_URI`` or ``tracking.uri`` override it. DVC owns the results: when MLflow
cannot write, the stage goes on and prints one warning.

``python -m lowspike.tracking ui`` starts ``mlflow ui`` on 127.0.0.1 against the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from .config import TrackingConfig

T = TypeVar("T")

STUDY_EXPERIMENTS = {"regularization": "regularization", "distillation": "distillation"}
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


class Run:
    """An MLflow run that never breaks the stage: the first failure disables it with one warning."""

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
            _with_retry(action)
        except Exception as exc:  # noqa: BLE001
            self.active = False
            print(f"warning: MLflow tracking disabled for this stage ({type(exc).__name__}: {exc})".splitlines()[0],
                  file=sys.stderr)

    def __enter__(self) -> "Run":
        self._guard(self._start)
        return self

    def _start(self) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mlflow.tracking import MlflowClient

        uri = tracking_uri(self.cfg)
        with _first_use_lock(uri):
            self.client = MlflowClient(tracking_uri=uri)
            experiment_id = ensure_experiment(self.client, f"{self.cfg.experiment_prefix}-{self.study}")
        tags = {**default_tags(), **self.tags}
        run = self.client.create_run(experiment_id, run_name=self.run_name, tags=tags)
        self.run_id = run.info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]

        def action() -> None:
            for start in range(0, len(items), 100):
                self.client.log_batch(self.run_id, params=items[start:start + 100])

        self._guard(action)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step or 0)
            for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and v == v and abs(float(v)) != float("inf")  # True/False -> 1/0
        ]

        def action() -> None:
            for start in range(0, len(items), 500):
                self.client.log_batch(self.run_id, metrics=items[start:start + 500])

        self._guard(action)

    def log_series(self, name: str, values: list[float], start_step: int = 1) -> None:
        """Log ``values`` as one metric over steps ``start_step, start_step + 1, ...`` in one batch."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(name, float(v), now, start_step + i) for i, v in enumerate(values)
                 if isinstance(v, (int, float)) and v == v and abs(float(v)) != float("inf")]

        def action() -> None:
            for start in range(0, len(items), 500):
                self.client.log_batch(self.run_id, metrics=items[start:start + 500])

        self._guard(action)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._guard(lambda: self.client.log_artifact(self.run_id, str(path), artifact_path))

    def __exit__(self, exc_type, exc, tb) -> None:
        status = "FINISHED" if exc_type is None else "FAILED"
        self._guard(lambda: self.client.set_terminated(self.run_id, status=status))


def ensure_experiment(client, name: str) -> str:
    """The id of experiment ``name``, created with an absolute artifact location if missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = (repo_root() / "mlartifacts" / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def default_tags() -> dict[str, str]:
    tags = {"dvc.stage": os.environ.get("DVC_STAGE", "")}
    commit = os.environ.get("LOWSPIKE_GIT_COMMIT", "")  # set by the sweep runner for nodes without the checkout
    try:
        commit = commit or subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=repo_root()
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git.commit"] = commit
    return {k: v for k, v in tags.items() if v}


def log_point_record(run: Run, point: str, record: Mapping[str, Any]) -> None:
    """Log one grid point's record under ``<point>.<metric>``; a per-timestep list
    (``accuracy_per_timestep``) becomes a curve over steps 1..T."""
    scalars = {f"{point}.{k}": v for k, v in record.items() if not isinstance(v, (list, str))}
    run.log_metrics(scalars)
    if isinstance(record.get("accuracy_per_timestep"), list):
        run.log_series(f"{point}.snn_accuracy_per_timestep", record["accuracy_per_timestep"])


def start_run(cfg: TrackingConfig, study: str, run_name: str, tags: Mapping[str, Any] | None = None) -> Run:
    """A :class:`Run` to use as a context manager."""
    return Run(cfg, study, run_name, tags or {})


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "ui":
        print("usage: python -m lowspike.tracking ui [--port N]", file=sys.stderr)
        return 2
    port = argv[argv.index("--port") + 1] if "--port" in argv else "5000"
    uri = tracking_uri()
    print(f"MLflow UI for {uri} on http://127.0.0.1:{port}")
    return subprocess.call(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", port]
    )


if __name__ == "__main__":
    raise SystemExit(main())
