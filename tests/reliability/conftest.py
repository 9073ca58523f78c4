"""A tiny pipeline for the reliability tests: scikit-learn's 8x8 digits, the MLP only, one
regularizer at one lambda, a few epochs, T = 10; the distillation study reduced to a 1-D
SRes-8 student (digits' 8x8 maps read as 8 features x 8 frames) without KD grids.

``workdir`` is a folder holding ``params.yaml`` and ``data/prepared/digits`` for library calls
and single-stage subprocesses; ``tiny_repo`` is a git + DVC repository holding copies of the
project's ``dvc.yaml``, ``stages/`` and ``src/lowspike`` (the stages' dependencies) for
``dvc repro`` and ``dvc exp run``.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from lowspike.config import _ParamsLoader

from lowspike.dvcyaml import render
from lowspike.params import validate_params
from lowspike.data import load_raw
from lowspike.data.prepared import write_prepared

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

TINY_TRAIN = {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 64, "max_epochs": 4, "patience": 4, "seed": 0}
TINY_STUDENT_TRAIN = {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 256, "max_epochs": 2, "patience": 2,
                      "seed": 0}
EMPTY_GRIDS = {"mse": {"alphas": []}, "soft_targets": {"taus": []}, "heterogeneous": {"tau_s": [], "tau_t": []},
               "activation": {"l1": [], "l2": []}, "logits": {"l2": [], "l2sq": []},
               "combined": {"tau_s": [], "tau_t": [], "norms": [], "lambdas": []},
               "feature": {"weights": []}, "feature_act": {"weights": [], "norms": [], "lambdas": []}}
"""Every method of the digits grids written, each with nothing to run (the tiny repo's dvc.yaml
has a family for each, so a test can fill one in)."""
TINY = {
    "data": {"datasets": ["digits"]},
    "regularization": {"datasets": ["digits"], "archs": ["mlp"], "points": {"mlp": ["l1-0.001"], "lenet5": []},
                       "train": TINY_TRAIN, "baseline_extra_seeds": []},
    "simulation": {"timesteps": 10, "batch_size": 500},
    "distillation": {
        "datasets": ["digits"], "seeds": [0], "baseline_seeds": [0],
        "setups": {"digits": {"student": "sres8", "teacher": "resnet15", "neuron": "lif", "beta": 0.5,
                              "timesteps": 2, "student_width": 0.25, "teacher_width": 0.25,
                              "student_train": TINY_STUDENT_TRAIN, "teacher_train": TINY_STUDENT_TRAIN}},
        "grids": {"digits": EMPTY_GRIDS},
    },
    "tracking": {"enabled": False},
}


def merge(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in, section by section (``setups`` and ``grids`` are
    replaced whole)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("setups", "grids"):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def repo_params() -> dict:
    return yaml.load((REPO / "params.yaml").read_text(), Loader=_ParamsLoader)  # YAML 1.2, as DVC reads it


def tiny_params(overrides: dict | None = None) -> dict:
    """The repository's params.yaml (every key DVC asks for) with the tiny settings and ``overrides``."""
    return merge(merge(repo_params(), TINY), overrides or {})


class _QuotingDumper(yaml.SafeDumper):
    """Every string single-quoted, so YAML 1.1 and 1.2 readers (PyYAML, DVC's ruamel) agree that
    ``'yes'`` and ``'1e-4'`` are strings."""


_QuotingDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'"))


def dump_params(raw: Any) -> str:
    return yaml.dump(raw, Dumper=_QuotingDumper, sort_keys=False)


def write_params(path: Path, raw: dict) -> Path:
    path.write_text(dump_params(raw))
    return path


def stage_env(root: Path) -> dict[str, str]:
    """Environment of a stage subprocess: the venv first in PATH, tools offline, one torch thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "LOWSPIKE_THREADS": "1",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    })
    return env


def stage_command(script: str, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "stages" / script), *args]


def run_stage(cwd: Path, script: str, *args: str, env: dict | None = None, timeout: float = 120
              ) -> subprocess.CompletedProcess:
    """Run ``stages/<script>`` in ``cwd`` as DVC would."""
    return subprocess.run(stage_command(script, *args), cwd=cwd, env=env or stage_env(cwd),
                          capture_output=True, text=True, timeout=timeout)


TRAIN_BASELINE = ("train_dnn.py", "--dataset", "digits", "--arch", "mlp", "--point", "baseline")


def without_timings(summary: dict) -> dict:
    """A training summary without what differs between an interrupted and a straight run (its
    wall-clock time, the epoch it resumed from): what train.json holds."""
    return {k: v for k, v in summary.items() if k not in ("train_seconds", "resumed_from_epoch")}


@pytest.fixture(scope="session")
def prepared_digits(tmp_path_factory) -> Path:
    """``data/prepared/digits`` written once per session by the real prepare code."""
    root = tmp_path_factory.mktemp("prepared")
    params = validate_params(tiny_params())
    write_prepared(load_raw("digits", params.data), root / "digits")
    return root / "digits"


@pytest.fixture
def workdir(tmp_path, monkeypatch, prepared_digits) -> Path:
    """A folder with the tiny params.yaml and the prepared digits, made the current directory
    (the studies resolve ``runs/``, ``data/prepared`` and ``.cache/checkpoints`` from it)."""
    shutil.copytree(prepared_digits, tmp_path / "data" / "prepared" / "digits")
    write_params(tmp_path / "params.yaml", tiny_params())
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    return tmp_path


def _git(cwd: Path, env: dict, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


def make_tiny_repo(root: Path, overrides: dict | None = None, commit: bool = False) -> Path:
    """A git + DVC repository with the project's pipeline and the tiny params."""
    root.mkdir(parents=True, exist_ok=True)
    env = stage_env(root)
    shutil.copytree(REPO / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "src" / "lowspike", root / "src" / "lowspike",
                    ignore=shutil.ignore_patterns("__pycache__"))
    write_params(root / "params.yaml", tiny_params(overrides))
    (root / "dvc.yaml").write_text(render(root / "src", root / "params.yaml"))  # its families follow its params
    (root / ".gitignore").write_text("/.cache/\n/mlflow.db\n/mlartifacts/\n__pycache__/\n")
    _git(root, env, "init", "-q")
    subprocess.run([str(VENV_BIN / "dvc"), "init", "-q"], cwd=root, env=env, check=True, capture_output=True,
                   timeout=120)
    if commit:
        _git(root, env, "add", "-A")
        _git(root, env, "commit", "-q", "-m", "tiny pipeline")
    return root


def dvc(root: Path, *args: str, env: dict | None = None, timeout: float = 600, **kwargs: Any
        ) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=root, env=env or stage_env(root),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def tiny_repo(tmp_path) -> Path:
    return make_tiny_repo(tmp_path / "repo")


@pytest.fixture
def stage_main(monkeypatch):
    """Run ``stages/<script>`` in this process as ``python stages/<script> args...`` would, and
    return its exit code (no interpreter start-up; the stage's process-wide settings are undone)."""
    import runpy

    monkeypatch.setenv("LOWSPIKE_THREADS", "1")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()

    def run(script: str, *args: str) -> int:
        monkeypatch.setattr(sys, "argv", [script, *args])
        try:
            runpy.run_path(str(REPO / "stages" / script), run_name="__main__")
        except SystemExit as exc:
            return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        return 0

    yield run
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
