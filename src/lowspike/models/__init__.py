"""Model registries: a params name maps to a builder function.

Each builder takes ``(input_shape, num_classes, **options)`` where ``input_shape`` is the
shape of one sample, e.g. ``(1, 28, 28)``.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from .lenet import build_lenet5
from .mlp import build_mlp

DNN_ARCHS: dict[str, Callable[..., nn.Module]] = {"mlp": build_mlp, "lenet5": build_lenet5}


def build_dnn(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A DNN of the conversion study by its params name (``regularization.archs``)."""
    try:
        builder = DNN_ARCHS[name]
    except KeyError:
        raise KeyError(f"unknown DNN architecture {name!r}; allowed: {sorted(DNN_ARCHS)}") from None
    return builder(tuple(input_shape), num_classes)
