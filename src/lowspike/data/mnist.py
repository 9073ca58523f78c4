"""Real MNIST, read by torchvision from its official IDX files under ``<data.root>/MNIST/raw/``.

60,000 training and 10,000 test digits; ``data.mnist.val_size`` training images (5,000 by
default, as the regularization paper) are held out for validation, stratified and chosen with
``data.seed``. ``data.download: true`` lets torchvision fetch the files (needs internet).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..artifacts import sha256_file
from ..config import DataConfig
from .base import DatasetMissing, RawDataset, stratified_split

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _gunzip_official_files(raw: Path) -> None:
    """The official distribution is gzipped; torchvision reads the plain files."""
    import gzip
    import shutil

    from ..artifacts import atomic_path

    for name in RAW_FILES:
        packed = raw / f"{name}.gz"
        if not (raw / name).exists() and packed.exists():
            with gzip.open(packed, "rb") as source, atomic_path(raw / name) as target:
                with open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)


def load(cfg: DataConfig) -> RawDataset:
    from torchvision.datasets import MNIST

    raw = Path(cfg.root) / "MNIST" / "raw"
    _gunzip_official_files(raw)
    try:
        train = MNIST(cfg.root, train=True, download=cfg.download)
        test = MNIST(cfg.root, train=False, download=cfg.download)
    except RuntimeError as exc:
        raise DatasetMissing(
            f"mnist: {raw} has no MNIST IDX files ({exc}); expected {', '.join(RAW_FILES)} there "
            "(gzipped or not); set data.download: true on a machine with internet to fetch them"
        ) from None
    images = torch.cat([train.data, test.data]).unsqueeze(1).to(torch.uint8)
    labels = torch.cat([train.targets, test.targets]).long()
    n_train = train.data.shape[0]
    inner = stratified_split(train.targets.numpy(), {"train": n_train - cfg.mnist.val_size,
                                                     "val": cfg.mnist.val_size}, cfg.seed)
    splits = {**inner, "test": torch.arange(n_train, labels.shape[0])}
    sources = {name: sha256_file(raw / name) for name in RAW_FILES if (raw / name).exists()}
    return RawDataset(
        name="mnist", kind="image", inputs=images, labels=labels, splits=splits,
        classes=[str(d) for d in range(10)], sources=sources,
        preprocessing={"val_size": cfg.mnist.val_size, "seed": cfg.seed, "scale": "uint8 0-255"},
    )
