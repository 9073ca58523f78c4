"""KD losses of the distillation paper (Eqs. 1-5) on hand-computed cases and against torch references."""

import math

import pytest
import torch
import torch.nn.functional as F

from lowspike.distillation import METHODS, heterogeneous_kd, kl_divergence, mse_kd, soft_target_kd, total_loss


def test_mse_kd_eq2_sums_classes_and_averages_batch():
    student = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    teacher = torch.tensor([[1.0, 0.0, 5.0], [1.0, 1.0, 1.0]])
    # sample 0: 0 + 4 + 4 = 8 ; sample 1: 1 + 1 + 1 = 3 ; mean 5.5
    assert mse_kd(student, teacher).item() == pytest.approx(5.5)


def test_soft_targets_eq4_hand_computed():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    # tau = 1: p_t = (3/4, 1/4), p_s = (1/2, 1/2)
    expected_tau1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert soft_target_kd(student, teacher, tau=1.0).item() == pytest.approx(expected_tau1, rel=1e-6)
    # tau = 2: p_t = (sqrt3, 1) / (1 + sqrt3), multiplied by tau^2 = 4
    r3 = math.sqrt(3.0)
    p0, p1 = r3 / (1 + r3), 1 / (1 + r3)
    expected_tau2 = 4 * (p0 * math.log(p0 / 0.5) + p1 * math.log(p1 / 0.5))
    assert soft_target_kd(student, teacher, tau=2.0).item() == pytest.approx(expected_tau2, rel=1e-6)


def test_heterogeneous_eq5_hand_computed():
    student = torch.tensor([[math.log(2.0), 0.0]])
    teacher = torch.tensor([[math.log(9.0), 0.0]])
    # tau_s = 1: p_s = (2/3, 1/3); tau_t = 2: p_t = (3/4, 1/4); factor tau_t * tau_s = 2
    expected = 2 * (0.75 * math.log(0.75 / (2 / 3)) + 0.25 * math.log(0.25 / (1 / 3)))
    assert heterogeneous_kd(student, teacher, tau_s=1.0, tau_t=2.0).item() == pytest.approx(expected, rel=1e-5)


def test_kl_matches_torch_kl_div_batchmean():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g) * 3
    for tau_s, tau_t in [(1.0, 1.0), (2.0, 4.0), (4.0, 1.0)]:
        log_p_s = F.log_softmax(student / tau_s, dim=1)
        log_p_t = F.log_softmax(teacher / tau_t, dim=1)
        reference = tau_s * tau_t * F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
        assert heterogeneous_kd(student, teacher, tau_s, tau_t).item() == pytest.approx(reference.item(), rel=1e-5)


def test_kl_of_identical_distributions_is_zero_and_zero_probabilities_are_finite():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    assert kl_divergence(F.log_softmax(logits, 1), F.log_softmax(logits, 1)).item() == pytest.approx(0.0, abs=1e-7)
    hard_teacher = torch.log(torch.tensor([[1.0, 0.0, 0.0]]))
    value = kl_divergence(hard_teacher, F.log_softmax(logits, 1))
    assert torch.isfinite(value)
    assert value.item() == pytest.approx(-F.log_softmax(logits, 1)[0, 0].item(), rel=1e-6)


def test_total_loss_eq1_and_registry():
    assert total_loss(torch.tensor(2.0), torch.tensor(4.0), 0.1).item() == pytest.approx(0.1 * 2 + 0.9 * 4)
    kd_terms = {name: (m.kd, m.kd_args) for name, m in METHODS.items() if m.kd is not None}
    assert kd_terms == {"mse": (mse_kd, ()), "soft_targets": (soft_target_kd, ("tau",)),
                        "heterogeneous": (heterogeneous_kd, ("tau_s", "tau_t")),
                        "combined": (heterogeneous_kd, ("tau_s", "tau_t"))}
    s, t = torch.zeros(1, 2), torch.ones(1, 2)
    assert soft_target_kd(s, t, tau=3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_kd_gradient_flows_to_student_only():
    student = torch.randn(4, 5, requires_grad=True)
    teacher = torch.randn(4, 5, requires_grad=True)
    heterogeneous_kd(student, teacher.detach(), 2.0, 4.0).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None
