"""What a Ray task does to run one DVC stage, on whatever node Ray chose.

The task never touches the user's workspace and never takes DVC's lock. It works in a scratch
directory of its own on its node (``<tmp>/lowspike-sweep/<run>/<stage>``) that holds the
driver's code snapshot and the stage's declared deps: the up-to-date ones come from Ray's
object store (written once per node into ``<run>/inputs/<object id>`` and hard-linked from
there), the outputs of stale upstream stages are the upstream tasks' results, which Ray hands
to this task as arguments. It runs the stage's commands as DVC would (from the stage's
``wdir``, with ``DVC_ROOT`` and ``DVC_STAGE`` set), and returns the declared outs as bytes
with the tail of the log.

A ``python <script>.py ...`` command runs inside this long-lived worker process (``runpy``,
``sys.argv`` set, ``SystemExit`` caught, stdout and stderr sent to the log) when that
``python`` is the worker's own interpreter, so torch, snntorch and MLflow are imported once
per worker instead of once per stage; anything else runs through the shell like DVC runs it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import re
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import link_tree, read_tree, write_tree
from .pipeline import StageSpec

_HEADLINE = re.compile(r"^\[[^\]]+\] (?P<text>.+)$")
_SHELL_SYNTAX = set("|&;<>()$`\\\"'*?[]{}~\n#")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class TaskSpec:
    """One stage as the driver hands it to a worker."""

    stage: StageSpec
    run_id: str
    workspace: str
    env: dict[str, str]
    threads: int
    in_process: bool
    driver_node: str
    links: dict[str, str] = field(default_factory=dict)
    scratch_root: str | None = None
    monitor: Any = None
    tail_lines: int = 30


@dataclass
class StageResult:
    """A finished stage: its outs (every file, by path relative to the repository root), the
    outs that are directories, where and how long it ran, and the end of its log."""

    name: str
    outs: dict[str, bytes]
    out_dirs: tuple[str, ...]
    node_id: str
    node_ip: str
    pid: int
    started: float
    seconds: float
    in_process: bool
    headline: str
    log_tail: str
    warnings: tuple[str, ...] = ()
    """Every ``warning: ...`` line the stage printed (shown by the runner even on success)."""
    peak_rss_mib: float = 0.0
    """The worker's memory high-water mark when the stage ended: the largest resident set of the
    worker process itself (in-process stages; monotone over the stages it ran) or of the stage
    subprocesses it waited for."""


class StageFailed(Exception):
    """A stage's command failed (non-zero exit) or did not write a declared out."""

    def __init__(self, name: str, message: str, log_tail: str = ""):
        super().__init__(name, message, log_tail)
        self.name = name
        self.message = message
        self.log_tail = log_tail

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


def slug(name: str) -> str:
    """A file name for a stage name (``train_dnn@mnist5k-mlp-l1-0.001`` stays readable)."""
    return re.sub(r"[^A-Za-z0-9._@-]", "_", name)


def run_folder(run_id: str, scratch_root: str | None) -> Path:
    return Path(scratch_root or tempfile.gettempdir()) / "lowspike-sweep" / run_id


def headline(log: str) -> str:
    """The text of the last ``[stage] ...`` line the stage printed (``runtime.announce``)."""
    for line in reversed(log.splitlines()):
        match = _HEADLINE.match(line.strip())
        if match:
            return match.group("text")
    return ""


def warning_lines(log: str) -> tuple[str, ...]:
    """The lines of a stage's log that are warnings it printed (``warning: ...``)."""
    return tuple(line.strip() for line in log.splitlines() if line.strip().lower().startswith("warning:"))


def tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _node_input(ref, folder: Path) -> Path:
    """The files of the object ``ref`` (a tree) under ``folder/<object id>``, written on the
    first use on this node; concurrent tasks wait on a file lock instead of writing twice."""
    import ray

    target = folder / ref.hex()
    if (target / ".complete").exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{ref.hex()}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            write_tree(target, ray.get(ref))
            (target / ".complete").touch()
    return target


def _prepare_scratch(task: TaskSpec, inputs: list, upstream: tuple[StageResult, ...]) -> Path:
    """A scratch directory holding the snapshot, the deps and nothing else; a retry on the same
    node keeps ``.cache`` (training checkpoints), so it resumes from its last epoch."""
    import ray

    base = run_folder(task.run_id, task.scratch_root)
    scratch = base / "stages" / slug(task.stage.name)
    if scratch.exists():
        for entry in scratch.iterdir():
            if entry.name == ".cache":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    scratch.mkdir(parents=True, exist_ok=True)
    for ref in inputs:
        link_tree(_node_input(ref, base / "inputs"), scratch)
    for result in upstream:
        for folder in result.out_dirs:
            (scratch / folder).mkdir(parents=True, exist_ok=True)
        write_tree(scratch, result.outs)
    if ray.get_runtime_context().get_node_id() == task.driver_node:
        for relative, target in task.links.items():
            link = scratch / relative
            if Path(target).exists() and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target)
    return scratch


def in_process_argv(command: str, env: dict[str, str]) -> list[str] | None:
    """``[script, args...]`` when ``command`` is a plain ``python <script>.py args`` whose
    ``python`` (found on the stage's PATH) is this process's interpreter; else ``None``."""
    if any(ch in _SHELL_SYNTAX for ch in command):
        return None
    words = shlex.split(command)
    if len(words) < 2 or words[0] not in ("python", "python3") or not words[1].endswith(".py"):
        return None
    found = shutil.which(words[0], path=env.get("PATH"))
    if found is None or Path(found).parent.absolute() != Path(sys.executable).parent.absolute():
        return None
    return words[1:]


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


@contextlib.contextmanager
def _redirected_output(log_path: Path):
    """Python's ``sys.stdout``/``sys.stderr`` and file descriptors 1 and 2 (native code's
    output) go to ``log_path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds, saved_streams = (os.dup(1), os.dup(2)), (sys.stdout, sys.stderr)
    with open(log_path, "a", buffering=1, errors="replace") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
        try:
            yield
        finally:
            log.flush()
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            os.close(saved_fds[0])
            os.close(saved_fds[1])


def run_in_process(argv: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> int:
    """Run ``python <argv>`` in this process as a fresh interpreter would run it (working
    directory, environment, ``sys.argv``, ``sys.path[0]`` = the script's folder) and return its
    exit code; everything the script changes in those is put back afterwards."""
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    saved_argv, saved_path, saved_hook = list(sys.argv), list(sys.path), sys.excepthook
    script = Path(cwd, argv[0])
    with _redirected_output(log_path):
        try:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            sys.argv = list(argv)
            sys.path.insert(0, str(script.parent.resolve()))
            try:
                runpy.run_path(str(script), run_name="__main__")
                return 0
            except SystemExit as exc:
                return _exit_code(exc.code)
            except Exception:  # noqa: BLE001 - reported like an uncaught exception in a fresh interpreter
                traceback.print_exc()
                return 1
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            sys.argv, sys.path[:], sys.excepthook = saved_argv, saved_path, saved_hook


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the worker process dies, so a killed or cancelled
    worker leaves no stage running behind it (Linux; elsewhere a no-op)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def shell_argv(command: str) -> list[str]:
    """The command line DVC uses for a stage command (``dvc.stage.run._make_cmd``): the user's
    ``$SHELL`` (``/bin/sh`` without one) with ``-c``, bash and zsh without their rc files."""
    executable = os.environ.get("SHELL") or "/bin/sh"
    flags = {"bash": ["--noprofile", "--norc"], "zsh": ["--no-rcs"]}.get(Path(executable).name.lower(), [])
    return [executable, *flags, "-c", command]


def run_subprocess(command: str, cwd: Path, env: dict[str, str], log_path: Path) -> int:
    with open(log_path, "ab") as log:
        process = subprocess.Popen(shell_argv(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, close_fds=True, preexec_fn=_die_with_parent)
        try:
            return process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise


def _collect_outs(stage: StageSpec, scratch: Path) -> tuple[dict[str, bytes], tuple[str, ...]]:
    outs: dict[str, bytes] = {}
    dirs = []
    for out in stage.outs:
        path = scratch / out
        if path.is_dir():
            dirs.append(out)
        elif not path.is_file():
            raise FileNotFoundError(out)
        outs.update(read_tree(scratch, out))
    return outs, tuple(dirs)


def peak_rss_mib() -> float:
    """``max(ru_maxrss)`` of this process and of its waited-for children, in MiB (Linux: KiB)."""
    import resource

    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def _notify(monitor, method: str, *args: Any) -> None:
    if monitor is not None:
        with contextlib.suppress(Exception):
            getattr(monitor, method).remote(*args)


def execute_stage(task: TaskSpec, inputs: list, *upstream: StageResult) -> StageResult:
    """Run one stage in a scratch directory and return its outs; raises :class:`StageFailed`.

    ``inputs`` is a list of object refs (kept in a list so that Ray hands over the refs, not
    the trees): the code snapshot and the up-to-date deps. ``upstream`` are the results of
    the stale stages this one depends on.
    """
    import ray

    stage = task.stage
    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    started = time.time()
    _notify(task.monitor, "started_task", stage.name, node_id, os.getpid(), started)
    scratch = _prepare_scratch(task, inputs, upstream)
    log_path = scratch.parent / f"{slug(stage.name)}.log"
    log_path.write_bytes(b"")
    env = {**os.environ, **task.env, "DVC_ROOT": task.workspace, "DVC_STAGE": stage.name,
           "LOWSPIKE_THREADS": str(task.threads)}
    cwd = scratch / stage.wdir
    in_process = False
    for command in stage.commands:
        argv = in_process_argv(command, env) if task.in_process else None
        in_process = argv is not None
        code = run_in_process(argv, cwd, env, log_path) if argv else run_subprocess(command, cwd, env, log_path)
        if code != 0:
            log = log_path.read_text(errors="replace")
            raise StageFailed(stage.name, f"command exited with code {code} on node {ray.util.get_node_ip_address()} "
                                          f"(scratch {scratch})", tail(log, task.tail_lines))
    log = log_path.read_text(errors="replace")
    try:
        outs, dirs = _collect_outs(stage, scratch)
    except FileNotFoundError as missing:
        raise StageFailed(stage.name, f"output '{missing.args[0]}' does not exist", tail(log, task.tail_lines))
    shutil.rmtree(scratch, ignore_errors=True)
    log_path.unlink(missing_ok=True)
    return StageResult(
        name=stage.name, outs=outs, out_dirs=dirs, node_id=node_id, node_ip=ray.util.get_node_ip_address(),
        pid=os.getpid(), started=started, seconds=time.time() - started, in_process=in_process,
        headline=headline(log), log_tail=tail(log, task.tail_lines), warnings=warning_lines(log),
        peak_rss_mib=peak_rss_mib(),
    )


def remove_run_folder(run_id: str, scratch_root: str | None) -> str:
    """Delete this node's scratch directories and input copies of a run; returns the host."""
    shutil.rmtree(run_folder(run_id, scratch_root), ignore_errors=True)
    return socket.gethostname()
