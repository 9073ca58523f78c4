"""What every dataset module returns, and the shared split helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

SPLITS = ("train", "val", "test")


@dataclass
class RawDataset:
    """A dataset as read from its source, before it is written to ``data/prepared/<name>/``.

    ``inputs`` holds images as uint8 ``[N, C, H, W]`` or waveforms as int16 ``[N, L]``;
    ``splits`` maps train/val/test to int64 index tensors into ``inputs``.
    """

    name: str
    kind: Literal["image", "audio"]
    inputs: torch.Tensor
    labels: torch.Tensor
    splits: dict[str, torch.Tensor]
    classes: list[str]
    sources: dict[str, str] = field(default_factory=dict)
    preprocessing: dict = field(default_factory=dict)
    sample_rate: int | None = None

    def __post_init__(self) -> None:
        expected = torch.uint8 if self.kind == "image" else torch.int16
        if self.inputs.dtype != expected:
            raise TypeError(f"{self.name}: {self.kind} inputs must be {expected}, got {self.inputs.dtype}")
        if self.labels.shape[0] != self.inputs.shape[0]:
            raise ValueError(f"{self.name}: {self.inputs.shape[0]} inputs but {self.labels.shape[0]} labels")
        if set(self.splits) != set(SPLITS):
            raise ValueError(f"{self.name}: splits must be exactly {SPLITS}")


def stratified_split(
    labels: np.ndarray, sizes: dict[str, int], seed: int
) -> dict[str, torch.Tensor]:
    """Shuffle with ``seed`` and cut into consecutive splits of exactly ``sizes``, stratified.

    Within each class the samples are shuffled; sample of rank ``r`` in a class of ``n``
    gets the key ``(r + 0.5) / n``; sorting all samples by key interleaves the classes in
    proportion, so each consecutive chunk holds every class within one sample of its
    share. Indices inside each split are shuffled again.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    total = labels.shape[0]
    if sum(sizes.values()) > total:
        raise ValueError(f"split sizes {sizes} exceed the {total} samples")
    keys = np.empty(total)
    classes = np.unique(labels)
    class_rank = rng.permutation(classes.shape[0])
    tie_break = np.empty(total)
    for c, rank in zip(classes, class_rank):
        members = rng.permutation(np.flatnonzero(labels == c))
        keys[members] = (np.arange(members.shape[0]) + 0.5) / members.shape[0]
        tie_break[members] = rank
    order = np.lexsort((tie_break, keys))
    out: dict[str, torch.Tensor] = {}
    start = 0
    for split, size in sizes.items():
        out[split] = torch.from_numpy(rng.permutation(order[start:start + size])).long()
        start += size
    return out
