"""Activity regularizers of the conversion study: one registry, :data:`REGULARIZERS`.

Each regularizer ``psi`` is a pure function of one activation map ``x`` of shape ``[B, ...]``:
computed per sample over all the neurons of the map and averaged over the batch. The training
loss is Eq. 4 of the regularization paper (assembled in :func:`lowspike.penalties.activity_penalty`)::

    L = CE + lambda * sum_l psi(X_l)        (sum over the hidden layers l)

A params *spec* names a regularizer: a registry name (``l1``, ``l2``, ``hoyer``,
``hoyer_square``, ``synops``) or ``lp<p>``, the Lp surrogate of L0 with p in (0, 1], optionally
joined with a weight penalty (``l1+wl1``: :data:`WEIGHT_PENALTIES`). A training of the sweep is a
*point* ``<spec>-<lambda>`` (``l1-1e-4``). A new regularizer is its function here and one entry
of :data:`REGULARIZERS` (its label in the reports, its family for finding (b), whether the paper
ran it).

The functions use tensor methods only, so that params validation and the reports read the
registry without importing torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Callable, Literal

if TYPE_CHECKING:
    import torch

_TINY = 1.0e-12
BEYOND_MARK = "\u2020"
"""Marks what the paper did not run (its Sec. 5, future work): ``SynOps\u2020``, ``L1+wL1\u2020``."""


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def l1(x: torch.Tensor) -> torch.Tensor:
    """L1 activity: ``mean_b sum_i |x_bi|`` (Manhattan norm, Sec. 3.2 of the regularization paper)."""
    return _per_sample(x).abs().sum(dim=1).mean()


def l2(x: torch.Tensor, form: Literal["squared", "norm"] = "squared") -> torch.Tensor:
    """L2 activity (Sec. 3.2 of the regularization paper).

    ``form="squared"``: ``mean_b sum_i x_bi^2`` (the usual activity regularizer, as Keras'
    ``ActivityRegularization(l2=...)`` that the paper's [19] uses; our default).
    ``form="norm"``: ``mean_b sqrt(sum_i x_bi^2)``, the Euclidean norm the text names.
    The paper does not say which; ``regularization.l2_form`` chooses.
    """
    squares = _per_sample(x).pow(2).sum(dim=1)
    if form == "squared":
        return squares.mean()
    return (squares + _TINY).sqrt().mean()


def lp(x: torch.Tensor, p: float, eps: float = 1.0e-6) -> torch.Tensor:
    """Lp surrogate of L0, Eq. 2 of the regularization paper: ``mean_b sum_i (|x_bi| + eps)^p``.

    ``eps`` keeps the gradient ``p (|x| + eps)^(p - 1)`` finite at zero, where ReLU
    activations sit; it adds the constant ``n eps^p`` per sample, which has no gradient.
    """
    return (_per_sample(x).abs() + eps).pow(p).sum(dim=1).mean()


def hoyer(x: torch.Tensor) -> torch.Tensor:
    """Hoyer regularizer, Eq. 3 of the regularization paper: ``mean_b ||x_b||_1 / ||x_b||_2``.

    A sample whose activations are all zero contributes 0.
    """
    flat = _per_sample(x)
    norm1 = flat.abs().sum(dim=1)
    norm2 = (flat.pow(2).sum(dim=1) + _TINY).sqrt()
    return (norm1 / norm2).mean()


def hoyer_square(x: torch.Tensor) -> torch.Tensor:
    """Hoyer-Square regularizer, Eq. 3 of the regularization paper: ``mean_b ||x_b||_1^2 / ||x_b||_2^2``.

    A sample whose activations are all zero contributes 0.
    """
    flat = _per_sample(x)
    norm1 = flat.abs().sum(dim=1)
    return (norm1.pow(2) / (flat.pow(2).sum(dim=1) + _TINY)).mean()


def synops(x: torch.Tensor, fanout: torch.Tensor) -> torch.Tensor:
    """SynOps regularizer (Sorbaro et al. 2020, reference [10] of the regularization paper; beyond
    the paper): ``psi(X_l) = mean_b sum_i x_bi f_i`` with ``f_i`` the fan-out of neuron i, the
    number of non-zero weights that read it (through the pooling, as our SynOps count it,
    :func:`lowspike.snn.activity.dnn_fanouts`). Summed over the hidden layers it is the DNN-side
    estimate of what the converted SNN pays per timestep: a neuron converted with scale
    ``lambda_l`` fires ``x_i / lambda_l`` spikes per step, each costing ``f_i`` SynOps.

    ``fanout`` has the shape of one sample of ``x`` and carries no gradient (counts of non-zero
    weights are piecewise constant in the weights)."""
    return (_per_sample(x) * fanout.reshape(1, -1).to(x.dtype)).sum(dim=1).mean()


@dataclass(frozen=True)
class Regularizer:
    """One activity regularizer of the registry."""

    name: str
    function: Callable[..., torch.Tensor]
    label: str
    """The paper's symbol (``lp`` is labelled ``L<p>``)."""
    family: Literal["lp", "hoyer"] | None
    """Finding (b) compares the L1/Lp family with the Hoyer family (Table 3)."""
    paper: bool = True
    """Run by the regularization paper; False for its future work (marked in the reports)."""
    fanout: bool = False
    """Takes each activation map's fan-out besides the map (``synops``)."""


REGULARIZERS: dict[str, Regularizer] = {r.name: r for r in (
    Regularizer("l1", l1, "L1", "lp"),
    Regularizer("l2", l2, "L2", None),
    Regularizer("lp", lp, "L", "lp"),
    Regularizer("hoyer", hoyer, "H", "hoyer"),
    Regularizer("hoyer_square", hoyer_square, "Hs", "hoyer"),
    Regularizer("synops", synops, "SynOps", None, paper=False, fanout=True),
)}
WEIGHT_PENALTIES = {"wl1": "wL1"}
"""Weight penalties a spec may join to its activity regularizer (``l1+wl1``), with their labels:
``wl1`` adds ``weight_lambda * sum |W|`` (:func:`lowspike.penalties.weight_l1`), beyond the paper."""

_LP_PATTERN = re.compile(r"^lp(?P<p>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)$")
_POINT_PATTERN = re.compile(r"^(?P<spec>.+?)-(?P<lam>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)$")
_NAMED = tuple(name for name in REGULARIZERS if name != "lp")


def parse_regularizer(spec: str) -> tuple[str, dict[str, float]]:
    """Split an activity regularizer spec into its registry name and keyword arguments:
    ``lp0.5`` -> ``("lp", {"p": 0.5})`` (any p in (0, 1]), a registry name -> ``(name, {})``."""
    if spec in REGULARIZERS and spec != "lp":
        return spec, {}
    match = _LP_PATTERN.match(spec)
    if match is None:
        raise ValueError(
            f"unknown regularizer; allowed: {', '.join(_NAMED)} or lp<p> with p in (0, 1] (e.g. lp0.5), "
            f"optionally joined with a weight penalty: <regularizer>+{'|'.join(WEIGHT_PENALTIES)} (e.g. l1+wl1)"
        )
    p = float(match.group("p"))
    if not 0.0 < p <= 1.0:
        raise ValueError("lp<p> needs p in (0, 1]")
    return "lp", {"p": p}


def split_point_spec(spec: str) -> tuple[str, str | None]:
    """``"l1+wl1"`` -> ``("l1", "wl1")``: the activity regularizer and the weight penalty trained
    jointly with it (None for the paper's activity-only regularizers)."""
    activity, plus, weight = spec.partition("+")
    if plus and weight not in WEIGHT_PENALTIES:
        raise ValueError(f"unknown weight penalty {weight!r}; allowed: {', '.join(WEIGHT_PENALTIES)}")
    return activity, (weight if plus else None)


def check_spec(spec: str) -> str:
    """``spec`` when it names a regularizer (with its weight penalty); ValueError otherwise."""
    activity, _ = split_point_spec(spec)
    parse_regularizer(activity)
    return spec


def split_point(point: str) -> tuple[str, float]:
    """``"l1-1e-4"`` -> ``("l1", 0.0001)``: a regularized training of the conversion study."""
    match = _POINT_PATTERN.match(point)
    if match is None:
        raise ValueError("a point is <regularizer>-<lambda>, e.g. l1-1e-4, lp0.5-0.001 or l1+wl1-3e-4")
    lam = float(match.group("lam"))
    if not math.isfinite(lam):
        raise ValueError("lambda must be a finite number")
    return match.group("spec"), lam


def check_point(point: str) -> str:
    """``point`` when it is ``<spec>-<lambda>`` with a valid spec; ValueError otherwise."""
    spec, _ = split_point(point)
    check_spec(spec)
    return point


def entry(spec: str) -> Regularizer:
    """The registry entry of a spec's activity regularizer (``lp0.5`` -> ``lp``)."""
    activity, _ = split_point_spec(spec)
    return REGULARIZERS[parse_regularizer(activity)[0]]


def is_beyond_paper(spec: str) -> bool:
    """A regularizer spec that the regularization paper did not evaluate (marked in the reports)."""
    _, weight = split_point_spec(spec)
    return weight is not None or not entry(spec).paper


def regularizer_label(spec: str, mark_beyond: bool = False) -> str:
    """The paper's name of a spec: ``lp0.5`` -> ``L0.5``, ``hoyer_square`` -> ``Hs``,
    ``l1+wl1`` -> ``L1+wL1``; with ``mark_beyond`` a spec beyond the paper gets a dagger."""
    activity, weight = split_point_spec(spec)
    name, kwargs = parse_regularizer(activity)
    label = f"L{activity[2:]}" if name == "lp" else REGULARIZERS[name].label
    if weight:
        label += f"+{WEIGHT_PENALTIES[weight]}"
    return label + (BEYOND_MARK if mark_beyond and is_beyond_paper(spec) else "")


def build_regularizer(spec: str, l2_form: Literal["squared", "norm"] = "squared",
                      lp_eps: float = 1.0e-6) -> Callable[..., torch.Tensor]:
    """The regularizer named by ``spec`` (e.g. ``"l1"``, ``"lp0.5"``) as a one-argument function
    (two for the fan-out regularizers: the map and its fan-out)."""
    name, kwargs = parse_regularizer(spec)
    if name == "l2":
        kwargs["form"] = l2_form
    if name == "lp":
        kwargs["eps"] = lp_eps
    return partial(REGULARIZERS[name].function, **kwargs)
