"""Response-based knowledge distillation losses of the distillation paper (Sec. III-A).

The total loss (Eq. 1) weighs the cross-entropy with the labels against a distillation
term computed from the teacher's logits::

    L_total = alpha * CE(logits_s, y) + (1 - alpha) * L_KD

with ``L_KD`` one of (registry :data:`KD_LOSSES`, names used by params.yaml's grids):

- ``mse``: Eq. 2, ``||logits_t - logits_s||^2`` per sample (summed over the classes),
  averaged over the batch;
- ``soft_targets``: Eq. 4, ``tau^2 KL(p_t(tau) || p_s(tau))`` with ``p(x, tau)`` the softmax
  at temperature ``tau`` (Eq. 3), averaged over the batch;
- ``heterogeneous``: Eq. 5, ``tau_t tau_s KL(p_t(tau_t) || p_s(tau_s))``.

Spike and logits regularization (Eqs. 6-10) live in :mod:`lowspike.regularizers`.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

KdLoss = Callable[..., torch.Tensor]


def mse_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 2 of the distillation paper: ``mean_b sum_c (logits_t - logits_s)^2``."""
    return (teacher_logits - student_logits).pow(2).sum(dim=1).mean()


def kl_divergence(teacher_probs_log: torch.Tensor, student_probs_log: torch.Tensor) -> torch.Tensor:
    """``mean_b KL(p_t || p_s) = mean_b sum_c p_t (log p_t - log p_s)`` from log-probabilities.

    A class with ``p_t = 0`` contributes 0 (the limit of ``p log p``).
    """
    p_t = teacher_probs_log.exp()
    terms = torch.where(p_t > 0, p_t * (teacher_probs_log - student_probs_log), torch.zeros_like(p_t))
    return terms.sum(dim=1).mean()


def heterogeneous_kd(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau_s: float, tau_t: float
) -> torch.Tensor:
    """Eq. 5 of the distillation paper: ``tau_t tau_s KL(p_t(tau_t) || p_s(tau_s))``.

    ``p(x, tau) = softmax(x / tau)`` (Eq. 3); the product of the temperatures keeps the
    gradient's scale comparable across temperatures, as ``tau^2`` does in Eq. 4.
    """
    log_p_t = F.log_softmax(teacher_logits / tau_t, dim=1)
    log_p_s = F.log_softmax(student_logits / tau_s, dim=1)
    return tau_t * tau_s * kl_divergence(log_p_t, log_p_s)


def soft_target_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 4 of the distillation paper: ``tau^2 KL(p_t(tau) || p_s(tau))`` (Eq. 5 with one temperature)."""
    return heterogeneous_kd(student_logits, teacher_logits, tau_s=tau, tau_t=tau)


KD_LOSSES: dict[str, KdLoss] = {
    "mse": mse_kd,
    "soft_targets": soft_target_kd,
    "heterogeneous": heterogeneous_kd,
}


def kd_loss(method: str, student_logits: torch.Tensor, teacher_logits: torch.Tensor, **setting: float) -> torch.Tensor:
    """The distillation term ``L_KD`` named ``method`` with its setting (``tau``, or ``tau_s``/``tau_t``)."""
    try:
        loss = KD_LOSSES[method]
    except KeyError:
        raise KeyError(f"unknown distillation method {method!r}; allowed: {sorted(KD_LOSSES)}") from None
    return loss(student_logits, teacher_logits, **setting)


def total_loss(ce: torch.Tensor, kd: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 1 of the distillation paper: ``alpha CE + (1 - alpha) L_KD``."""
    return alpha * ce + (1.0 - alpha) * kd
