"""The penalty terms of the training losses, assembled from the regularizers.

Conversion study (regularization paper): the sum over the hidden layers of Eq. 4
(:func:`activity_penalty`, :func:`synops_penalty`) and, beyond the paper, the L1 weight penalty
with magnitude pruning (:func:`weight_l1`, :func:`prune_small_weights`).

Distillation study: activation and logits regularization, Eqs. 6-10 of the distillation paper
(:data:`PENALTIES`, named by the ``penalty`` of a method of :data:`lowspike.distillation.METHODS`).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch
from torch import nn

from .regularizers import synops

_TINY = 1.0e-12
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def activity_penalty(activations: Sequence[torch.Tensor], regularizer: Callable[..., torch.Tensor],
                     fanouts: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """``sum_l psi(X_l)`` over the hidden activation maps (the sum in Eq. 4 of the regularization
    paper); ``fanouts``, one map per activation map, for the regularizers that take them."""
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
    """The ``synops`` term of the loss: ``sum_l psi_synops(X_l) / f_bar``
    (:func:`lowspike.regularizers.synops`, :func:`mean_fanout`). Dividing by the network's mean
    fan-out (a constant of the weights' sparsity pattern, no gradient) keeps the gradient's
    direction, the SynOps estimate's, and gives lambda the scale of the L1 regularizer's, so one
    lambda grid serves both (the paper sweeps one grid for every regularizer); without it lambda
    would shrink by the mean fan-out (about 100 for the MLP, 400 for LeNet-5)."""
    return activity_penalty(activations, synops, fanouts) / max(mean_fanout(fanouts), 1.0)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]


def weight_l1(model: nn.Module) -> torch.Tensor:
    """L1 weight penalty ``sum_l sum_ij |W_l,ij|`` over the weights (not the biases) of every
    linear and convolutional layer: the weight half of joint weight and activity regularization
    (the regularization paper's Sec. 5 notes that EFLOPS hardly fell because the weights were
    unconstrained; Sorbaro et al. 2020 regularize both)."""
    return torch.stack([m.weight.abs().sum() for m in weight_layers(model)]).sum()


def prune_small_weights(model: nn.Module, threshold: float) -> int:
    """Set the weights with ``|w| < threshold`` of every linear and convolutional layer to zero;
    returns how many were set."""
    pruned = 0
    with torch.no_grad():
        for module in weight_layers(model):
            small = module.weight.abs() < threshold
            pruned += int(small.sum())
            module.weight.masked_fill_(small, 0.0)
    return pruned


def connection_sparsity(model: nn.Module) -> float:
    """Fraction of the weights (not biases) of the linear and convolutional layers that are
    exactly zero (NeuroBench's ConnectionSparsity, without its rounding)."""
    weights = [m.weight for m in weight_layers(model)]
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


PENALTIES: dict[str, Callable[..., torch.Tensor]] = {
    "activation": lambda output, norm: spike_activity_penalty(output.spikes, norm),
    "logits": lambda output, norm: logits_penalty(output.readout, norm),
}
"""The distillation study's regularization terms by the name a method's ``penalty`` gives: a
function of a student's output (:class:`~lowspike.models.spiking.SpikingOutput`) and a norm."""
