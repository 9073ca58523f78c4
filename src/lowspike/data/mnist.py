"""Real MNIST from its official IDX files under ``<data.root>/MNIST/raw/`` (gzipped or not).

60,000 training and 10,000 test digits; ``data.mnist.val_size`` training images (5,000 by
default, as the regularization paper) are held out for validation, stratified and chosen with
``data.seed``. ``data.download: true`` lets torchvision fetch the files (needs internet).

The IDX files are read here, not by torchvision, so that a damaged file is reported by name
(:class:`~lowspike.errors.DataFileError`): an IDX file is a 4-byte magic number (two zero bytes,
the type code 0x08 for unsigned bytes, the number of dimensions), one big-endian 32-bit size per
dimension, then the data; a gzipped file carries a CRC-32 that is checked.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..artifacts import sha256_file
from ..errors import DataFileError, DatasetMissing
from .base import RawDataset, stratified_split

if TYPE_CHECKING:
    from ..config import DataConfig

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
UNSIGNED_BYTE = 0x08


def _file_bytes(raw: Path, name: str) -> tuple[Path, bytes]:
    """The bytes of ``name`` (the plain file, else its ``.gz``), and the path read."""
    plain, packed = raw / name, raw / f"{name}.gz"
    if plain.exists():
        return plain, plain.read_bytes()
    try:
        return packed, gzip.decompress(packed.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"{packed}: damaged gzip file ({exc})") from None


def read_idx(path: Path, data: bytes) -> np.ndarray:
    """The array of an IDX file of unsigned bytes; :class:`DataFileError` naming the file when the
    header is not IDX's or the data is shorter or longer than the header's sizes say."""
    if len(data) < 4:
        raise DataFileError(f"{path} is truncated: {len(data)} bytes, not even the 4-byte IDX header")
    zeros, code, ndim = struct.unpack(">HBB", data[:4])
    if zeros != 0 or code != UNSIGNED_BYTE or ndim == 0:
        raise DataFileError(f"{path} is not an IDX file of unsigned bytes (magic number {data[:4].hex()}, "
                            f"expected 000008 followed by the number of dimensions)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(f"{path} is truncated: {len(data)} bytes, its header alone needs {header}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(shape)
    if len(data) != expected:
        how = f"{expected - len(data):,} bytes short" if len(data) < expected else f"{len(data) - expected:,} bytes too many"
        raise DataFileError(f"{path} is {'truncated' if len(data) < expected else 'too long'}: its header says "
                            f"{' x '.join(map(str, shape))} values, {expected:,} bytes in all; it has {len(data):,} "
                            f"({how})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _split(raw: Path, prefix: str) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Images ``[N, 28, 28]`` and labels ``[N]`` of one official split, checked against each other."""
    images_path, images_bytes = _file_bytes(raw, f"{prefix}-images-idx3-ubyte")
    labels_path, labels_bytes = _file_bytes(raw, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path, images_bytes), read_idx(labels_path, labels_bytes)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataFileError(f"{images_path}: images of shape {images.shape[1:]}, MNIST's are 28 x 28")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataFileError(f"{labels_path}: {labels.shape} labels for the {images.shape[0]} images of {images_path.name}")
    if labels.size and labels.max() > 9:
        raise DataFileError(f"{labels_path}: label {int(labels.max())} outside the digits 0-9")
    hashes = {path.name: sha256_file(path) for path in (images_path, labels_path)}
    return images, labels, hashes


def load(cfg: DataConfig) -> RawDataset:
    raw = Path(cfg.root) / "MNIST" / "raw"
    missing = [n for n in RAW_FILES if not (raw / n).exists() and not (raw / f"{n}.gz").exists()]
    if missing and cfg.download:
        from torchvision.datasets import MNIST  # only to fetch the files: a heavy import otherwise unused

        MNIST(cfg.root, train=True, download=True)
        missing = [n for n in RAW_FILES if not (raw / n).exists() and not (raw / f"{n}.gz").exists()]
    if missing:
        raise DatasetMissing(
            f"mnist: {raw} lacks {', '.join(missing)}; expected the official IDX files {', '.join(RAW_FILES)} there "
            "(gzipped or not); set data.download: true on a machine with internet to fetch them")
    train_images, train_labels, sources = _split(raw, "train")
    test_images, test_labels, test_sources = _split(raw, "t10k")
    images = torch.from_numpy(np.concatenate([train_images, test_images])).unsqueeze(1)
    labels = torch.from_numpy(np.concatenate([train_labels, test_labels]).astype(np.int64))
    n_train = train_images.shape[0]
    inner = stratified_split(train_labels, {"train": n_train - cfg.mnist.val_size, "val": cfg.mnist.val_size},
                             cfg.seed)
    splits = {**inner, "test": torch.arange(n_train, labels.shape[0])}
    return RawDataset(
        name="mnist", kind="image", inputs=images, labels=labels, splits=splits,
        classes=[str(d) for d in range(10)], sources={**sources, **test_sources},
        preprocessing={"val_size": cfg.mnist.val_size, "seed": cfg.seed, "scale": "uint8 0-255"},
    )
