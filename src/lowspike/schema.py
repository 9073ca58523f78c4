"""The building blocks of the params schema (:mod:`lowspike.config`): a strict, frozen section
and the number types its fields use. A leaf module, so that a registry can declare the schema
of its own params (the grids of :data:`lowspike.distillation.METHODS`) without importing the
whole schema."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


NonNegFloat = Annotated[float, Field(ge=0.0), AfterValidator(_finite)]
PosFloat = Annotated[float, Field(gt=0.0), AfterValidator(_finite)]
UnitFloat = Annotated[float, Field(ge=0.0, le=1.0), AfterValidator(_finite)]
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]


def _distinct_seeds(values: list[int]) -> list[int]:
    if not values:
        raise ValueError("must not be empty")
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a seed")
    return values


Seeds = Annotated[list[NonNegInt], AfterValidator(_distinct_seeds)]
"""A list of training seeds: at least one, none repeated."""


class Section(BaseModel):
    """A section of params.yaml: unknown keys refused, types strict (a number in quotes is a
    string and is refused, never coerced), values frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    optional_keys: ClassVar[frozenset[str]] = frozenset()
    """Keys a params *file* may leave out (their defaults apply); every other key must be written."""
