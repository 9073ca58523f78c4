"""The driver: runs the stale stages of the DVC pipeline as Ray tasks and records them in DVC.

1. DVC plans (:func:`lowspike.sweep.pipeline.plan`): the stages ``dvc repro`` would visit,
   in its order, and the stale ones (stages restorable from DVC's cache are restored there,
   as ``dvc repro`` does).
2. Ray runs: one task per stale stage; its upstream tasks' result refs are its arguments. The
   driver keeps the queue (:class:`Dispatch`): a stage is submitted once its upstream stages
   finished and the cluster has room to start it, longest chain ahead first; Ray places and
   runs the tasks, retries them and moves their data. A training stage (``train_*``) asks
   for ``gpus_per_training`` GPUs when the cluster has GPUs; every task asks for
   ``cpus_per_task`` CPUs and runs torch with that many threads.
3. The code snapshot (``src/``, ``stages/``, ``dvc.yaml``, the params files and the source
   deps) and every up-to-date data dep go into Ray's object store once; ``src/lowspike`` is
   also the tasks' ``py_modules``, so every worker imports the snapshot's code.
4. Only the driver writes the workspace: a finished task's outs replace the old ones (one
   rename each), then :class:`lowspike.sweep.pipeline.Recorder` records them in dvc.lock
   and the cache in DVC's order, in batches.

Ray is imported when the run connects (:func:`connect`), not with this module: a machine where
Ray cannot be imported or started falls back to ``dvc repro``.

Faults: Ray retries a task whose worker died (``max_retries``) or whose stage failed
(``retry_exceptions``); a stage that still fails is reported with its log tail after the
other tasks finished, and the run exits 1. Ctrl-C (or SIGTERM) cancels the tasks, records
what finished and exits 130 (143); a new run continues from there. When Ray cannot start, the
runner says so in one line and runs ``dvc repro``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..artifacts import write_json
from ..errors import ParamsError
from ..params import read_params
from .files import is_within, read_tree, replace_in_workspace, subtree
from .pipeline import Pipeline, Recorder, StageSpec, critical_path_order, plan
from .progress import Counts, Progress
from .worker import StageFailed, StageResult, TaskSpec, execute_stage, remove_run_folder, run_folder

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
OFFLINE_ENV = {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
SNAPSHOT_FOLDERS = ("src", "stages")
TRAINING_PREFIX = "train_"
RECORD_INTERVAL_S = 2.0
RECORD_SHARE = 0.1
"""Finished stages are written to dvc.lock at most every ``RECORD_INTERVAL_S`` seconds, and no
more often than keeps the driver's recording at this share of the wall time: each record
reloads DVC's index (dvc.yaml expanded, dvc.lock parsed: seconds for a pipeline of 150 stages),
so recording after every stage took 60% of a core beside two workers on a 2-core machine."""
SWEEP_RUN_ENV = "LOWSPIKE_SWEEP_RUN"
SWEEP_RUN_TAG = "lowspike.sweep_run"
"""Every MLflow run a sweep's task logs carries the sweep's id (from :data:`SWEEP_RUN_ENV`)."""


@dataclass
class SweepOptions:
    """How to run the sweep; the CLI flags of ``python -m lowspike.sweep`` map one to one."""

    root: Path = Path(".")
    targets: tuple[str, ...] = ()
    address: str | None = None
    workers: int | None = None
    cpus_per_task: int = 1
    gpus_per_training: float = 1.0
    retries: int = 2
    in_process: bool = True
    force: bool = False
    dry: bool = False
    scratch_root: str | None = None
    pin_to_driver: tuple[str, ...] = ("prepare",)
    mlflow_server: str = "auto"
    use_cache: bool = True


@dataclass
class SweepReport:
    """What happened: the exit code, every finished stage's result (outs dropped), failures."""

    exit_code: int
    seconds: float = 0.0
    stale: int = 0
    results: list[StageResult] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    recorded: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    nodes: set[str] = field(default_factory=set)
    fallback: bool = False


class StartedTasks:
    """A Ray actor the tasks tell when they start (fire and forget), for the running count."""

    def __init__(self) -> None:
        self.started: dict[str, tuple[str, int, float]] = {}

    def started_task(self, name: str, node_id: str, pid: int, at: float) -> None:
        self.started[name] = (node_id, pid, at)

    def snapshot(self) -> dict[str, tuple[str, int, float]]:
        return dict(self.started)


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


STAGE_SECONDS = Path(".cache") / "sweep" / "stage_seconds.json"
"""Each stage's seconds in the last run that finished it (``{stage name: seconds}``): the
weights of the next run's queue order. Local to the checkout (``.cache/`` is not versioned)."""


LAST_RUN = Path(".cache") / "sweep" / "last_run.json"
"""The stages the last run finished, and only those (written even when some failed):
``{"seconds": {stage: seconds}, "peak_rss_mib": {stage: MiB}}``, the second the worker's memory
high-water mark when the stage ended. ``benchmarks/timed.py`` sums the seconds per stage family
into reports/pipeline_run.json and takes the largest peak."""


def read_stage_seconds(root: Path) -> dict[str, float]:
    try:
        data = json.loads((root / STAGE_SECONDS).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


def write_stage_seconds(root: Path, seconds: dict[str, float]) -> None:
    merged = {**read_stage_seconds(root), **{name: round(value, 2) for name, value in seconds.items()}}
    try:
        write_json(root / STAGE_SECONDS, dict(sorted(merged.items())))
    except OSError:
        pass


class Dispatch:
    """The queue of stale stages, kept by the driver: Ray has no priorities between tasks that
    wait for resources (it serves them per group of equal arguments, in no order of ours), so
    the driver submits a stage only once its upstream stages finished and the cluster has the
    CPUs (and GPUs) to start it now, highest upward rank first
    (:func:`lowspike.sweep.pipeline.critical_path_order`, weighted by each stage's seconds in
    the last run): the stages with the longest chain still ahead of them start first, and a
    long stage at the end of a chain (a simulation after its trainings) does not wait behind
    independent work. Ray still places and runs every task; the capacity is read from
    ``ray.cluster_resources()`` after every finished stage, so nodes joining later are used.

    ``submit(spec, upstream_refs)`` starts a task; ``resources(spec)`` is its ``(cpus, gpus)``;
    a stage whose upstream failed is never submitted and lands in ``skipped`` (stage -> the
    failed stage)."""

    def __init__(self, stale: list[StageSpec], seconds: dict[str, float], submit, resources,
                 skipped: dict[str, str]) -> None:
        self.waiting = critical_path_order(stale, seconds)
        self.stale_names = {spec.name for spec in stale}
        self.pending: dict[Any, StageSpec] = {}
        self.results: dict[str, Any] = {}
        self.readers = {spec.name: sum(spec.name in other.upstream for other in stale) for spec in stale}
        self.blocked: dict[str, str] = {}
        self.submit, self.resources, self.skipped = submit, resources, skipped

    def finished(self, spec: StageSpec, ref) -> None:
        """``spec``'s task ended: ``ref`` its result when it succeeded, None when it failed."""
        if ref is None:
            self.blocked[spec.name] = spec.name
        elif self.readers[spec.name]:
            self.results[spec.name] = ref

    def fill(self, cluster: dict[str, float]) -> None:
        """Submit the ready stages, in queue order, that fit in what the pending tasks leave free
        of ``cluster`` (``ray.cluster_resources()``); at least one when nothing is pending."""
        free_cpus = cluster.get("CPU", 0.0) - sum(self.resources(spec)[0] for spec in self.pending.values())
        free_gpus = cluster.get("GPU", 0.0) - sum(self.resources(spec)[1] for spec in self.pending.values())
        for spec in list(self.waiting):
            upstream = [name for name in spec.upstream if name in self.stale_names]
            failed = next((self.blocked[name] for name in upstream if name in self.blocked), None)
            if failed is not None:
                self.waiting.remove(spec)
                self.skipped[spec.name] = self.blocked[spec.name] = failed
                continue
            if not all(name in self.results for name in upstream):
                continue
            cpus, gpus = self.resources(spec)
            if self.pending and (cpus > free_cpus + 1e-9 or gpus > free_gpus + 1e-9):
                continue
            self.waiting.remove(spec)
            self.pending[self.submit(spec, [self.results[name] for name in upstream])] = spec
            free_cpus, free_gpus = free_cpus - cpus, free_gpus - gpus
            for name in upstream:
                self.readers[name] -= 1
                if not self.readers[name]:
                    self.results.pop(name)

def _is_loopback(address: str) -> bool:
    host = address.split("://")[-1].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "::1")


def code_runtime_env(root: Path) -> dict:
    """The job's ``runtime_env``: the workspace's ``src/lowspike`` as ``py_modules``, so every
    worker, and every stage subprocess (through ``PYTHONPATH``), imports the driver's code."""
    package = root / "src" / "lowspike"
    return {"py_modules": [str(package)]} if package.is_dir() else {}


def connect(options: SweepOptions, runtime_env: dict) -> bool:
    """Connect to the cluster at ``options.address`` (or ``RAY_ADDRESS``), or start a local
    instance sized to the machine (``workers`` x ``cpus_per_task`` CPUs when given), with the
    job's ``runtime_env``. Returns whether this call connected (and so must disconnect); when
    the caller already connected, its job's runtime env stays as it is."""
    address = options.address or os.environ.get("RAY_ADDRESS")
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    if not address or _is_loopback(address):
        # Ray on Linux replaces 127.0.0.1 with the machine's interface address unless this is
        # off; a local instance then binds loopback only (read when ray is first imported).
        for key, value in LOOPBACK_ENV.items():
            os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        extra = {"_node_ip_address": "127.0.0.1"} if _is_loopback(address) else {}
        ray.init(address=address, runtime_env=runtime_env, **quiet, **extra)
    else:
        cpus = options.workers * options.cpus_per_task if options.workers else None
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 runtime_env=runtime_env, **quiet)
    return True


def _produced(path: str, outs: list[str]) -> bool:
    return any(is_within(path, out) or is_within(out, path) for out in outs)


def snapshot(root: Path, pipeline: Pipeline) -> dict[str, bytes]:
    """The driver's code and configuration as a tree: ``src/``, ``stages/``, ``dvc.yaml``, the
    params files, and every dep of a stale stage that no stage produces."""
    outs = [out for spec in pipeline.order for out in spec.outs]
    tree: dict[str, bytes] = {}
    for folder in SNAPSHOT_FOLDERS:
        tree.update(read_tree(root, folder))
    stale = pipeline.stale_stages()
    for name in dict.fromkeys(["dvc.yaml", *(p for spec in stale for p in spec.params_files)]):
        tree.update(read_tree(root, name))
    for spec in stale:
        for dep in spec.deps:
            if not _produced(dep, outs) and not any(is_within(dep, f) for f in SNAPSHOT_FOLDERS):
                tree.update(read_tree(root, dep))
    return tree


def data_inputs(root: Path, pipeline: Pipeline) -> dict[str, dict[str, bytes]]:
    """``{dep: tree}`` for every dep of a stale stage that a stage produces: what the workspace
    holds there now, less the outs of stale stages (their new versions come from the tasks)."""
    outs = [out for spec in pipeline.order for out in spec.outs]
    stale_outs = [out for spec in pipeline.stale_stages() for out in spec.outs]
    trees: dict[str, dict[str, bytes]] = {}
    for spec in pipeline.stale_stages():
        for dep in spec.deps:
            if dep in trees or not _produced(dep, outs):
                continue
            trees[dep] = read_tree(root, dep, exclude=stale_outs)
    return trees


def _links(root: Path) -> dict[str, str]:
    """Undeclared inputs a stage may read or fill: ``data.root`` (raw datasets, and the
    synthesized spoken-commands clips), linked into scratch directories on the driver's node."""
    try:
        raw_root = read_params(root / "params.yaml").data.root
    except ParamsError:
        return {}
    path = Path(raw_root)
    if path.is_absolute():
        return {}
    return {path.as_posix(): str((root / path).resolve())}


def _tracking_uri(root: Path) -> tuple[str, bool]:
    """The MLflow store the stages use (as ``lowspike.tracking.tracking_uri`` finds it with
    ``DVC_ROOT`` = the workspace) and whether tracking is enabled."""
    try:
        cfg = read_params(root / "params.yaml").tracking
    except ParamsError:
        return "", False
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.uri or f"sqlite:///{root / 'mlflow.db'}"
    return uri, cfg.enabled


class TrackingServer:
    """``mlflow server`` on the driver's node over a local store, for nodes on other machines."""

    def __init__(self, store_uri: str, host: str, root: Path, log_path: Path):
        with socket.socket() as probe:
            probe.bind((host, 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://{host}:{self.port}"
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store_uri, "--host", host,
                   "--port", str(self.port), "--workers", "1", "--allowed-hosts", f"{host},{host}:{self.port}"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(command, cwd=root, stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **OFFLINE_ENV})

    def wait_ready(self, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"mlflow server not ready after {timeout:.0f} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class _Interrupts:
    """SIGINT and SIGTERM set a flag the driver loop reads, so no write or record is cut in
    half; the previous handlers come back on exit."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def fallback(options: SweepOptions, reason: str, stream: TextIO) -> SweepReport:
    """Run ``dvc repro`` with the same targets after a one-line notice."""
    stream.write(f"lowspike.sweep: Ray could not start ({reason}); running plain `dvc repro` instead\n")
    stream.flush()
    command = [sys.executable, "-m", "dvc", "repro", *(["-f"] if options.force else []), *options.targets]
    code = subprocess.call(command, cwd=options.root)
    return SweepReport(exit_code=code, fallback=True)


def _resources(spec: StageSpec, options: SweepOptions, has_gpu: bool) -> tuple[int, float]:
    gpus = options.gpus_per_training if has_gpu and spec.family.startswith(TRAINING_PREFIX) else 0.0
    return options.cpus_per_task, gpus


def _print_plan(pipeline: Pipeline, options: SweepOptions, stream: TextIO) -> None:
    for name in pipeline.restored:
        stream.write(f"restored from the DVC cache: {name}\n")
    for spec in pipeline.stale_stages():
        training = spec.family.startswith(TRAINING_PREFIX)
        gpu = f", {options.gpus_per_training:g} GPU where the cluster has GPUs" if training else ""
        stream.write(f"would run {spec.name} ({pipeline.stale[spec.name]}; {options.cpus_per_task} CPU{gpu})\n")
    stream.write(f"{len(pipeline.stale)} stage(s) to run\n")


def run_sweep(options: SweepOptions, stream: TextIO | None = None) -> SweepReport:
    """Run the stale stages of the pipeline under ``options.root`` on Ray; see the module doc."""
    stream = stream or sys.stderr
    root = Path(options.root).resolve()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    begin = time.monotonic()
    pipeline = plan(root, options.targets, force=options.force, use_cache=options.use_cache)
    if options.dry:
        _print_plan(pipeline, options, stream)
        return SweepReport(exit_code=0, stale=len(pipeline.stale), restored=pipeline.restored)
    for name in pipeline.restored:
        stream.write(f"{name}: restored from the DVC cache\n")
    if not pipeline.stale:
        stream.write("Data and pipelines are up to date.\n")
        return SweepReport(exit_code=0, restored=pipeline.restored)
    try:
        started_ray = connect(options, code_runtime_env(root))
    except Exception as exc:  # noqa: BLE001 - any failure to start Ray means: run without it
        return fallback(options, f"{type(exc).__name__}: {exc}".splitlines()[0], stream)
    try:
        report = _drive(root, pipeline, options, stream)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    report.seconds = time.monotonic() - begin
    report.restored = pipeline.restored
    return report


@dataclass
class _Cluster:
    """What the driver reads of the cluster once: its node, where it can pin a stage, GPUs."""

    driver_node: str
    driver_ip: str
    has_gpu: bool
    pin_possible: bool
    remote_machines: bool

    @classmethod
    def read(cls, options: SweepOptions, stale: list[StageSpec], stream: TextIO) -> "_Cluster":
        import ray

        driver_node = ray.get_runtime_context().get_node_id()
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        driver_ip = next((n["NodeManagerAddress"] for n in nodes if n["NodeID"] == driver_node), "127.0.0.1")
        largest_node = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
        driver_cpus = next((n["Resources"].get("CPU", 0) for n in nodes if n["NodeID"] == driver_node), 0)
        pin_possible = driver_cpus >= options.cpus_per_task
        if not pin_possible and any(spec.family in options.pin_to_driver for spec in stale):
            stream.write(f"note: the driver's node has {driver_cpus:g} CPUs; {', '.join(options.pin_to_driver)} "
                         "stages may run on any node (they need the raw data there)\n")
        if options.cpus_per_task > largest_node:
            raise ValueError(f"--cpus-per-task {options.cpus_per_task} exceeds the largest node ({largest_node:g} CPUs)")
        return cls(driver_node, driver_ip, ray.cluster_resources().get("GPU", 0) > 0, pin_possible,
                   any(n["NodeManagerAddress"] != driver_ip for n in nodes))


def _task_env(root: Path, run_id: str) -> dict[str, str]:
    """The environment of every task: offline tools, the sweep's id, and the checkout's commit
    for the MLflow tags of tasks that run in a scratch folder without it."""
    env = {**OFFLINE_ENV, SWEEP_RUN_ENV: run_id}
    commit = _git(root, "rev-parse", "HEAD")
    if commit:
        env["LOWSPIKE_GIT_COMMIT"] = commit
        env["LOWSPIKE_GIT_DIRTY"] = "true" if _git(root, "status", "--porcelain", "--untracked-files=no") else "false"
    return env


def _start_tracking(root: Path, options: SweepOptions, cluster: _Cluster, run_id: str, env: dict[str, str],
                    stream: TextIO) -> tuple[str, bool, TrackingServer | None]:
    """The store the tasks log to, whether tracking is on, and the MLflow server the driver
    started for nodes on other machines (None without)."""
    uri, tracking_on = _tracking_uri(root)
    local_store = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    serve = tracking_on and local_store and (options.mlflow_server == "on" or
                                             (options.mlflow_server == "auto" and cluster.remote_machines))
    if serve:
        server = TrackingServer(uri, cluster.driver_ip, root, run_folder(run_id, options.scratch_root) / "mlflow-server.log")
        server.wait_ready()
        env["MLFLOW_TRACKING_URI"] = server.uri
        stream.write(f"MLflow: tasks log through {server.uri} (store {uri})\n")
        return uri, tracking_on, server
    if os.environ.get("MLFLOW_TRACKING_URI"):
        env["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_TRACKING_URI"]
    return uri, tracking_on, None


def _submitter(root: Path, pipeline: Pipeline, options: SweepOptions, cluster: _Cluster, run_id: str,
               env: dict[str, str], monitor_actor):
    """``submit(spec, upstream_refs)``: start one stage as a Ray task, with the code snapshot and
    its up-to-date deps (put into the object store once) and its upstream stages' results."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    snapshot_ref = ray.put(snapshot(root, pipeline))
    data_refs = {dep: ray.put(tree) for dep, tree in data_inputs(root, pipeline).items() if tree}
    links = _links(root)
    remote_stage = ray.remote(execute_stage)

    def submit(spec: StageSpec, upstream: list) -> Any:
        cpus, gpus = _resources(spec, options, cluster.has_gpu)
        task = TaskSpec(stage=spec, run_id=run_id, workspace=str(root), env=env, threads=cpus,
                        in_process=options.in_process and gpus == 0, driver_node=cluster.driver_node, links=links,
                        scratch_root=options.scratch_root, monitor=monitor_actor)
        task_options: dict[str, Any] = dict(name=f"stage {spec.name}", num_cpus=cpus, num_gpus=gpus,
                                            max_retries=options.retries, retry_exceptions=True)
        if spec.family in options.pin_to_driver and cluster.pin_possible:
            task_options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(cluster.driver_node, soft=False)
        inputs = [snapshot_ref, *(data_refs[dep] for dep in spec.deps if dep in data_refs)]
        return remote_stage.options(**task_options).remote(task, inputs, *upstream)

    return submit


def _run_queue(root: Path, dispatch: "Dispatch", recorder: Recorder, report: SweepReport, progress: Progress,
               monitor_actor) -> int | None:
    """Collect the stages as they finish and submit the next ones until none is pending or a
    signal arrives (then take what finished, cancel the rest); record everything that finished.
    Returns the signal, or None."""
    import ray

    pending = dispatch.pending
    last_record, record_interval = time.monotonic(), RECORD_INTERVAL_S
    with _Interrupts() as interrupts:
        while pending and interrupts.signal is None:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                spec = pending.pop(ref)
                ok = _collect(ref, spec, root, recorder, report, progress, monitor_actor, dispatch)
                dispatch.finished(spec, ref if ok else None)
            if ready:
                dispatch.fill(ray.cluster_resources())
            if ready and time.monotonic() - last_record >= record_interval:
                started = time.monotonic()
                report.recorded += recorder.record_ready()
                last_record = time.monotonic()
                record_interval = max(RECORD_INTERVAL_S, (last_record - started) / RECORD_SHARE)
            if progress.live:
                progress.status(_counts(report, dispatch, monitor_actor))
        interrupted = interrupts.signal
        if interrupted is not None:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            for ref in ready:
                _collect(ref, pending.pop(ref), root, recorder, report, progress, monitor_actor, dispatch)
            for ref in pending:
                ray.cancel(ref, force=True)
        report.recorded += recorder.record_all()
    return interrupted


def _drive(root: Path, pipeline: Pipeline, options: SweepOptions, stream: TextIO) -> SweepReport:
    import ray

    stale = pipeline.stale_stages()
    report = SweepReport(exit_code=0, stale=len(stale))
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    cluster = _Cluster.read(options, stale, stream)
    env = _task_env(root, run_id)
    server = monitor_actor = recorder = dispatch = None
    tracking_on, interrupted, recorder_hint = False, None, None
    try:
        uri, tracking_on, server = _start_tracking(root, options, cluster, run_id, env, stream)
        monitor_actor = ray.remote(num_cpus=0)(StartedTasks).remote()
        dispatch = Dispatch(stale, read_stage_seconds(root),
                            _submitter(root, pipeline, options, cluster, run_id, env, monitor_actor),
                            lambda spec: _resources(spec, options, cluster.has_gpu), report.skipped)
        dispatch.fill(ray.cluster_resources())
        recorder = Recorder(root, pipeline)
        progress = Progress(len(stale), stream)
        try:
            interrupted = _run_queue(root, dispatch, recorder, report, progress, monitor_actor)
        finally:
            progress.close()
    finally:
        if recorder is not None:
            recorder_hint = recorder.git_hint()
            recorder.close()
        if tracking_on:
            _close_abandoned_runs(uri, run_id, stream)
        if server is not None:
            server.stop()
        if monitor_actor is not None:
            ray.kill(monitor_actor)
        _clean_nodes(run_id, options.scratch_root, keep=bool(report.failed))
    finished = {result.name: round(result.seconds, 2) for result in report.results}
    try:
        write_json(root / LAST_RUN, {"seconds": finished, "peak_rss_mib": {
            result.name: round(result.peak_rss_mib, 1) for result in report.results}})
    except OSError:
        pass
    if dispatch is not None and not report.failed and interrupted is None:
        write_stage_seconds(root, finished)
    report.nodes = {result.node_id for result in report.results}
    _summary(report, dispatch.pending if dispatch else {}, dispatch.waiting if dispatch else [], interrupted, stream)
    if recorder_hint:
        stream.write(recorder_hint + "\n")
    if interrupted is not None:
        report.exit_code = 128 + interrupted
    elif report.failed or report.skipped:
        report.exit_code = 1
    return report


def _close_abandoned_runs(uri: str, run_id: str, stream: TextIO) -> None:
    """End the MLflow runs of this sweep that no process will end: the attempts whose worker Ray
    killed (SIGKILL, out of memory, a cancelled task) leave their run RUNNING. Each becomes
    KILLED, tagged with the run of the attempt that finished the stage (``lowspike.retried_by_run``)
    when one did."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        if not experiments:
            return
        runs = client.search_runs(experiments, f"tags.`{SWEEP_RUN_TAG}` = '{run_id}'", max_results=10000)
        finished = {r.data.tags.get("dvc.stage"): r.info.run_id for r in runs if r.info.status == "FINISHED"}
        for run in runs:
            if run.info.status != "RUNNING":
                continue
            retry = finished.get(run.data.tags.get("dvc.stage"))
            if retry:
                client.set_tag(run.info.run_id, "lowspike.retried_by_run", retry)
            client.set_terminated(run.info.run_id, status="KILLED")
    except Exception as exc:  # noqa: BLE001 - the record of a run that ended cannot fail the sweep
        stream.write(f"warning: could not end the MLflow runs of killed attempts ({type(exc).__name__}: {exc})\n")


def _counts(report: SweepReport, dispatch: "Dispatch", monitor_actor) -> Counts:
    import ray

    try:
        started = ray.get(monitor_actor.snapshot.remote(), timeout=5)
    except Exception:  # noqa: BLE001 - the counts are informative only
        started = {}
    running = sum(1 for spec in dispatch.pending.values() if spec.name in started)
    return Counts(done=len(report.results), running=running,
                  queued=len(dispatch.pending) - running + len(dispatch.waiting), failed=len(report.failed))


def _collect(ref, spec: StageSpec, root: Path, recorder: Recorder, report: SweepReport, progress: Progress,
             monitor_actor, dispatch: "Dispatch") -> bool:
    """Take one finished task: write its outs into the workspace (True), or note why it failed."""
    import ray

    try:
        result: StageResult = ray.get(ref)
    except StageFailed as exc:  # its own command: a task starts only after its upstream succeeded
        report.failed[spec.name] = f"{exc.message}\n{exc.log_tail}"
        progress.line(f"FAILED {spec.name}: {exc.message}")
        return False
    except ray.exceptions.RayError as exc:
        message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        report.failed[spec.name] = message
        progress.line(f"FAILED {spec.name}: {message}")
        return False
    for out in spec.outs:
        replace_in_workspace(root, out, subtree(result.outs, out), out in result.out_dirs)
    recorder.finish(spec.name)
    result.outs = {}
    report.results.append(result)
    node = f"{result.node_ip}/{result.node_id[:6]}"
    progress.stage_done(spec.name, node, result.seconds, result.headline, _counts(report, dispatch, monitor_actor))
    for warning in result.warnings:
        progress.line(f"    {spec.name}: {warning}")
    return True


def _clean_nodes(run_id: str, scratch_root: str | None, keep: bool) -> None:
    """Remove the run's scratch directories and input copies on every live node (kept when a
    stage failed, for a look at its scratch directory)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if keep:
        return
    cleaner = ray.remote(remove_run_folder)
    calls = [cleaner.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
             .remote(run_id, scratch_root) for node in ray.nodes() if node.get("Alive")]
    try:
        ray.get(calls, timeout=60)
    except Exception:  # noqa: BLE001 - leftovers in a temporary folder are harmless
        pass


def _summary(report: SweepReport, pending: dict, waiting: list, interrupted: int | None, stream: TextIO) -> None:
    ran = len(report.results)
    stream.write(f"sweep: {ran} of {report.stale} stage(s) ran on {len(report.nodes)} node(s), "
                 f"{len(report.recorded)} recorded in dvc.lock\n")
    for name, message in report.failed.items():
        stream.write(f"\nstage {name} failed: {message}\n")
    if report.skipped:
        stream.write(f"{len(report.skipped)} stage(s) not run because a stage upstream failed: "
                     f"{', '.join(sorted(report.skipped))}\n")
    if interrupted is not None:
        stream.write(f"interrupted: {len(pending)} task(s) cancelled, {len(waiting)} not started; "
                     "what finished is recorded; "
                     "run again to continue\n")
