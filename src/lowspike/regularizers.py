"""Activity regularizers applied to the hidden activation maps of a DNN before conversion.

Each regularizer is a pure function of one activation map ``x`` of shape ``[B, ...]``:
it is computed per sample over all the neurons of the map and averaged over the batch.
The training loss is Eq. 4 of the regularization paper::

    L = CE + lambda * sum_l psi(X_l)        (sum over the hidden layers l)

Registry names (``regularization.regularizers`` in params.yaml): ``l1``, ``l2``,
``hoyer``, ``hoyer_square``, and ``lp<p>`` for the Lp surrogate of L0 with p in (0, 1].
The spike/logit regularizers of the distillation paper live in :mod:`lowspike.snn.activity`.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Literal, Sequence

import torch

from .config import parse_regularizer

Regularizer = Callable[[torch.Tensor], torch.Tensor]

_TINY = 1.0e-12


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
    return torch.sqrt(squares + _TINY).mean()


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
    norm2 = torch.sqrt(flat.pow(2).sum(dim=1) + _TINY)
    return (norm1 / norm2).mean()


def hoyer_square(x: torch.Tensor) -> torch.Tensor:
    """Hoyer-Square regularizer, Eq. 3 of the regularization paper: ``mean_b ||x_b||_1^2 / ||x_b||_2^2``.

    A sample whose activations are all zero contributes 0.
    """
    flat = _per_sample(x)
    norm1 = flat.abs().sum(dim=1)
    return (norm1.pow(2) / (flat.pow(2).sum(dim=1) + _TINY)).mean()


REGULARIZERS: dict[str, Callable[..., torch.Tensor]] = {
    "l1": l1,
    "l2": l2,
    "lp": lp,
    "hoyer": hoyer,
    "hoyer_square": hoyer_square,
}


def build_regularizer(
    spec: str, l2_form: Literal["squared", "norm"] = "squared", lp_eps: float = 1.0e-6
) -> Regularizer:
    """The regularizer named by ``spec`` (e.g. ``"l1"``, ``"lp0.5"``) as a one-argument function."""
    name, kwargs = parse_regularizer(spec)
    if name == "l2":
        kwargs["form"] = l2_form
    if name == "lp":
        kwargs["eps"] = lp_eps
    return partial(REGULARIZERS[name], **kwargs)


def activity_penalty(activations: Sequence[torch.Tensor], regularizer: Regularizer) -> torch.Tensor:
    """``sum_l psi(X_l)`` over the hidden activation maps (the sum in Eq. 4)."""
    if not activations:
        raise ValueError("no hidden activation maps to regularize")
    return torch.stack([regularizer(x) for x in activations]).sum()
