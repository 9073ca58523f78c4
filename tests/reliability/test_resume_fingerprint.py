"""A resume checkpoint is used only by the run that wrote it: the same params keys (every key the
stage reads), the same prepared data and the same code (the files of the training's import
closure). A code change between an interruption and the re-run starts the training afresh, with
one line naming the changed file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, tiny_params, write_params

pytestmark = pytest.mark.integration

TRAIN = """
import json, sys
from lowspike.params import read_params
from lowspike.studies.conversion_points import Point
from lowspike.studies.conversion_train import train_point

stop_after = int(sys.argv[1])

def stop(record):
    if stop_after and record["epoch"] == stop_after:
        raise KeyboardInterrupt

try:
    summary = train_point(read_params("params.yaml"), Point("digits", "mlp", "none", 0.0), on_epoch=stop)
except KeyboardInterrupt as exc:
    print(json.dumps({"interrupted_after": exc.epoch}))
else:
    print(json.dumps({"resumed_from": summary["resumed_from_epoch"], "epochs": summary["epochs_run"]}))
"""


def _train(workdir: Path, src: Path, stop_after: int = 0) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", TRAIN, str(stop_after)], cwd=workdir, capture_output=True, text=True,
                          env={"PYTHONPATH": str(src), "LOWSPIKE_THREADS": "1", "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture
def scratch(tmp_path, prepared_digits) -> tuple[Path, Path]:
    """A workdir with the tiny params (6 epochs) and the prepared digits, and a copy of the code."""
    workdir = tmp_path / "work"
    shutil.copytree(prepared_digits, workdir / "data" / "prepared" / "digits")
    train = {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 64, "max_epochs": 6, "patience": 6, "seed": 0}
    write_params(workdir / "params.yaml", tiny_params({"regularization": {"train": train}}))
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "lowspike", src / "lowspike", ignore=shutil.ignore_patterns("__pycache__"))
    return workdir, src


def test_the_same_code_resumes_and_changed_code_starts_afresh_saying_which_file(scratch):
    workdir, src = scratch
    assert _train(workdir, src, stop_after=2)[0] == {"interrupted_after": 2}
    (result, stderr) = _train(workdir, src, stop_after=4)
    assert result == {"interrupted_after": 4} and "resuming mlp baseline from its checkpoint after epoch 2" in stderr

    penalties = src / "lowspike" / "penalties.py"
    penalties.write_text(penalties.read_text() + "\n# an edit between the interruption and the re-run\n")
    result, stderr = _train(workdir, src)
    assert result == {"resumed_from": 0, "epochs": 6}
    [line] = [line for line in stderr.splitlines() if "not resuming" in line]
    assert line == ("warning: not resuming mlp baseline from .cache/checkpoints/dnn__digits__mlp__baseline.pt: the "
                    "code of lowspike/penalties.py changed since it was written; training from scratch")


def test_a_params_key_the_stage_reads_starts_afresh_too(scratch):
    workdir, src = scratch
    assert _train(workdir, src, stop_after=2)[0] == {"interrupted_after": 2}
    params = tiny_params({"regularization": {"train": {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 64,
                                                       "max_epochs": 6, "patience": 6, "seed": 0}},
                          "data": {"mfcc": {"n_mfcc": 12}}})
    write_params(workdir / "params.yaml", params)
    result, stderr = _train(workdir, src)
    assert result == {"resumed_from": 0, "epochs": 6}
    assert "its params (data.mfcc) changed since it was written" in stderr
