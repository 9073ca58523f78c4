"""Residual networks for keyword spotting (Tang & Lin 2018, "Deep residual learning for
small-footprint keyword spotting"), as 1-D convolutions over time with the MFCC coefficients as
channels (as in the Qualia framework used by the distillation paper, whose Table II counts
42k parameters for SRes-8 and 89k for ResNet-15).

- ResNet-15 (FNN teacher): 3-tap conv stem to 45 channels, 6 residual blocks of two 3-tap
  convolutions (13 convolutions in all), batch norm, ReLU, global average pool over time, linear.
- SRes-8 (spiking student): the same stem, average pooling by 2 over time (res8 pools after its
  first layer), 3 residual blocks, LIF neurons (T = 4) after every batch norm; a block adds its
  input spikes to the second convolution's current before the neurons fire; global average pool
  over time and a non-spiking linear readout.

Inputs are MFCC maps ``[B, 1, n_mfcc, frames]`` (or ``[B, n_mfcc, frames]``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..projections import NETWORK_INPUT, Projection
from .spiking import SpikingNetwork, SpikingNeurons, avg_pool2, over_time, scaled


def _as_sequence(x: torch.Tensor) -> torch.Tensor:
    return x.squeeze(1) if x.dim() == 4 else x


def _conv(channels_in: int, channels_out: int) -> nn.Conv1d:
    return nn.Conv1d(channels_in, channels_out, 3, padding=1, bias=False)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1, self.bn1 = _conv(channels, channels), nn.BatchNorm1d(channels)
        self.conv2, self.bn2 = _conv(channels, channels), nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + x)


class ResNet1d(nn.Module):
    """FNN teacher; ``blocks=6`` is ResNet-15."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, blocks: int = 6, channels: int = 45,
                 width: float = 1.0):
        super().__init__()
        features = input_shape[-2]
        channels = scaled(channels, width)
        self.stem = nn.Sequential(_conv(features, channels), nn.BatchNorm1d(channels), nn.ReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(_as_sequence(x)))
        return self.classifier(h.mean(dim=2))

    @property
    def feature_names(self) -> list[str]:
        """What :meth:`forward_with_features` returns, in forward order."""
        return ["stem", *(f"blocks.{i}" for i in range(len(self.blocks)))]

    def shortcut_blocks(self) -> list[str]:
        """The modules whose forward adds their own input to their output (identity shortcuts),
        for :func:`lowspike.metrics.teacher_layer_activity`."""
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The logits and the named intermediate feature maps ``[B, C, frames]``: ``stem`` the
        stem's ReLU output, ``blocks.<i>`` the output of the i-th residual block."""
        h = self.stem(_as_sequence(x))
        features = {"stem": h}
        for i, block in enumerate(self.blocks):
            h = block(h)
            features[f"blocks.{i}"] = h
        return self.classifier(h.mean(dim=2)), features


class SpikingResidualBlock(nn.Module):
    """s1 = LIF(BN(conv(s))),  s2 = LIF(BN(conv(s1)) + s)."""

    def __init__(self, channels: int, beta: float, surrogate: str):
        super().__init__()
        self.conv1, self.bn1 = _conv(channels, channels), nn.BatchNorm1d(channels)
        self.spike1 = SpikingNeurons(beta, surrogate)
        self.conv2, self.bn2 = _conv(channels, channels), nn.BatchNorm1d(channels)
        self.spike2 = SpikingNeurons(beta, surrogate)

    def forward(self, s: torch.Tensor) -> list[torch.Tensor]:
        s1 = self.spike1(over_time(lambda z: self.bn1(self.conv1(z)), s))
        s2 = self.spike2(over_time(lambda z: self.bn2(self.conv2(z)), s1) + s)
        return [s1, s2]


class SpikingResNet1d(SpikingNetwork):
    """SRes-8 for ``blocks=3``."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, blocks: int = 3, channels: int = 45,
                 neuron: str = "lif", beta: float = 0.5, timesteps: int = 4, width: float = 1.0,
                 surrogate: str = "atan"):
        super().__init__(timesteps)
        beta = 1.0 if neuron == "if" else beta
        features = input_shape[-2]
        channels = scaled(channels, width)
        self.stem = nn.Sequential(_conv(features, channels), nn.BatchNorm1d(channels))
        self.stem_spike = SpikingNeurons(beta, surrogate)
        self.blocks = nn.ModuleList([SpikingResidualBlock(channels, beta, surrogate) for _ in range(blocks)])
        self.readout = nn.Linear(channels, num_classes)
        self.finish_init(tuple(input_shape))

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        s = self.stem_spike(self.repeat(self.stem(_as_sequence(x))))
        spikes = [s]
        s = over_time(avg_pool2, s)
        for block in self.blocks:
            block_spikes = block(s)
            spikes += block_spikes
            s = block_spikes[-1]
        return over_time(lambda z: self.readout(z.mean(dim=2)), s), spikes

    def projections(self) -> list[Projection]:
        """What each weight layer and each shortcut reads and drives (for :mod:`lowspike.metrics`),
        as in :meth:`run`: a block's shortcut adds its input spikes into its second neurons."""
        projections = [Projection("stem.0", NETWORK_INPUT, "stem_spike", norm="stem.1")]
        source, pooling = "stem_spike", (("avg", 2),)
        for i in range(len(self.blocks)):
            block = f"blocks.{i}"
            projections += [
                Projection(f"{block}.conv1", source, f"{block}.spike1", pooling, norm=f"{block}.bn1"),
                Projection(f"{block}.conv2", f"{block}.spike1", f"{block}.spike2", norm=f"{block}.bn2"),
                Projection(None, source, f"{block}.spike2", pooling, name=f"{block}.shortcut"),
            ]
            source, pooling = f"{block}.spike2", ()
        return projections + [Projection("readout", source, None, (("global_avg",),))]


def build_resnet15(input_shape, num_classes, width=1.0) -> ResNet1d:
    return ResNet1d(tuple(input_shape), num_classes, blocks=6, width=width)


def build_sres8(input_shape, num_classes, **options) -> SpikingResNet1d:
    return SpikingResNet1d(tuple(input_shape), num_classes, blocks=3, **options)
