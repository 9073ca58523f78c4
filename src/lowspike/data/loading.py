"""In-memory batches of a prepared split, on the training device.

Images become float in [0, 1]; audio stays a float waveform in [-1, 1] that is turned
into MFCC features ``[B, 1, n_mfcc, frames]`` per batch (after the training-time
waveform augmentation) or once for the whole split at evaluation. Training-time
augmentation (CIFAR-10 crop/flip, audio noise/warp/shift) is never applied at evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from .prepared import PreparedDataset

if TYPE_CHECKING:
    from ..config import DataConfig

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

_FEATURE_CHUNK = 2048


@dataclass
class SplitTensors:
    """One split held as tensors; :meth:`batches` yields model-ready ``(x, y)``, or ``(x, y, t)``
    when the split carries per-sample ``targets`` (a teacher's logits computed once for a split
    that is never augmented: :func:`with_targets`)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    augment: Transform | None = None
    featurize: Callable[[torch.Tensor], torch.Tensor] | None = None
    targets: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        probe = self.inputs[:1]
        if self.featurize is not None:
            probe = self.featurize(probe)
        return tuple(probe.shape[1:])

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self)
        if shuffle:
            order = torch.randperm(n, generator=generator).to(self.inputs.device)
        else:
            order = None
        for start in range(0, n, batch_size):
            index = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
            x, y = self.inputs[index], self.labels[index]
            if self.augment is not None:
                x = self.augment(x, generator)
            if self.featurize is not None:
                x = self.featurize(x)
            yield (x, y) if self.targets is None else (x, y, self.targets[index])

    def with_targets(self, targets: torch.Tensor) -> "SplitTensors":
        """This split with per-sample ``targets`` ``[N, ...]`` yielded beside each batch; only for a
        split without augmentation (a target computed once would not match an augmented input)."""
        if self.augment is not None:
            raise ValueError("per-sample targets of an augmented split would not match its inputs")
        if targets.shape[0] != len(self):
            raise ValueError(f"{targets.shape[0]} targets for a split of {len(self)} samples")
        return replace(self, targets=targets.to(self.labels.device))

    def materialize(self) -> torch.Tensor:
        """All model-ready inputs of the split (features computed, no augmentation)."""
        if self.featurize is None:
            return self.inputs
        return torch.cat([self.featurize(chunk) for chunk in self.inputs.split(_FEATURE_CHUNK)])


def load_split(
    prepared: PreparedDataset,
    split: str,
    cfg: DataConfig,
    device: torch.device | str = "cpu",
    train: bool = False,
) -> SplitTensors:
    """Tensors of ``split`` on ``device``; ``train=True`` enables the dataset's augmentation."""
    raw_inputs, labels = prepared.split(split)
    labels = labels.to(device)
    if prepared.kind == "image":
        inputs = raw_inputs.to(device).float().div_(255.0)
        augment = _image_augmentation(prepared.name) if train else None
        return SplitTensors(inputs, labels, augment=augment)

    from .audio import augment_waveforms, build_mfcc, int16_to_float

    waves = int16_to_float(raw_inputs.to(device))
    mfcc = build_mfcc(cfg.mfcc).to(device)

    def featurize(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return mfcc(batch).unsqueeze(1)

    augment = None
    if train and cfg.augment.enabled:
        def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            return augment_waveforms(batch, cfg.augment, generator)

    split_tensors = SplitTensors(waves, labels, augment=augment, featurize=featurize)
    if augment is None:
        split_tensors = SplitTensors(split_tensors.materialize(), labels)
    return split_tensors


def _image_augmentation(name: str) -> Transform | None:
    if name == "cifar10":
        from .cifar10 import augment_images

        return augment_images
    return None
