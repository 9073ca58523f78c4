"""CIFAR-10 from its official python pickle batches under ``<data.root>/cifar-10-batches-py/``.

``data_batch_1`` .. ``data_batch_5`` (50,000 training images) and ``test_batch`` (10,000), each a
pickle with ``data`` (uint8 ``[N, 3072]``, channel-major) and ``labels``; class names from
``batches.meta``. ``data.cifar10.val_size`` training images are held out for validation
(stratified, ``data.seed``). The batches are read directly (torchvision's loader insists on
the official md5 sums); ``data.download: true`` uses torchvision to fetch them.

A pickle can run any code it names, so the batches are read by :class:`BatchUnpickler`, which
builds dicts, lists, strings, bytes, numbers and numpy arrays and refuses everything else; a
batch whose rows are not 3,072 bytes, whose labels do not match its rows, or that is truncated is
reported by name (:class:`~lowspike.errors.DataFileError`).

Training augmentation (:func:`augment_images`): random crop 32 with zero padding 4 and
horizontal flip with probability 1/2, never applied at evaluation.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..artifacts import sha256_file
from ..errors import DataFileError, DatasetMissing
from .base import RawDataset, stratified_split

if TYPE_CHECKING:
    from ..config import DataConfig

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CROP_PADDING = 4


IMAGE_BYTES = 3 * 32 * 32
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}
"""What a CIFAR-10 batch's pickle may name: numpy's array and dtype reconstruction, nothing else
(dicts, lists, strings, bytes and numbers need no global)."""


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global :class:`BatchUnpickler` does not build."""


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, tuples, strings, bytes, numbers and numpy
    arrays: any other global a pickle names (a function to call, a class to build) is refused
    before it is imported, so a crafted batch file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedGlobal(f"refused {module}.{name}: a CIFAR-10 batch holds only dicts, lists, "
                                         "strings, bytes and numpy arrays")
        return super().find_class(module, name)


def _text_keys(mapping: dict) -> dict:
    """The official batches were pickled by Python 2 (str keys read back as str with latin1);
    re-pickled copies may carry bytes keys. Accept both."""
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in mapping.items()}


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            loaded = BatchUnpickler(handle, encoding="latin1").load()
    except RefusedGlobal as exc:
        raise DataFileError(f"{path}: not a CIFAR-10 batch ({exc})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, struct.error) as exc:
        raise DataFileError(f"{path}: truncated or damaged pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(loaded, dict):
        raise DataFileError(f"{path}: not a CIFAR-10 batch (a {type(loaded).__name__}, not a dict)")
    return _text_keys(loaded)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 3, 32, 32]`` and labels ``[N]`` of one batch file, checked."""
    batch = _unpickle(path)
    if "data" not in batch or ("labels" not in batch and "fine_labels" not in batch):
        raise DataFileError(f"{path}: not a CIFAR-10 batch (keys {sorted(batch)}, expected data and labels)")
    data = np.asarray(batch["data"])
    if data.ndim != 2 or data.shape[1] != IMAGE_BYTES or data.dtype != np.uint8:
        raise DataFileError(f"{path}: data of shape {data.shape} and type {data.dtype}, a CIFAR-10 batch holds "
                            f"uint8 rows of {IMAGE_BYTES:,} bytes (3 x 32 x 32)")
    labels = np.asarray(batch.get("labels", batch.get("fine_labels")))
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFileError(f"{path}: {labels.size} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataFileError(f"{path}: labels outside the classes 0-9 (from {labels.min()} to {labels.max()})")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


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
    meta = _unpickle(folder / "batches.meta")
    if not isinstance(meta.get("label_names"), list) or len(meta["label_names"]) != 10:
        raise DataFileError(f"{folder / 'batches.meta'}: expected the 10 class names under label_names")
    names = meta["label_names"]
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
