"""Activity regularizers applied to the hidden activation maps of a DNN before conversion.

Each regularizer is a pure function of one activation map ``x`` of shape ``[B, ...]``:
it is computed per sample over all the neurons of the map and averaged over the batch.
The training loss is Eq. 4 of the regularization paper::

    L = CE + lambda * sum_l psi(X_l)        (sum over the hidden layers l)

Registry names (``regularization.regularizers`` in params.yaml): ``l1``, ``l2``,
``hoyer``, ``hoyer_square``, and ``lp<p>`` for the Lp surrogate of L0 with p in (0, 1]; beyond
the paper, ``synops`` (activity weighted by fan-out) and ``<regularizer>+wl1`` (with an L1 weight
penalty, :func:`weight_l1`).

The spike and logits regularizers of the distillation paper (Eqs. 6-10) are at the end:
:func:`spike_activity_penalty` and :func:`logits_penalty`.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Literal, Sequence

import torch
from torch import nn

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


def synops(x: torch.Tensor, fanout: torch.Tensor) -> torch.Tensor:
    """SynOps regularizer (Sorbaro et al. 2020, reference [10] of the regularization paper; beyond
    the paper): ``psi(X_l) = mean_b sum_i x_bi f_i`` with ``f_i`` the fan-out of neuron i, the
    number of non-zero weights that read it (through the pooling, as our SynOps count it,
    :func:`lowspike.metrics.dnn_fanouts`). Summed over the hidden layers it is the DNN-side
    estimate of what the converted SNN pays per timestep: a neuron converted with scale
    ``lambda_l`` fires ``x_i / lambda_l`` spikes per step, each costing ``f_i`` SynOps.

    ``fanout`` has the shape of one sample of ``x`` and carries no gradient (counts of non-zero
    weights are piecewise constant in the weights)."""
    return (_per_sample(x) * fanout.reshape(1, -1).to(x.dtype)).sum(dim=1).mean()


REGULARIZERS: dict[str, Callable[..., torch.Tensor]] = {
    "l1": l1,
    "l2": l2,
    "lp": lp,
    "hoyer": hoyer,
    "hoyer_square": hoyer_square,
    "synops": synops,
}
FANOUT_REGULARIZERS = ("synops",)
"""Regularizers that take each layer's fan-out map besides its activations."""


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


def activity_penalty(activations: Sequence[torch.Tensor], regularizer: Regularizer,
                     fanouts: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """``sum_l psi(X_l)`` over the hidden activation maps (the sum in Eq. 4); ``fanouts``, one
    map per activation map, for the regularizers of :data:`FANOUT_REGULARIZERS`."""
    if not activations:
        raise ValueError("no hidden activation maps to regularize")
    if fanouts is None:
        return torch.stack([regularizer(x) for x in activations]).sum()
    return torch.stack([regularizer(x, f) for x, f in zip(activations, fanouts, strict=True)]).sum()


def mean_fanout(fanouts: Sequence[torch.Tensor]) -> float:
    """``f_bar = sum_l sum_i f_i / sum_l n_l``: the mean fan-out of the hidden neurons."""
    neurons = sum(f.numel() for f in fanouts)
    return float(sum(float(f.sum()) for f in fanouts) / neurons) if neurons else 0.0


def synops_penalty(activations: Sequence[torch.Tensor], fanouts: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ``synops`` term of the loss: ``sum_l psi_synops(X_l) / f_bar`` (:func:`synops`,
    :func:`mean_fanout`). Dividing by the network's mean fan-out (a constant of the weights'
    sparsity pattern, no gradient) keeps the gradient's direction, the SynOps estimate's, and gives
    lambda the scale of the L1 regularizer's, so one lambda grid serves both (the paper sweeps one
    grid for every regularizer); without it lambda would shrink by the mean fan-out (about 100 for
    the MLP, 400 for LeNet-5)."""
    return activity_penalty(activations, synops, fanouts) / max(mean_fanout(fanouts), 1.0)


def weight_l1(model: nn.Module) -> torch.Tensor:
    """L1 weight penalty ``sum_l sum_ij |W_l,ij|`` over the weights (not the biases) of every
    linear and convolutional layer: the weight half of joint weight and activity regularization
    (the regularization paper's Sec. 5 notes that EFLOPS hardly fell because the weights were
    unconstrained; Sorbaro et al. 2020 regularize both)."""
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    return torch.stack([w.abs().sum() for w in weights]).sum()


def prune_small_weights(model: nn.Module, threshold: float) -> int:
    """Set the weights with ``|w| < threshold`` of every linear and convolutional layer to zero;
    returns how many were set."""
    pruned = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                small = module.weight.abs() < threshold
                pruned += int(small.sum())
                module.weight.masked_fill_(small, 0.0)
    return pruned


def connection_sparsity(model: nn.Module) -> float:
    """Fraction of the weights (not biases) of the linear and convolutional layers that are
    exactly zero (NeuroBench's ConnectionSparsity, without its rounding)."""
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0


# ------------------------------------------------- distillation paper, Eqs. 6-10

SpikeNorm = Literal["l1", "l2"]
LogitsNorm = Literal["l2", "l2sq"]


def _norm_per_sample(x: torch.Tensor, norm: str) -> torch.Tensor:
    """Eqs. 6-8 of the distillation paper on a tensor ``[T, B, ...]``, one value per sample ``[B]``.

    ``l1``: ``sum_i t_i`` (spikes are 0/1, so no absolute value, Eq. 6); ``l2sq``:
    ``sum_i t_i^2`` (Eq. 7); ``l2``: ``sqrt(sum_i t_i^2)`` (Eq. 8), the sum running over the
    timesteps and the neurons of the layer.
    """
    others = [0, *range(2, x.dim())]  # a reduction over every dim but the batch, without a transposed copy
    if norm == "l1":
        return x.sum(dim=others)
    squares = x.square().sum(dim=others)
    if norm == "l2sq":
        return squares
    if norm == "l2":
        return torch.sqrt(squares + _TINY)
    raise ValueError(f"unknown norm {norm!r}; allowed: l1, l2, l2sq")


def normalized_layer_norm(tensors: Sequence[torch.Tensor], norm: str) -> torch.Tensor:
    """Eq. 9 of the distillation paper: ``(1/m) sum_j norm(a_j) / (n_j T)``, averaged over the batch.

    Each ``a_j`` is ``[T, B, *neuron_shape]``; ``n_j`` its number of neurons per timestep. The
    norm is taken per sample (over timesteps and neurons), then averaged over the batch.
    """
    if not tensors:
        raise ValueError("no tensors to regularize")
    terms = []
    for a in tensors:
        timesteps = a.shape[0]
        neurons = a[0, 0].numel()
        terms.append(_norm_per_sample(a, norm).mean() / (neurons * timesteps))
    return torch.stack(terms).mean()


def spike_activity_penalty(spikes: Sequence[torch.Tensor], norm: SpikeNorm = "l1") -> torch.Tensor:
    """Activation regularization of the distillation paper: Eq. 9 over the spike tensors of every
    spiking layer with the ``l1`` (Eq. 6) or ``l2`` (Eq. 8) norm; the loss adds ``lambda`` times it
    (Eq. 10). With ``l1`` it is the mean firing probability per neuron and timestep, in [0, 1]."""
    if norm not in ("l1", "l2"):
        raise ValueError(f"activation regularization norm must be l1 or l2, got {norm!r}")
    return normalized_layer_norm(spikes, norm)


def logits_penalty(readout: torch.Tensor, norm: LogitsNorm = "l2") -> torch.Tensor:
    """Logits regularization of the distillation paper: Eq. 9 with ``m = 1`` over the readout
    ``[T, B, C]`` (the per-timestep logits, ``n = C``), norm ``l2`` (Eq. 8) or ``l2sq`` (Eq. 7)."""
    if norm not in ("l2", "l2sq"):
        raise ValueError(f"logits regularization norm must be l2 or l2sq, got {norm!r}")
    return normalized_layer_norm([readout], norm)
