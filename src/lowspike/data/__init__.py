"""Datasets: one module each, one registry from the params name to a :class:`DatasetSpec`.

A spec names its loader (``module:function``, imported on use: params validation reads the
registry without loading torch), which takes the validated ``data`` section and returns a
:class:`~lowspike.data.base.RawDataset`; the shape of one model input, known from params alone;
and the dataset of the papers it stands in for. A new dataset is its module with a ``load``
function and one entry of :data:`DATASETS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Literal

from ..errors import ParamsError


def mfcc_frames(num_samples: int, cfg: Any) -> int:
    """MFCC frames of a clip of ``num_samples`` samples (``cfg``: params ``data.mfcc``): with
    ``pad`` samples on both sides, ``floor((L + 2 pad - n_fft) / hop) + 1``, or
    ``floor((L + 2 pad) / hop) + 1`` when centered (``torch.stft`` pads ``n_fft / 2`` more on
    each side). The paper's front end (1 s at 16 kHz, pad 320, n_fft 1024, hop 320, not
    centered) gives 49 frames."""
    padded = num_samples + 2 * cfg.pad
    frames = padded // cfg.hop_length + 1 if cfg.center else (padded - cfg.n_fft) // cfg.hop_length + 1
    return max(frames, 0)


def audio_feature_shape(cfg: Any) -> tuple[int, int, int]:
    """``(1, n_mfcc, frames)`` of a 1 s clip (``cfg``: params ``data``)."""
    return (1, cfg.mfcc.n_mfcc, mfcc_frames(cfg.mfcc.sample_rate, cfg.mfcc))


def image(shape: tuple[int, int, int]) -> Callable[[Any], tuple[int, ...]]:
    return lambda cfg: shape


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: Literal["image", "audio"]
    loader: str
    """``module:function`` taking params ``data``."""
    sample_shape: Callable[[Any], tuple[int, ...]]
    """One model input, from params ``data``."""
    stands_in_for: Literal["mnist", "gsc", "cifar10"]
    """The papers' dataset whose claims this one is checked against."""

    def load(self, cfg: Any):
        module, _, function = self.loader.partition(":")
        return getattr(importlib.import_module(module), function)(cfg)


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("mnist5k", "image", "lowspike.data.mnist5k:load", image((1, 28, 28)), "mnist"),
    DatasetSpec("digits", "image", "lowspike.data.digits:load", image((1, 8, 8)), "mnist"),
    DatasetSpec("mnist", "image", "lowspike.data.mnist:load", image((1, 28, 28)), "mnist"),
    DatasetSpec("cifar10", "image", "lowspike.data.cifar10:load", image((3, 32, 32)), "cifar10"),
    DatasetSpec("gsc", "audio", "lowspike.data.gsc:load", audio_feature_shape, "gsc"),
    DatasetSpec("spoken-commands", "audio", "lowspike.data.spoken_commands:load", audio_feature_shape, "gsc"),
)}


def sample_shape(name: str, cfg: Any) -> tuple[int, ...]:
    """The shape of one model input of dataset ``name``, known from params ``data`` alone: the
    image, or the MFCC map of a 1 s clip."""
    return DATASETS[name].sample_shape(cfg)


def load_raw(name: str, cfg: Any):
    """Read dataset ``name`` from its source."""
    if name not in DATASETS:
        raise ParamsError(f"--dataset {name!r}: unknown dataset; allowed: {', '.join(sorted(DATASETS))}")
    return DATASETS[name].load(cfg)
