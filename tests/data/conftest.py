"""Writers of small datasets in the exact official formats."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """An IDX file (magic 0x0000 0x08 <ndim>, big-endian dimensions, uint8 data)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def write_cifar_batch(path: Path, images: np.ndarray, labels: list[int]) -> None:
    """A CIFAR-10 python batch: a pickled dict with bytes keys, data uint8 [N, 3072]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump({b"batch_label": b"test", b"labels": list(labels), b"data": images.reshape(len(labels), -1),
                     b"filenames": [f"{i}.png".encode() for i in range(len(labels))]}, handle)


def write_cifar_meta(path: Path) -> None:
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(path, "wb") as handle:
        pickle.dump({b"label_names": [n.encode() for n in names], b"num_cases_per_batch": 10000,
                     b"num_vis": 3072}, handle)
