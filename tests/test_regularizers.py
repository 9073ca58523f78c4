import math

import pytest
import torch

from lowspike.regularizers import activity_penalty, build_regularizer, hoyer, hoyer_square, l1, l2, lp

# Two samples of a 2x2 activation map:
#   sample 0 = [3, 0, 4, 0]  -> |x|_1 = 7, sum x^2 = 25, |x|_2 = 5
#   sample 1 = [0, 0, 0, 0]  -> everything 0
X = torch.tensor([[[3.0, 0.0], [4.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])


def test_l1_is_batch_mean_of_per_sample_sums():
    assert l1(X).item() == pytest.approx((7 + 0) / 2)


def test_l2_squared_and_norm_forms():
    assert l2(X, "squared").item() == pytest.approx((25 + 0) / 2)
    assert l2(X, "norm").item() == pytest.approx((5 + 0) / 2, abs=1e-5)


def test_lp_hand_computed():
    # p = 0.5, eps = 0: sample 0 -> sqrt(3) + sqrt(4) = 3.7320508; sample 1 -> 0
    assert lp(X, p=0.5, eps=0.0).item() == pytest.approx((math.sqrt(3) + 2.0) / 2)
    # eps adds n * eps^p per sample: 4 * 0.01^0.5 = 0.4 for each of the two samples
    expected = ((math.sqrt(3.01) + math.sqrt(4.01) + 2 * 0.1) + 4 * 0.1) / 2
    assert lp(X, p=0.5, eps=0.01).item() == pytest.approx(expected, rel=1e-6)


def test_hoyer_and_hoyer_square_hand_computed_and_silent_sample_is_zero():
    assert hoyer(X).item() == pytest.approx((7 / 5 + 0) / 2, rel=1e-6)
    assert hoyer_square(X).item() == pytest.approx((49 / 25 + 0) / 2, rel=1e-6)


def test_hoyer_family_is_scale_invariant():
    x = torch.rand(4, 10)
    assert hoyer(3.0 * x).item() == pytest.approx(hoyer(x).item(), rel=1e-5)
    assert hoyer_square(3.0 * x).item() == pytest.approx(hoyer_square(x).item(), rel=1e-5)


def test_build_regularizer_parses_specs():
    assert build_regularizer("lp0.5", lp_eps=1e-12)(X).item() == pytest.approx((math.sqrt(3) + 2.0) / 2, rel=1e-5)
    assert build_regularizer("l2", l2_form="norm")(X).item() == pytest.approx(2.5, rel=1e-5)
    with pytest.raises(ValueError):
        build_regularizer("l3")
    with pytest.raises(ValueError):
        build_regularizer("lp0")


def test_activity_penalty_sums_layers_and_gradients_are_finite_at_zero():
    a = X.clone().requires_grad_(True)
    b = torch.zeros(2, 3, requires_grad=True)
    for spec in ["l1", "l2", "lp0.5", "lp0.01", "hoyer", "hoyer_square"]:
        fn = build_regularizer(spec)
        penalty = activity_penalty([a, b], fn)
        assert penalty.item() == pytest.approx(fn(a).item() + fn(b).item(), rel=1e-6)
        grads = torch.autograd.grad(penalty, [a, b])
        assert all(torch.isfinite(g).all() for g in grads)


# ------------------------------------------------ spike and logits regularization (distillation paper)

from lowspike.regularizers import logits_penalty, normalized_layer_norm, spike_activity_penalty  # noqa: E402


def test_spike_l1_eq6_eq9_is_mean_firing_probability():
    # layer 1: T=2, B=2, 3 neurons; sample 0 fires 3 spikes, sample 1 fires 1
    a1 = torch.zeros(2, 2, 3)
    a1[0, 0, :] = 1.0
    a1[1, 1, 0] = 1.0
    # layer 2: T=2, B=2, 1 neuron; sample 0 fires twice, sample 1 never
    a2 = torch.zeros(2, 2, 1)
    a2[:, 0, 0] = 1.0
    layer1 = ((3 + 1) / 2) / (3 * 2)
    layer2 = ((2 + 0) / 2) / (1 * 2)
    assert spike_activity_penalty([a1, a2], "l1").item() == pytest.approx((layer1 + layer2) / 2)


def test_spike_l2_eq8_eq9_hand_computed():
    a = torch.zeros(2, 2, 4)  # T=2, B=2, n=4
    a[0, 0, :] = 1.0          # sample 0: 4 spikes -> sqrt(4) = 2
    a[:, 1, 0] = 1.0          # sample 1: 2 spikes -> sqrt(2)
    expected = ((2.0 + math.sqrt(2.0)) / 2) / (4 * 2)
    assert spike_activity_penalty([a], "l2").item() == pytest.approx(expected, rel=1e-6)


def test_logits_l2_and_l2sq_eq7_eq8():
    readout = torch.tensor([[[3.0, 4.0]], [[0.0, 0.0]]])  # T=2, B=1, C=2
    assert logits_penalty(readout, "l2").item() == pytest.approx(5.0 / (2 * 2), rel=1e-6)
    assert logits_penalty(readout, "l2sq").item() == pytest.approx(25.0 / (2 * 2))


def test_silent_layers_give_zero_penalty_and_finite_gradient():
    spikes = torch.zeros(3, 4, 5, requires_grad=True)
    for norm in ("l1", "l2"):
        value = spike_activity_penalty([spikes], norm)
        assert value.item() == pytest.approx(0.0, abs=1e-5)
        (grad,) = torch.autograd.grad(value, spikes)
        assert torch.isfinite(grad).all()


def test_norm_names_are_checked():
    with pytest.raises(ValueError, match="l1 or l2"):
        spike_activity_penalty([torch.zeros(1, 1, 1)], "l2sq")
    with pytest.raises(ValueError, match="l2 or l2sq"):
        logits_penalty(torch.zeros(1, 1, 1), "l1")
    with pytest.raises(ValueError, match="no tensors"):
        normalized_layer_norm([], "l1")
