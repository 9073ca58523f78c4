"""The prepare stage as DVC runs it: a subprocess in a folder holding params.yaml."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from lowspike.config import _ParamsLoader

REPO = Path(__file__).resolve().parents[2]


def run_stage(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / "prepare.py"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def write_params(folder: Path, edit=None) -> None:
    """The repository's params.yaml (a complete file) with ``edit(raw)`` applied."""
    raw = yaml.load((REPO / "params.yaml").read_text(), Loader=_ParamsLoader)  # YAML 1.2, as DVC reads it
    if edit is not None:
        edit(raw)
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))


def test_prepare_digits_writes_tensors_and_metadata(tmp_path):
    write_params(tmp_path)
    result = run_stage(tmp_path, "--dataset", "digits")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "data" / "prepared" / "digits"
    meta = json.loads((folder / "dataset.json").read_text())
    assert sorted(p.name for p in folder.iterdir()) == ["dataset.json", "inputs.pt", "labels.pt", "splits.pt"]
    assert meta["counts"]["train"]["total"] + meta["counts"]["val"]["total"] + meta["counts"]["test"]["total"] == 1797
    assert meta["sample_shape"] == [1, 8, 8]
    assert "prepare@digits" in result.stderr


def test_bad_params_value_is_one_line_exit_2_and_writes_nothing(tmp_path):
    write_params(tmp_path, lambda raw: raw["data"].update(seed=-3))
    result = run_stage(tmp_path, "--dataset", "digits")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: params.yaml: data.seed: got -3: Input should be greater than or equal to 0"]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_an_empty_params_file_is_refused_and_nothing_is_written(tmp_path):
    (tmp_path / "params.yaml").write_text("")
    result = run_stage(tmp_path, "--dataset", "digits")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: params.yaml: <root>: the file is empty: every section must be written "
                           "(profile, data, regularization, conversion, simulation, distillation, tracking, report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_unknown_dataset_name_is_refused(tmp_path):
    write_params(tmp_path)
    result = run_stage(tmp_path, "--dataset", "imagenet")
    assert result.returncode == 2
    assert "--dataset 'imagenet': unknown dataset; allowed: cifar10" in result.stderr
    assert "Traceback" not in result.stderr
