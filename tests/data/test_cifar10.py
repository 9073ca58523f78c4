"""CIFAR-10 from official python pickle batches written by the test; the training augmentation."""

import numpy as np
import pytest
import torch

from lowspike.params import validate_params
from lowspike.errors import DatasetMissing
from lowspike.data import load_raw
from lowspike.data.cifar10 import augment_images

from .conftest import write_cifar_batch, write_cifar_meta


def _write(root, per_batch=4):
    folder = root / "cifar-10-batches-py"
    rng = np.random.default_rng(0)
    images = []
    for i in range(1, 6):
        batch = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(i * per_batch + j) % 10 for j in range(per_batch)]
        write_cifar_batch(folder / f"data_batch_{i}", batch, labels)
        images.append(batch)
    test = rng.integers(0, 256, (10, 3072), dtype=np.uint8)
    write_cifar_batch(folder / "test_batch", test, list(range(10)))
    write_cifar_meta(folder / "batches.meta")
    return np.concatenate(images), test


def test_reads_the_pickle_batches_channel_major(tmp_path):
    train, test = _write(tmp_path)
    params = validate_params({"data": {"root": str(tmp_path), "cifar10": {"val_size": 10}}})
    data = load_raw("cifar10", params.data)
    assert data.inputs.shape == (30, 3, 32, 32) and data.inputs.dtype == torch.uint8
    # row r of a batch holds 1024 red, then 1024 green, then 1024 blue values
    assert data.inputs[0, 1, 0, 0] == train[0, 1024] and data.inputs[0, 2, 31, 31] == train[0, 3071]
    assert torch.equal(data.inputs[20:].reshape(10, -1), torch.from_numpy(test))
    assert data.classes[0] == "airplane" and data.classes[9] == "truck"
    assert data.splits["test"].tolist() == list(range(20, 30))
    assert len(data.splits["train"]) == 10 and len(data.splits["val"]) == 10


def test_missing_batches_are_named(tmp_path):
    params = validate_params({"data": {"root": str(tmp_path)}})
    with pytest.raises(DatasetMissing, match=r"cifar-10-batches-py.*data_batch_1.*download: true"):
        load_raw("cifar10", params.data)


def _reference_augment(image, dy, dx, flip):
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    crop = padded[:, dy:dy + 32, dx:dx + 32]
    return crop.flip(-1) if flip else crop


def test_crop_and_flip_match_a_per_sample_reference():
    images = torch.rand(64, 3, 32, 32)
    generator = torch.Generator().manual_seed(3)
    out = augment_images(images, generator)
    replay = torch.Generator().manual_seed(3)
    dy = torch.randint(0, 9, (64,), generator=replay)
    dx = torch.randint(0, 9, (64,), generator=replay)
    flip = torch.rand(64, generator=replay) < 0.5
    for b in range(64):
        assert torch.equal(out[b], _reference_augment(images[b], int(dy[b]), int(dx[b]), bool(flip[b])))
    assert 0 < int(flip.sum()) < 64 and len(set(dy.tolist())) > 1


def test_augmentation_only_in_training(tmp_path):
    from lowspike.data.prepared import load_prepared, write_prepared
    from lowspike.data.loading import load_split

    _write(tmp_path)
    params = validate_params({"data": {"root": str(tmp_path), "cifar10": {"val_size": 10}}})
    write_prepared(load_raw("cifar10", params.data), tmp_path / "prepared")
    prepared = load_prepared(tmp_path / "prepared")
    assert load_split(prepared, "train", params.data, train=True).augment is augment_images
    assert load_split(prepared, "test", params.data).augment is None
