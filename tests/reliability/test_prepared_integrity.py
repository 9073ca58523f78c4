"""A truncated, altered or missing prepared file is caught by its sha256 in ``dataset.json`` with a
message naming the file; a missing dataset names the path and the expected layout; a stage that
meets either prints that one line (no traceback) and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lowspike.errors import PreparedDataCorrupt
from lowspike.data.prepared import load_prepared

from .conftest import TRAIN_BASELINE, run_stage


@pytest.fixture
def prepared(tmp_path, prepared_digits) -> Path:
    folder = tmp_path / "digits"
    shutil.copytree(prepared_digits, folder)
    return folder


def test_intact_files_load_and_match_their_recorded_hashes(prepared):
    data = load_prepared(prepared)
    assert data.inputs.shape == (1797, 1, 8, 8) and data.inputs.dtype == torch.uint8
    assert sum(int(v.numel()) for v in data.splits.values()) == 1797


def test_a_truncated_tensor_file_is_named(prepared):
    path = prepared / "inputs.pt"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PreparedDataCorrupt) as info:
        load_prepared(prepared)
    assert str(info.value) == (f"{path} is truncated or altered (sha256 differs from dataset.json): "
                               "re-run `dvc repro -f prepare@digits`")


def test_an_altered_but_loadable_tensor_file_is_caught(prepared):
    path = prepared / "labels.pt"
    labels = torch.load(path, weights_only=True)
    labels[0] = (labels[0] + 1) % 10
    torch.save(labels, path)
    with pytest.raises(PreparedDataCorrupt, match=rf"^{path} is truncated or altered"):
        load_prepared(prepared)
    assert torch.equal(load_prepared(prepared, verify=False).labels, labels)  # torch.load alone accepts it


def test_a_missing_tensor_file_is_named(prepared):
    (prepared / "splits.pt").unlink()
    with pytest.raises(PreparedDataCorrupt) as info:
        load_prepared(prepared)
    assert str(info.value) == f"{prepared / 'splits.pt'} is missing: re-run `dvc repro -f prepare@digits`"


@pytest.mark.parametrize("damage", ["truncated", "no-hashes"])
def test_a_damaged_dataset_json_is_named(prepared, damage):
    meta_path = prepared / "dataset.json"
    text = meta_path.read_text()
    if damage == "truncated":
        meta_path.write_text(text[: len(text) // 2])
    else:
        meta = json.loads(text)
        del meta["sha256"]["labels.pt"]
        meta_path.write_text(json.dumps(meta))
    with pytest.raises(PreparedDataCorrupt) as info:
        load_prepared(prepared)
    message = str(info.value)
    assert message.startswith(f"{meta_path} is truncated or altered (")
    assert message.endswith("re-run `dvc repro -f prepare@digits`") and "\n" not in message


def test_a_missing_prepared_dataset_names_the_path_and_layout(tmp_path):
    with pytest.raises(PreparedDataCorrupt) as info:
        load_prepared(tmp_path / "mnist5k")
    assert str(info.value) == (
        f"{tmp_path / 'mnist5k' / 'dataset.json'} not found: expected {tmp_path / 'mnist5k'}/ holding "
        "dataset.json, inputs.pt, labels.pt, splits.pt, written by the prepare stage (`dvc repro prepare@mnist5k`)")


def test_a_stage_reading_a_corrupt_file_prints_one_line_and_writes_nothing(workdir):
    path = workdir / "data" / "prepared" / "digits" / "inputs.pt"
    path.write_bytes(path.read_bytes()[:1000])
    result = run_stage(workdir, *TRAIN_BASELINE)
    assert result.returncode == 2  # bad input, like a bad params value
    assert result.stderr.splitlines() == [
        "error: data/prepared/digits/inputs.pt is truncated or altered (sha256 differs from dataset.json): "
        "re-run `dvc repro -f prepare@digits`"]
    assert not (workdir / "runs").exists()


def test_the_prepare_stage_names_missing_sources(workdir, stage_main, capsys):
    assert stage_main("prepare.py", "--dataset", "cifar10") == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: cifar10: ") and "data/raw/cifar-10-batches-py" in line
    assert "data_batch_1" in line
    assert not (workdir / "data" / "prepared" / "cifar10").exists()


def test_data_errors_escaping_a_stage_are_one_line(capsys):
    """The hook every stage installs (runtime.setup): bad input (data errors included) prints its message only."""
    from lowspike import runtime
    from lowspike.errors import DatasetMissing

    for exc in (PreparedDataCorrupt("data/prepared/x/inputs.pt is missing"), DatasetMissing("mnist: no files")):
        runtime._report_bad_input(type(exc), exc, None)
    assert capsys.readouterr().err.splitlines() == ["error: data/prepared/x/inputs.pt is missing",
                                                    "error: mnist: no files"]
    try:
        raise KeyError("other")
    except KeyError as exc:
        runtime._report_bad_input(KeyError, exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "KeyError: 'other'" in err
