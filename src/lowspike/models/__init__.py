"""The models of both studies: one registry from a params name to a :class:`ModelSpec`.

- ``dnn``: the DNNs of the conversion study (regularization paper): MLP, LeNet-5.
- ``teacher``: the FNN teachers of the distillation paper: VGG-13, ResNet-15, VGG-16.
- ``student``: the directly trained spiking students: SCNN, SRes-8, SVGG-11; each returns a
  :class:`~lowspike.models.spiking.SpikingOutput`.

A spec names its builder (``module:function``, imported on the first build, so that params
validation and the reports read the registry without loading torch), the input shapes it
accepts (checked from the shape alone, before any work), its label and parameter count in the
papers, and, for a student, the hints of feature-based KD per teacher (:mod:`lowspike.hints`).
A new model is its builder function and one entry of :data:`MODELS`.

A shape is one sample's: ``(C, H, W)`` for images, ``(1, n_mfcc, frames)`` for audio features.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

InputRule = Callable[[tuple[int, ...]], "str | None"]
HintPair = tuple[str, str]
"""(student spiking layer, as in ``spiking_layer_names``; teacher feature, as in ``feature_names``)."""


def image_at_least(size: int, label: str) -> InputRule:
    """Images ``(C, H, W)`` of at least ``size`` x ``size`` pixels."""
    def rule(shape: tuple[int, ...]) -> str | None:
        if len(shape) != 3:
            return f"{label} needs images (C, H, W), got shape {shape}"
        if min(shape[1:]) < size:
            return f"{label} needs inputs of at least {size}x{size} pixels, got {shape[1]}x{shape[2]}"
        return None

    return rule


def sequence(min_frames: int, label: str) -> InputRule:
    """1-D convolutions over time: ``(1, features, frames)`` (an image's rows read as features)."""
    def rule(shape: tuple[int, ...]) -> str | None:
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[0] != 1):
            return f"{label} needs feature sequences (1, features, frames), got shape {shape}"
        if shape[-1] < min_frames:
            return f"{label} needs at least {min_frames} frames, got {shape[-1]}"
        return None

    return rule


def any_shape(shape: tuple[int, ...]) -> str | None:
    return None


@dataclass(frozen=True)
class ModelSpec:
    """One model of the registry."""

    name: str
    role: Literal["dnn", "teacher", "student"]
    builder: str
    """``module:function``; a DNN builder takes ``(input_shape, num_classes)``, a teacher's also
    ``width``, a student's ``neuron, beta, timesteps, width, surrogate``."""
    label: str
    input_rule: InputRule
    paper_parameters: str | None = None
    """Table II of the distillation paper."""
    hints: dict[str, tuple[HintPair, ...]] = field(default_factory=dict)
    """A student's FitNets hints per teacher: which teacher map guides which spiking layer."""

    def build(self, *args: Any, **kwargs: Any):
        problem = self.input_rule(tuple(args[0] if args else kwargs["input_shape"]))
        if problem:
            raise ValueError(problem)
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)(*args, **kwargs)


_IMAGE_HINTS_SCNN: tuple[HintPair, ...] = (("spike1", "block1"), ("spike2", "block2"))
_IMAGE_HINTS_SVGG11: tuple[HintPair, ...] = (
    ("neurons.0", "block1"), ("neurons.1", "block2"), ("neurons.3", "block3"), ("neurons.5", "block4"),
    ("neurons.7", "block5"), ("fc_neurons.0", "fc1"),
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("mlp", "dnn", "lowspike.models.mlp:build_mlp", "MLP", any_shape),
    ModelSpec("lenet5", "dnn", "lowspike.models.lenet:build_lenet5", "LeNet-5", image_at_least(12, "LeNet-5")),
    ModelSpec("vgg13", "teacher", "lowspike.models.vgg:build_vgg13", "VGG-13", image_at_least(1, "VGG-13"), "28.3M"),
    ModelSpec("resnet15", "teacher", "lowspike.models.resnet:build_resnet15", "ResNet-15", sequence(1, "ResNet-15"),
              "89k"),
    ModelSpec("vgg16", "teacher", "lowspike.models.vgg:build_vgg16", "VGG-16", image_at_least(1, "VGG-16"), "15.3M"),
    # SCNN on 28x28: spike1 16x26x26 <- block1 (28x28), spike2 64x11x11 <- block2 (14x14; block3 is 7x7)
    ModelSpec("scnn", "student", "lowspike.models.scnn:SCNN", "SCNN", image_at_least(10, "SCNN"), "42k",
              hints={"vgg13": _IMAGE_HINTS_SCNN, "vgg16": _IMAGE_HINTS_SCNN}),
    # SRes-8 pools by 2 after its stem: stem_spike <- stem (same frames); each block's output
    # (frames / 2) <- every second ResNet-15 block (frames), the six spread over the three
    ModelSpec("sres8", "student", "lowspike.models.resnet:build_sres8", "SRes-8", sequence(2, "SRes-8"), "42k",
              hints={"resnet15": (("stem_spike", "stem"), ("blocks.0.spike2", "blocks.1"),
                                  ("blocks.1.spike2", "blocks.3"), ("blocks.2.spike2", "blocks.5"))}),
    # SVGG-11 on 32x32: the last spiking layer at each resolution (32, 16, 8, 4, 2) <- the VGG
    # block of that resolution; the spiking fc layer (1024) <- the teacher's first hidden fc
    ModelSpec("svgg11", "student", "lowspike.models.vgg:build_svgg11", "SVGG-11", image_at_least(1, "SVGG-11"), "9.8M",
              hints={"vgg16": _IMAGE_HINTS_SVGG11, "vgg13": _IMAGE_HINTS_SVGG11}),
)}


def names(role: str) -> tuple[str, ...]:
    """The registry's models of one role, in registry order."""
    return tuple(name for name, spec in MODELS.items() if spec.role == role)


def _spec(role: str, name: str) -> ModelSpec:
    spec = MODELS.get(name)
    if spec is None or spec.role != role:
        raise KeyError(f"unknown {role} {name!r}; allowed: {sorted(names(role))}")
    return spec


def builder_modules(*roles: str) -> list[str]:
    """The modules of the builders of the registry's models of ``roles`` (what a stage that builds
    them runs besides its imports)."""
    return sorted({spec.builder.partition(":")[0] for spec in MODELS.values() if spec.role in roles})


def input_problem(model: str, shape: tuple[int, ...]) -> str | None:
    """Why ``model`` cannot take samples of ``shape``, or None when it can."""
    return MODELS[model].input_rule(tuple(shape))


def label(model: str | None) -> str:
    """The papers' name of a model (``sres8`` -> ``SRes-8``); the name itself when unknown."""
    spec = MODELS.get(model or "")
    return spec.label if spec else (model or "?")


def hint_pairs(student: str, teacher: str) -> tuple[HintPair, ...]:
    """The declared hints of ``student`` guided by ``teacher``; KeyError naming the declared pairs."""
    pairs = MODELS[student].hints.get(teacher) if student in MODELS else None
    if pairs is None:
        raise KeyError(f"no feature hints declared for student {student!r} with teacher {teacher!r} "
                       f"(declared: {', '.join(declared_hint_pairs())}; add them to its entry in lowspike.models.MODELS)")
    return pairs


def declared_hint_pairs() -> list[str]:
    return [f"{spec.name}/{teacher}" for spec in MODELS.values() for teacher in spec.hints]


def build_dnn(name: str, input_shape: tuple[int, ...], num_classes: int):
    """A DNN of the conversion study by its params name (``regularization.archs``)."""
    return _spec("dnn", name).build(tuple(input_shape), num_classes)


def build_teacher(name: str, *, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0):
    """An FNN teacher by its params name (``distillation.setups.<dataset>.teacher``)."""
    return _spec("teacher", name).build(tuple(input_shape), num_classes, width=width)


def build_student(name: str, *, input_shape: tuple[int, ...], num_classes: int, neuron: str = "if",
                  beta: float = 1.0, timesteps: int = 10, width: float = 1.0, surrogate: str = "atan"):
    """A spiking student by its params name (``distillation.setups.<dataset>.student``)."""
    return _spec("student", name).build(tuple(input_shape), num_classes, neuron=neuron, beta=beta,
                                        timesteps=timesteps, width=width, surrogate=surrogate)


def count_parameters(model) -> int:
    """Trainable parameters (the "Params" column of Table II)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
