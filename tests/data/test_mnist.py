"""Real MNIST from official IDX files written by the test."""

import numpy as np
import pytest
import torch

from lowspike.params import validate_params
from lowspike.errors import DatasetMissing
from lowspike.data import load_raw

from .conftest import write_idx


@pytest.mark.parametrize("compress", [False, True])
def test_reads_idx_files_and_holds_out_a_stratified_validation_set(tmp_path, compress):
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    train_labels = np.repeat(np.arange(10), 4).astype(np.uint8)
    test_images = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    test_labels = np.arange(10).astype(np.uint8)
    raw = tmp_path / "MNIST" / "raw"
    for name, array in [("train-images-idx3-ubyte", train_images), ("train-labels-idx1-ubyte", train_labels),
                        ("t10k-images-idx3-ubyte", test_images), ("t10k-labels-idx1-ubyte", test_labels)]:
        write_idx(raw / name, array, compress)
    params = validate_params({"data": {"root": str(tmp_path), "mnist": {"val_size": 10}}})
    data = load_raw("mnist", params.data)
    assert data.inputs.shape == (50, 1, 28, 28) and data.inputs.dtype == torch.uint8
    assert torch.equal(data.inputs[:40, 0], torch.from_numpy(train_images))
    assert torch.equal(data.inputs[40:, 0], torch.from_numpy(test_images))
    assert data.labels.tolist() == train_labels.tolist() + test_labels.tolist()
    assert len(data.splits["train"]) == 30 and len(data.splits["val"]) == 10
    assert data.splits["test"].tolist() == list(range(40, 50))
    assert sorted(data.labels[data.splits["val"]].tolist()) == list(range(10))  # one per class
    assert set(data.splits["train"].tolist()) | set(data.splits["val"].tolist()) == set(range(40))


def test_missing_files_name_the_folder_and_how_to_get_them(tmp_path):
    params = validate_params({"data": {"root": str(tmp_path)}})
    with pytest.raises(DatasetMissing, match=r"MNIST/raw.*train-images-idx3-ubyte.*download: true"):
        load_raw("mnist", params.data)
