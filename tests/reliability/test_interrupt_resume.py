"""A training stage killed with SIGKILL mid-run leaves either the old or the new version of every
file; re-running it resumes from the last per-epoch checkpoint and ends bit-identical (CPU) to
an uninterrupted run. The full ``dvc repro`` variant is slow-marked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from lowspike.artifacts import atomic_path, read_json, write_bytes, write_json, write_text
from lowspike.checkpoints import load_torch, save_torch
from lowspike.params import validate_params
from lowspike.studies import conversion_points
from lowspike.studies import conversion_train

from .conftest import (TRAIN_BASELINE, dvc, make_tiny_repo, run_stage, stage_command, stage_env, tiny_params,
                       without_timings, write_params)

pytestmark = pytest.mark.integration

LONG_TRAIN = {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 32, "max_epochs": 30, "patience": 30, "seed": 0}
BASELINE = Path("runs/dnn/digits/mlp/baseline")
CHECKPOINT = Path(".cache/checkpoints/dnn__digits__mlp__baseline.pt")


def _wait_for(predicate, timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def _checkpoint_epoch(path: Path) -> int:
    try:
        return int(load_torch(path)["epoch"])
    except Exception:  # noqa: BLE001 - not there yet
        return 0


def _same_weights(a: Path, b: Path) -> bool:
    left, right = load_torch(a)["state_dict"], load_torch(b)["state_dict"]
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


# ------------------------------------------------------------------ atomic writes


def _wait_child(pid: int, timeout: float = 60) -> int:
    """The wait status of a forked child; a child still running after ``timeout`` is killed and
    the test fails."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the forked writer hung for {timeout} s")


def _killed_before_rename(write) -> int:
    """Fork a child that runs ``write()`` and is SIGKILLed at its first rename, when the new
    content is complete in the temporary file."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.replace = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
        write()
        os._exit(0)
    return _wait_child(pid)


def _write_figure(target: Path, payload) -> None:
    write_bytes(target, json.dumps(payload).encode())


WRITERS = {"train.json": write_json, "model.pt": save_torch, "report.md": lambda t, p: write_text(t, str(p)),
           "figure.png": _write_figure}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_writer_killed_before_its_rename_leaves_the_old_file(tmp_path, name):
    target = tmp_path / name
    WRITERS[name](target, {"status": "ok", "epochs_run": 3})
    before = target.read_bytes()
    status = _killed_before_rename(lambda: WRITERS[name](target, {"status": "ok", "epochs_run": 4}))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert target.read_bytes() == before


def test_a_prepare_killed_mid_write_is_caught_by_the_hashes(tmp_path, prepared_digits):
    """A prepare killed after replacing ``inputs.pt`` but before ``dataset.json``: every file is
    whole, and the mix of new and old files is refused by the sha256 check."""
    import shutil

    from lowspike.errors import PreparedDataCorrupt
    from lowspike.data.prepared import load_prepared
    from lowspike.data import load_raw

    folder = tmp_path / "digits"
    shutil.copytree(prepared_digits, folder)
    raw = load_raw("digits", validate_params(tiny_params()).data)
    raw.inputs = raw.inputs.flip(0)  # new content (the same content would now give the same bytes)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        real_replace, renames = os.replace, []

        def replace(src, dst):
            if renames:
                os.kill(os.getpid(), signal.SIGKILL)
            renames.append(dst)
            real_replace(src, dst)

        os.replace = replace
        from lowspike.data.prepared import write_prepared

        write_prepared(raw, folder)
        os._exit(0)
    status = _wait_child(pid)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert torch.load(folder / "inputs.pt", weights_only=True).shape == raw.inputs.shape
    with pytest.raises(PreparedDataCorrupt, match=r"inputs\.pt is truncated or altered"):
        load_prepared(folder)


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "train.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"a": ')
            raise RuntimeError("killed")
    assert read_json(target) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.json"]


# ------------------------------------------------------------------ resume restores every state


def _toy(n: int, seed: int, noisy: bool = False):
    """A linearly separable problem; ``noisy``: labels at random, so the validation loss rises
    as the model fits the training set and early stopping fires."""
    from lowspike.data.loading import SplitTensors

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = torch.randint(0, 2, (n,), generator=g) if noisy else (x[:, 0] - x[:, 1] > 0).long()
    return SplitTensors(x, y)


def _toy_loss(model, x, y):
    from lowspike.training import StepOutput

    logits = model(x)
    return StepOutput(torch.nn.functional.cross_entropy(logits, y), logits)


def _toy_model():
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 2))


class _Crash(Exception):
    pass


@pytest.mark.parametrize("crash_after", [1, 2, 3])
def test_a_crash_after_any_epoch_resumes_scheduler_rng_and_early_stopping_exactly(tmp_path, crash_after):
    """SGD with momentum, a step schedule, dropout (global RNG) and early stopping that fires
    mid-run: a run stopped after ``crash_after`` epochs and resumed equals the straight run."""
    from lowspike.config import TrainConfig
    from lowspike.training import fit

    cfg = TrainConfig(optimizer="sgd", lr=0.5, momentum=0.9, batch_size=16, max_epochs=12, patience=3,
                      scheduler="step", step_size=2, gamma=0.5, seed=5)
    train, val = _toy(80, 1), _toy(40, 2, noisy=True)
    straight_model = _toy_model()
    straight = fit(straight_model, _toy_loss, train, val, cfg, progress=False)
    assert straight.epochs_run < cfg.max_epochs  # early stopping fired
    assert crash_after < straight.epochs_run

    def crash(record):  # after the checkpoint of epoch crash_after is written
        if record["epoch"] == crash_after:
            raise _Crash

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(_Crash):
        fit(_toy_model(), _toy_loss, train, val, cfg, checkpoint_path=ckpt, fingerprint="f", on_epoch=crash,
            progress=False)
    assert load_torch(ckpt)["epoch"] == crash_after
    torch.manual_seed(12345)  # a fresh process: the global RNG is not where the crash left it
    resumed_model = _toy_model()
    resumed = fit(resumed_model, _toy_loss, train, val, cfg, checkpoint_path=ckpt, fingerprint="f",
                  progress=False)
    assert resumed.history == straight.history
    assert (resumed.best_epoch, resumed.epochs_run, resumed.status) == (
        straight.best_epoch, straight.epochs_run, straight.status)
    for a, b in zip(straight_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_run_killed_after_its_last_checkpoint_finishes_without_training_again(tmp_path):
    """Killed between the last epoch's checkpoint and the stage's outputs: the re-run restores the
    best weights and the same history without another optimizer step."""
    from lowspike.config import TrainConfig
    from lowspike.training import fit

    cfg = TrainConfig(lr=1.0e-2, batch_size=16, max_epochs=4, patience=4, seed=1)
    ckpt = tmp_path / "ckpt.pt"
    first_model = _toy_model()
    first = fit(first_model, _toy_loss, _toy(64, 1), _toy(32, 2), cfg, checkpoint_path=ckpt, fingerprint="f",
                progress=False)
    steps = []
    again_model = torch.nn.Sequential(*_toy_model())
    again_model.register_forward_hook(lambda module, args, out: steps.append(module.training))
    again = fit(again_model, _toy_loss, _toy(64, 1), _toy(32, 2), cfg, checkpoint_path=ckpt, fingerprint="f",
                progress=False)
    assert (again.history, again.best_epoch, again.epochs_run) == (first.history, first.best_epoch, 4)
    assert steps == []
    for a, b in zip(first_model.state_dict().values(), again_model.state_dict().values()):
        assert torch.equal(a, b)


def test_an_unreadable_checkpoint_is_ignored_with_one_warning(tmp_path, capsys):
    from lowspike.config import TrainConfig
    from lowspike.training import fit

    cfg = TrainConfig(lr=1.0e-2, batch_size=16, max_epochs=3, patience=3, seed=1)
    straight_model = _toy_model()
    straight = fit(straight_model, _toy_loss, _toy(64, 1), _toy(32, 2), cfg, progress=False)
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"PK\x03\x04 torn")
    model = _toy_model()
    result = fit(model, _toy_loss, _toy(64, 1), _toy(32, 2), cfg, checkpoint_path=ckpt, fingerprint="f",
                 progress=False)
    assert capsys.readouterr().err.splitlines() == [
        f"warning: ignoring unreadable checkpoint {ckpt} (RuntimeError); training from scratch"]
    assert result.history == straight.history
    for a, b in zip(straight_model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    assert load_torch(ckpt)["epoch"] == 3  # replaced by a readable one


# ------------------------------------------------------------------ a killed stage resumes


def _reference_summary(workdir: Path) -> dict:
    """The uninterrupted run, in-process in a sibling folder (same code, one thread)."""
    params = validate_params(tiny_params({"regularization": {"train": LONG_TRAIN}}))
    here = Path.cwd()
    reference = workdir / "reference"
    (reference / "data" / "prepared").mkdir(parents=True)
    (reference / "data" / "prepared" / "digits").symlink_to(workdir / "data" / "prepared" / "digits")
    os.chdir(reference)
    try:
        return conversion_train.train_point(params, conversion_points.Point("digits", "mlp", "none", 0.0))
    finally:
        os.chdir(here)


def test_sigkilled_training_stage_resumes_to_the_uninterrupted_result(workdir):
    write_params(workdir / "params.yaml", tiny_params({"regularization": {"train": LONG_TRAIN}}))
    env = stage_env(workdir)
    victim = subprocess.Popen(stage_command(*TRAIN_BASELINE), cwd=workdir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: _checkpoint_epoch(workdir / CHECKPOINT) >= 2 or victim.poll() is not None, 90)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait(30)
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read().decode()
    assert not (workdir / BASELINE / "train.json").exists()

    saved = load_torch(workdir / CHECKPOINT)
    stopped_at = saved["epoch"]
    assert 2 <= stopped_at < LONG_TRAIN["max_epochs"]
    saved["history"][0]["resumed"] = True  # a marker only a resumed run can carry into train.json
    save_torch(workdir / CHECKPOINT, saved)

    result = run_stage(workdir, *TRAIN_BASELINE, env=env)
    assert result.returncode == 0, result.stderr
    resumed = read_json(workdir / BASELINE / "train.json")
    assert resumed["history"][0].pop("resumed") is True
    assert not (workdir / CHECKPOINT).exists()

    reference = _reference_summary(workdir)
    assert without_timings(resumed) == json.loads(json.dumps(without_timings(reference)))
    assert resumed["epochs_run"] == LONG_TRAIN["max_epochs"]
    assert _same_weights(workdir / BASELINE / "model.pt", workdir / "reference" / BASELINE / "model.pt")


# ------------------------------------------------------------------ the whole pipeline, dvc repro


def _stage_process(parent: psutil.Process, script: str) -> psutil.Process | None:
    """The Python process running ``script`` under ``parent``: the process whose arguments name the
    script itself, not a ``/bin/sh -c "python stages/..."`` wrapper (a shell that does not exec its
    last command stays between DVC and the stage)."""
    try:
        for child in parent.children(recursive=True):
            if any(part.endswith(script) for part in child.cmdline()):
                return child
    except psutil.Error:
        return None
    return None


def test_dvc_repro_after_sigkilled_stages_gives_the_uninterrupted_results(tmp_path):
    """First the training stage alone is SIGKILLed, then, after it resumed, ``dvc repro`` and the
    stage together (a killed session: DVC's locks are left behind); a third ``dvc repro`` finishes
    and every result equals the uninterrupted pipeline's."""
    overrides = {"regularization": {"train": LONG_TRAIN}}
    straight = make_tiny_repo(tmp_path / "straight", overrides)
    done = dvc(straight, "repro", "aggregate_conversion")
    assert done.returncode == 0, done.stdout + done.stderr

    repo = make_tiny_repo(tmp_path / "killed", overrides)
    command = [sys.executable, "-m", "dvc", "repro", "aggregate_conversion"]
    run = subprocess.Popen(command, cwd=repo, env=stage_env(repo), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for(lambda: _checkpoint_epoch(repo / CHECKPOINT) >= 2 or run.poll() is not None, 300, 0.05)
        stage = _stage_process(psutil.Process(run.pid), "train_dnn.py")
        assert stage is not None and "baseline" in stage.cmdline(), "the baseline stage was not running"
        stage.send_signal(signal.SIGKILL)
        output = run.communicate(timeout=120)[0]
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0, output
    assert "failed to reproduce 'train_dnn_baseline@digits-mlp'" in output
    first_stop = _checkpoint_epoch(repo / CHECKPOINT)

    session = subprocess.Popen(command, cwd=repo, env=stage_env(repo), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert _wait_for(lambda: _checkpoint_epoch(repo / CHECKPOINT) > first_stop or session.poll() is not None,
                         300, 0.05)
        os.killpg(session.pid, signal.SIGKILL)
    finally:
        session.wait(60)
    assert session.returncode == -signal.SIGKILL
    assert first_stop < _checkpoint_epoch(repo / CHECKPOINT) < LONG_TRAIN["max_epochs"]

    again = dvc(repo, "repro", "aggregate_conversion")
    assert again.returncode == 0, again.stdout + again.stderr
    for path in ["results/conversion/results.json", "results/conversion/metrics/digits-mlp-baseline.json",
                 "runs/dnn/digits/mlp/l1-0.001/train.json", BASELINE / "train.json"]:
        assert without_timings(read_json(repo / path)) == without_timings(read_json(straight / path)), path
    assert _same_weights(repo / BASELINE / "model.pt", straight / BASELINE / "model.pt")
    status = dvc(repo, "status", "aggregate_conversion")
    assert "up to date" in status.stdout, status.stdout


# ------------------------------------------------------------------ Ctrl-C


def _runs_by_status(workdir: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lowspike-regularization")
    return sorted(client.search_runs([experiment.experiment_id]), key=lambda r: r.info.start_time)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_prints_one_line_exits_130_and_the_next_run_resumes_and_links_its_mlflow_run(workdir, stop):
    """SIGTERM (``kill``, a scheduler) takes the same path as Ctrl-C (``runtime.Terminated``)."""
    write_params(workdir / "params.yaml",
                 tiny_params({"regularization": {"train": LONG_TRAIN}, "tracking": {"enabled": True}}))
    env = stage_env(workdir)
    env["PYTHONFAULTHANDLER"] = "1"  # a stage that hangs shows where, on the SIGABRT below
    # Ctrl-C reaches the stage as a terminal would deliver it, also where this test runs with
    # SIGINT ignored (a background job of a shell without job control passes SIG_IGN on)
    victim = subprocess.Popen(stage_command(*TRAIN_BASELINE), cwd=workdir, env=env, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert _wait_for(lambda: _checkpoint_epoch(workdir / CHECKPOINT) >= 2 or victim.poll() is not None, 90)
        assert victim.poll() is None, "the training ended before it could be interrupted"
        victim.send_signal(stop)
        try:
            _, stderr = victim.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            victim.send_signal(signal.SIGABRT)
            _, stderr = victim.communicate(timeout=30)
            raise AssertionError("the interrupted stage did not end; its threads: " + stderr[-8000:])
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    [line] = lines
    epoch = _checkpoint_epoch(workdir / CHECKPOINT)
    assert line == (f"[train_dnn] interrupted after epoch {epoch} of {LONG_TRAIN['max_epochs']} (mlp baseline): "
                    f"checkpoint kept in {CHECKPOINT}; `dvc repro` resumes from epoch {epoch + 1}")
    [killed] = _runs_by_status(workdir)
    assert killed.info.status == "KILLED"
    assert killed.data.tags["lowspike.interrupted_after_epoch"] == str(epoch)

    result = run_stage(workdir, *TRAIN_BASELINE, env=env)
    assert result.returncode == 0, result.stderr
    assert f"resuming mlp baseline from its checkpoint after epoch {epoch} ({CHECKPOINT})" in result.stderr
    first, resumed = _runs_by_status(workdir)
    assert (first.info.run_id, resumed.info.status) == (killed.info.run_id, "FINISHED")
    assert resumed.data.tags["lowspike.resumed_from_run"] == killed.info.run_id
    assert resumed.data.tags["lowspike.resumed_from_epoch"] == str(epoch)
    assert first.data.tags["lowspike.continued_by_run"] == resumed.info.run_id
    assert (first.data.tags["lowspike.current"], resumed.data.tags["lowspike.current"]) == ("false", "true")
    assert read_json(workdir / BASELINE / "train.json")["epochs_run"] == LONG_TRAIN["max_epochs"]
