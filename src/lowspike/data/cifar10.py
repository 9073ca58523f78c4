"""CIFAR-10 from its official python pickle batches under ``<data.root>/cifar-10-batches-py/``.

``data_batch_1`` .. ``data_batch_5`` (50,000 training images) and ``test_batch`` (10,000), each a
pickle with ``data`` (uint8 ``[N, 3072]``, channel-major) and ``labels``; class names from
``batches.meta``. ``data.cifar10.val_size`` training images are held out for validation
(stratified, ``data.seed``). The batches are read directly (torchvision's loader insists on
the official md5 sums); ``data.download: true`` uses torchvision to fetch them.

Training augmentation (:func:`augment_images`): random crop 32 with zero padding 4 and
horizontal flip with probability 1/2, never applied at evaluation.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..artifacts import sha256_file
from ..config import DataConfig
from .base import DatasetMissing, RawDataset, stratified_split

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CROP_PADDING = 4


def _text_keys(mapping: dict) -> dict:
    """The official batches were pickled by Python 2 (str keys read back as str with latin1);
    re-pickled copies may carry bytes keys. Accept both."""
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in mapping.items()}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as handle:
        batch = _text_keys(pickle.load(handle, encoding="latin1"))
    images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
    return images, labels


def load(cfg: DataConfig) -> RawDataset:
    folder = Path(cfg.root) / FOLDER
    if cfg.download and not folder.exists():
        from torchvision.datasets import CIFAR10

        CIFAR10(cfg.root, train=True, download=True)
    needed = (*TRAIN_BATCHES, TEST_BATCH, "batches.meta")
    missing = [name for name in needed if not (folder / name).exists()]
    if missing:
        raise DatasetMissing(
            f"cifar10: {folder} lacks {missing}; expected the official python version "
            f"({', '.join(needed)}); set data.download: true on a machine with internet to fetch it"
        )
    parts = [_read_batch(folder / name) for name in (*TRAIN_BATCHES, TEST_BATCH)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    n_train = sum(p[0].shape[0] for p in parts[:-1])
    with open(folder / "batches.meta", "rb") as handle:
        names = _text_keys(pickle.load(handle, encoding="latin1"))["label_names"]
    classes = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
    inner = stratified_split(labels[:n_train], {"train": n_train - cfg.cifar10.val_size,
                                                "val": cfg.cifar10.val_size}, cfg.seed)
    splits = {**inner, "test": torch.arange(n_train, labels.shape[0])}
    return RawDataset(
        name="cifar10", kind="image", inputs=torch.from_numpy(images), labels=torch.from_numpy(labels),
        splits=splits, classes=classes, sources={name: sha256_file(folder / name) for name in needed},
        preprocessing={"val_size": cfg.cifar10.val_size, "seed": cfg.seed, "scale": "uint8 0-255",
                       "train_augmentation": f"random crop 32, zero padding {CROP_PADDING}, horizontal flip p=0.5"},
    )


def augment_images(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random 32x32 crop of the zero-padded (4 px) batch and horizontal flip with p = 1/2, per
    sample, without a Python loop over samples."""
    batch, channels, height, width = images.shape
    pad = CROP_PADDING
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (batch,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (batch,), generator=generator).to(images.device)
    flip = (torch.rand(batch, generator=generator) < 0.5).to(images.device)
    rows = (dy[:, None] + torch.arange(height, device=images.device)[None, :])  # [B, H]
    cols = torch.arange(width, device=images.device)[None, :].expand(batch, width)
    cols = torch.where(flip[:, None], width - 1 - cols, cols) + dx[:, None]  # [B, W]
    index_rows = rows[:, None, :, None].expand(batch, channels, height, padded.shape[3])
    cropped_rows = padded.gather(2, index_rows)
    index_cols = cols[:, None, None, :].expand(batch, channels, height, width)
    return cropped_rows.gather(3, index_cols)
