"""Datasets: one module each, one registry from the params name to its loader.

A loader takes the validated ``data`` section and returns a :class:`RawDataset`; heavy
imports (torchvision, soundfile, eSpeak NG) happen inside the loader.
"""

from __future__ import annotations

from typing import Callable

from ..config import DataConfig
from . import cifar10, digits, gsc, mnist, mnist5k, spoken_commands
from .base import DatasetMissing, RawDataset
from .prepared import PreparedDataCorrupt, PreparedDataset, load_prepared, write_prepared

DATASETS: dict[str, Callable[[DataConfig], RawDataset]] = {
    "mnist5k": mnist5k.load,
    "digits": digits.load,
    "mnist": mnist.load,
    "cifar10": cifar10.load,
    "gsc": gsc.load,
    "spoken-commands": spoken_commands.load,
}


IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    "mnist5k": (1, 28, 28), "mnist": (1, 28, 28), "digits": (1, 8, 8), "cifar10": (3, 32, 32),
}
AUDIO_DATASETS = ("gsc", "spoken-commands")


def sample_shape(name: str, cfg: DataConfig) -> tuple[int, ...]:
    """The shape of one model input of dataset ``name``, known from params alone: the image, or
    the MFCC map of a 1 s clip (:func:`.audio.feature_shape`)."""
    if name in AUDIO_DATASETS:
        from .audio import feature_shape

        return feature_shape(cfg.mfcc, cfg.mfcc.sample_rate)
    return IMAGE_SHAPES[name]


def load_raw(name: str, cfg: DataConfig) -> RawDataset:
    """Read dataset ``name`` from its source."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; allowed: {sorted(DATASETS)}") from None
    return loader(cfg)


__all__ = [
    "DATASETS",
    "DatasetMissing",
    "PreparedDataCorrupt",
    "PreparedDataset",
    "RawDataset",
    "load_prepared",
    "load_raw",
    "sample_shape",
    "write_prepared",
]
