"""Model registries: a params name maps to a builder function.

Each builder takes ``(input_shape, num_classes, **options)`` where ``input_shape`` is the
shape of one sample, e.g. ``(1, 28, 28)``.

- ``DNN_ARCHS``: the DNNs of the conversion study (regularization paper): MLP, LeNet-5.
- ``TEACHERS``: the FNN teachers of the distillation paper: VGG-13, ResNet-15, VGG-16.
- ``STUDENTS``: the directly trained spiking students: SCNN, SRes-8, SVGG-11; each returns a
  :class:`~lowspike.models.spiking.SpikingOutput`.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from .lenet import build_lenet5
from .mlp import build_mlp
from .resnet import build_resnet15, build_sres8
from .scnn import SCNN
from .spiking import SURROGATES, SpikingNetwork, SpikingOutput
from .vgg import build_svgg11, build_vgg13, build_vgg16

DNN_ARCHS: dict[str, Callable[..., nn.Module]] = {"mlp": build_mlp, "lenet5": build_lenet5}
TEACHERS: dict[str, Callable[..., nn.Module]] = {
    "vgg13": build_vgg13, "resnet15": build_resnet15, "vgg16": build_vgg16,
}
STUDENTS: dict[str, Callable[..., SpikingNetwork]] = {"scnn": SCNN, "sres8": build_sres8, "svgg11": build_svgg11}
PAPER_PARAMETERS = {"vgg13": "28.3M", "resnet15": "89k", "vgg16": "15.3M", "scnn": "42k", "sres8": "42k",
                    "svgg11": "9.8M"}
"""Parameter counts of Table II of the distillation paper, for the reports."""


def _lookup(registry: dict, kind: str, name: str):
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown {kind} {name!r}; allowed: {sorted(registry)}") from None


def build_dnn(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A DNN of the conversion study by its params name (``regularization.archs``)."""
    return _lookup(DNN_ARCHS, "DNN architecture", name)(tuple(input_shape), num_classes)


def build_teacher(name: str, *, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Module:
    """An FNN teacher by its params name (``distillation.setups.<dataset>.teacher``)."""
    return _lookup(TEACHERS, "teacher", name)(tuple(input_shape), num_classes, width=width)


def build_student(name: str, *, input_shape: tuple[int, ...], num_classes: int, neuron: str = "if",
                  beta: float = 1.0, timesteps: int = 10, width: float = 1.0,
                  surrogate: str = "atan") -> SpikingNetwork:
    """A spiking student by its params name (``distillation.setups.<dataset>.student``)."""
    builder = _lookup(STUDENTS, "student", name)
    return builder(tuple(input_shape), num_classes, neuron=neuron, beta=beta, timesteps=timesteps, width=width,
                   surrogate=surrogate)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (the "Params" column of Table II)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["DNN_ARCHS", "PAPER_PARAMETERS", "STUDENTS", "SURROGATES", "TEACHERS", "SpikingNetwork", "SpikingOutput",
           "build_dnn", "build_student", "build_teacher", "count_parameters"]
