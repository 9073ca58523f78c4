"""What input shape each model of the registries accepts, checked from the shape alone (no
model is built), so that params.yaml can be refused before any work (``lowspike.config``).

A shape is one sample's: ``(C, H, W)`` for images, ``(1, n_mfcc, frames)`` for audio features.
"""

from __future__ import annotations

from typing import Callable

InputRule = Callable[[tuple[int, ...]], "str | None"]


def _image_at_least(size: int, model: str) -> InputRule:
    def rule(shape: tuple[int, ...]) -> str | None:
        if len(shape) != 3:
            return f"{model} needs images (C, H, W), got shape {shape}"
        if min(shape[1:]) < size:
            return f"{model} needs inputs of at least {size}x{size} pixels, got {shape[1]}x{shape[2]}"
        return None

    return rule


def _any_image(model: str) -> InputRule:
    return _image_at_least(1, model)


def _sequence(min_frames: int, model: str) -> InputRule:
    """1-D convolutions over time: ``(1, features, frames)`` (an image's rows read as features)."""

    def rule(shape: tuple[int, ...]) -> str | None:
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[0] != 1):
            return f"{model} needs feature sequences (1, features, frames), got shape {shape}"
        if shape[-1] < min_frames:
            return f"{model} needs at least {min_frames} frames, got {shape[-1]}"
        return None

    return rule


INPUT_RULES: dict[str, InputRule] = {
    "mlp": lambda shape: None,
    "lenet5": _image_at_least(12, "LeNet-5"),
    "scnn": _image_at_least(10, "SCNN"),
    "svgg11": _any_image("SVGG-11"),
    "vgg13": _any_image("VGG-13"),
    "vgg16": _any_image("VGG-16"),
    "sres8": _sequence(2, "SRes-8"),
    "resnet15": _sequence(1, "ResNet-15"),
}


def input_problem(model: str, shape: tuple[int, ...]) -> str | None:
    """Why ``model`` cannot take samples of ``shape``, or None when it can."""
    return INPUT_RULES[model](tuple(shape))
