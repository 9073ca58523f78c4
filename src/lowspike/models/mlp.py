"""MLP 784-300-100-10 of the regularization paper (Sec. 3.3): ReLU hidden layers."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    """``Flatten -> Linear(d, 300) -> ReLU -> Linear(300, 100) -> ReLU -> Linear(100, classes)``.

    ``layers`` is a plain sequence of Flatten/Linear/ReLU modules that conversion walks.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...] = (300, 100)):
        super().__init__()
        sizes = [math.prod(input_shape), *hidden]
        modules: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            modules += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        modules.append(nn.Linear(sizes[-1], num_classes))
        self.layers = nn.Sequential(*modules)

    def forward_with_activations(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the post-ReLU hidden activation maps (the X_l of Eq. 4)."""
        hidden = []
        for module in self.layers:
            x = module(x)
            if isinstance(module, nn.ReLU):
                hidden.append(x)
        return x, hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build_mlp(input_shape: tuple[int, ...], num_classes: int) -> MLP:
    return MLP(tuple(input_shape), num_classes)
