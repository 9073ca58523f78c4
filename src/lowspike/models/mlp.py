"""MLP 784-300-100-10 of the regularization paper (Sec. 3.3): ReLU hidden layers."""

from __future__ import annotations

import math

from torch import nn

from .relu import ReluSequence


class MLP(ReluSequence):
    """``Flatten -> Linear(d, 300) -> ReLU -> Linear(300, 100) -> ReLU -> Linear(100, classes)``.

    ``layers`` is a plain sequence of Flatten/Linear/ReLU modules (:class:`ReluSequence`).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...] = (300, 100)):
        sizes = [math.prod(input_shape), *hidden]
        modules: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            modules += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        modules.append(nn.Linear(sizes[-1], num_classes))
        super().__init__(*modules)


def build_mlp(input_shape: tuple[int, ...], num_classes: int) -> MLP:
    return MLP(tuple(input_shape), num_classes)
