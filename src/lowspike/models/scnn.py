"""SCNN, the MNIST student of the distillation paper (Sec. IV-A, Table I).

conv16 5x5 -> IF -> avg-pool 2 -> conv64 5x5 -> IF -> avg-pool 2 -> fc10 (non-spiking readout),
IF neurons (beta = 1), T = 10. The convolutions use padding 1: with 28x28 inputs this gives
42,090 parameters (the paper's "42k") and 10,816 + 7,744 = 18,560 neurons.
"""

from __future__ import annotations

import torch
from torch import nn

from ..projections import NETWORK_INPUT, Projection
from .spiking import SpikingNetwork, SpikingNeurons, avg_pool2, over_time, scaled


class SCNN(SpikingNetwork):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, neuron: str = "if", beta: float = 1.0,
                 timesteps: int = 10, width: float = 1.0, surrogate: str = "atan"):
        super().__init__(timesteps)
        channels, height, width_px = input_shape
        c1, c2 = scaled(16, width), scaled(64, width)
        beta = 1.0 if neuron == "if" else beta
        self.conv1 = nn.Conv2d(channels, c1, 5, padding=1)
        self.spike1 = SpikingNeurons(beta, surrogate)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=1)
        self.spike2 = SpikingNeurons(beta, surrogate)
        h = ((height - 2) // 2 - 2) // 2
        w = ((width_px - 2) // 2 - 2) // 2
        self.readout = nn.Linear(c2 * h * w, num_classes)
        self.finish_init(tuple(input_shape))

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        s1 = self.spike1(self.repeat(self.conv1(x)))
        s2 = self.spike2(over_time(lambda z: self.conv2(avg_pool2(z)), s1))
        readout = over_time(lambda z: self.readout(avg_pool2(z).flatten(1)), s2)
        return readout, [s1, s2]

    def projections(self) -> list[Projection]:
        """What each weight layer reads and drives (for :mod:`lowspike.metrics`), as in :meth:`run`."""
        return [Projection("conv1", NETWORK_INPUT, "spike1"),
                Projection("conv2", "spike1", "spike2", pooling=(("avg", 2),)),
                Projection("readout", "spike2", None, pooling=(("avg", 2),))]
