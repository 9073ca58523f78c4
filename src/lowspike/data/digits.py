"""scikit-learn's bundled 8x8 digits (1,797 images, values 0-16), for the fastest tests.

Pixels are rescaled to uint8 0-255 (``round(v * 255 / 16)``); the split is stratified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.datasets import load_digits

from .base import RawDataset, stratified_split

if TYPE_CHECKING:
    from ..config import DataConfig


def load(cfg: DataConfig) -> RawDataset:
    bunch = load_digits()
    images = np.rint(bunch.images * 255.0 / 16.0).astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    total = labels.shape[0]
    n_val = int(round(cfg.digits.val_fraction * total))
    n_test = int(round(cfg.digits.test_fraction * total))
    sizes = {"train": total - n_val - n_test, "val": n_val, "test": n_test}
    return RawDataset(
        name="digits",
        kind="image",
        inputs=torch.from_numpy(images),
        labels=torch.from_numpy(labels),
        splits=stratified_split(labels, sizes, cfg.seed),
        classes=[str(d) for d in range(10)],
        sources={"sklearn.datasets.load_digits": "bundled with scikit-learn"},
        preprocessing={"split_sizes": sizes, "seed": cfg.seed, "scale": "round(v * 255 / 16)"},
    )
