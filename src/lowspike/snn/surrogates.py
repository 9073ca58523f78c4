"""Surrogate derivatives of the spike function, as snntorch 1.0 defines them.

The forward pass of every surrogate is the Heaviside step ``S = 1[x > 0]`` with
``x = U - theta``; only the backward pass differs. Each entry of :data:`SURROGATE_DERIVATIVES`
maps a params name (``distillation.surrogate``) to ``dS/dx`` evaluated *in place*: it overwrites
``x`` with the derivative and returns ``x`` (the fused neuron's backward owns that buffer), with
snntorch's default constants:

- ``atan`` (``snntorch.surrogate.atan(alpha=2)``): ``alpha / 2 / (1 + (pi/2 alpha x)^2)``
  (Fang et al. 2021);
- ``fast_sigmoid`` (``fast_sigmoid(slope=25)``): ``1 / (slope |x| + 1)^2`` (Zenke & Ganguli 2018,
  SuperSpike);
- ``sigmoid`` (``sigmoid(slope=25)``): ``slope e^{-slope x} / (e^{-slope x} + 1)^2`` (NaN where
  ``e^{-slope x}`` overflows, for ``x < -3.5``, as in snntorch);
- ``triangular`` (``triangular(threshold=1)``): snntorch's own definition, ``theta`` for
  ``x < 0`` and ``-theta`` for ``x >= 0`` (a sign function, not a triangle; kept as snntorch has
  it so that both paths train the same model).

The derivatives agree with snntorch's ``backward`` on the same ``x`` within float32 rounding
(``atan`` and ``triangular`` to the last bit). They use tensor methods only, so that params
validation reads the registry's names without importing torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch

SurrogateDerivative = Callable[["torch.Tensor"], "torch.Tensor"]

ATAN_ALPHA = 2.0
SIGMOID_SLOPE = 25.0
TRIANGULAR_THRESHOLD = 1.0


def atan_derivative_(x: torch.Tensor, alpha: float = ATAN_ALPHA) -> torch.Tensor:
    """``alpha / 2 / (1 + (pi/2 alpha x)^2)``, overwriting ``x``."""
    return x.mul_(math.pi / 2 * alpha).pow_(2).add_(1.0).reciprocal_().mul_(alpha / 2)


def fast_sigmoid_derivative_(x: torch.Tensor, slope: float = SIGMOID_SLOPE) -> torch.Tensor:
    """``1 / (slope |x| + 1)^2``, overwriting ``x``."""
    return x.abs_().mul_(slope).add_(1.0).pow_(2).reciprocal_()


def sigmoid_derivative_(x: torch.Tensor, slope: float = SIGMOID_SLOPE) -> torch.Tensor:
    """``slope e^{-slope x} / (e^{-slope x} + 1)^2``, overwriting ``x``."""
    e = x.mul_(-slope).exp_()
    return e.div_(e.add(1.0).pow_(2)).mul_(slope)


def triangular_derivative_(x: torch.Tensor, threshold: float = TRIANGULAR_THRESHOLD) -> torch.Tensor:
    """``threshold`` where ``x < 0``, ``-threshold`` where ``x >= 0``, overwriting ``x``."""
    negative = x < 0
    return x.fill_(-threshold).masked_fill_(negative, threshold)


SURROGATE_DERIVATIVES: dict[str, SurrogateDerivative] = {
    "atan": atan_derivative_,
    "fast_sigmoid": fast_sigmoid_derivative_,
    "sigmoid": sigmoid_derivative_,
    "triangular": triangular_derivative_,
}


def surrogate_derivative(name: str) -> SurrogateDerivative:
    """The entry ``name`` of :data:`SURROGATE_DERIVATIVES`; an unknown name is a ``KeyError`` that
    lists the allowed ones."""
    if name not in SURROGATE_DERIVATIVES:
        raise KeyError(f"unknown surrogate {name!r}; allowed: {sorted(SURROGATE_DERIVATIVES)}")
    return SURROGATE_DERIVATIVES[name]


SURROGATE_CONSTANTS: dict[str, tuple[float, float]] = {
    "atan": (math.pi / 2 * ATAN_ALPHA, ATAN_ALPHA / 2),
    "fast_sigmoid": (SIGMOID_SLOPE, 0.0),
    "triangular": (0.0, TRIANGULAR_THRESHOLD),
}
"""The two constants the compiled backward (:mod:`lowspike.snn.native`) takes per surrogate, those
of the functions above: atan's ``pi/2 alpha`` and ``alpha/2``, fast_sigmoid's slope, triangular's
threshold."""


def snntorch_surrogate(name: str):
    """The snntorch spike function with the same surrogate (the reference path of the students)."""
    from snntorch import surrogate

    surrogate_derivative(name)
    factories = {
        "atan": lambda: surrogate.atan(alpha=ATAN_ALPHA),
        "fast_sigmoid": lambda: surrogate.fast_sigmoid(slope=SIGMOID_SLOPE),
        "sigmoid": lambda: surrogate.sigmoid(slope=SIGMOID_SLOPE),
        "triangular": lambda: surrogate.triangular(threshold=TRIANGULAR_THRESHOLD),
    }
    return factories[name]()
