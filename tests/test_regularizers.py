import math

import pytest
import torch

from lowspike.penalties import activity_penalty
from lowspike.regularizers import build_regularizer, hoyer, hoyer_square, l1, l2, lp

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

from lowspike.penalties import logits_penalty, normalized_layer_norm, spike_activity_penalty  # noqa: E402


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


# ------------------------------------------------- beyond the paper: SynOps and weight penalties


def test_synops_weights_each_activation_by_its_fanout():
    from lowspike.regularizers import synops

    fanout = torch.tensor([[2.0, 0.0], [5.0, 1.0]])
    # sample 0: 3 * 2 + 4 * 5 = 26; sample 1: 0 -> mean 13
    assert synops(X, fanout).item() == 13.0


def test_dnn_fanouts_count_nonzero_weights_through_pooling():
    from lowspike.snn.activity import dnn_fanouts
    from lowspike.models import build_dnn

    mlp = build_dnn("mlp", (1, 4, 4), 3)
    with torch.no_grad():
        mlp.layers[3].weight[:, 7] = 0.0  # neuron 7 of the first hidden layer feeds no one
        mlp.layers[3].weight[:10, 0] = 0.0  # neuron 0 feeds 90 of the 100
        mlp.layers[5].weight[:, 2] = 0.0
    first, second = dnn_fanouts(mlp, (1, 4, 4))
    assert first.shape == (300,) and second.shape == (100,)
    assert (first[7], first[0], first[1], second[2], second[3]) == (0.0, 90.0, 100.0, 0.0, 3.0)

    lenet = build_dnn("lenet5", (1, 28, 28), 10)
    conv1_map, conv2_map, fc1, fc2 = dnn_fanouts(lenet, (1, 28, 28))
    assert conv1_map.shape == (6, 28, 28) and conv2_map.shape == (16, 10, 10)
    # a conv1 neuron in the middle feeds its pooled cell (7, 7) of the 14x14 map, read by all 16
    # channels at all 25 kernel offsets of conv2 (no padding, cell far from the border)
    assert conv1_map[0, 14, 14] == conv1_map[0, 15, 15] == 16 * 25
    assert conv1_map[0, 0, 0] == 16  # cell (0, 0) is read by one output position per channel
    assert (fc1 == 84).all() and (fc2 == 10).all()


def test_the_synops_penalty_is_the_dnn_side_estimate_of_the_converted_snn_synops():
    """A one-hidden-layer network converted with percentile 100 (lambda = the largest
    activation): each hidden neuron's input current is x_i / lambda_1 <= 1 per step, so over T steps
    it fires T x_i / lambda_1 spikes up to one (reset by subtraction, fire on > 1), and the SNN's
    SynOps equal T / lambda_1 times the penalty's estimate sum_i x_i f_i, within sum_i f_i."""
    from lowspike.snn.activity import dnn_fanouts, spiking_fanouts
    from lowspike.models import build_dnn
    from lowspike.penalties import activity_penalty, mean_fanout, synops_penalty
    from lowspike.regularizers import synops
    from lowspike.snn.convert import convert
    from lowspike.snn.simulation import simulate_batch

    torch.manual_seed(0)
    model = build_dnn("mlp", (1, 6, 6), 4)
    model.layers = torch.nn.Sequential(*list(model.layers)[:3], model.layers[-1].__class__(300, 4))
    with torch.no_grad():
        model.layers[3].weight[:, ::3] = 0.0  # a third of the hidden neurons feed no one
    x = torch.rand(5, 1, 6, 6)
    with torch.no_grad():
        _, hidden = model.forward_with_activations(x)
    fanouts = dnn_fanouts(model, (1, 6, 6))
    estimate = float(activity_penalty(hidden, synops, fanouts))  # mean over samples of sum_i x_i f_i

    timesteps = 2000
    snn = convert(model.eval(), x, percentile=100.0)
    out = simulate_batch(snn, x, timesteps, fanouts=spiking_fanouts(snn), mode="dense")
    scale = snn["lambdas"][0]
    predicted = timesteps * estimate / scale
    bound = float(fanouts[0].sum())  # one spike per neuron
    assert abs(float(out.synops_per_sample.mean()) - predicted) <= bound
    assert bound < 0.01 * predicted  # a tight check, not a loose one
    assert float(synops_penalty(hidden, fanouts)) == pytest.approx(estimate / mean_fanout(fanouts), rel=1e-6)


def test_weight_l1_prune_and_connection_sparsity_hand_computed():
    from lowspike.penalties import connection_sparsity, prune_small_weights, weight_l1

    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.0005, 0.0], [-2.0, 0.002, 0.0001]]))
        layer.bias.fill_(7.0)  # biases are not penalized nor counted
    model = torch.nn.Sequential(layer, torch.nn.ReLU())
    assert weight_l1(model).item() == pytest.approx(0.5 + 0.0005 + 2.0 + 0.002 + 0.0001)
    assert connection_sparsity(model) == pytest.approx(1 / 6)
    assert prune_small_weights(model, 1.0e-3) == 3  # -0.0005, 0.0 and 0.0001
    assert layer.weight.tolist() == [[0.5, 0.0, 0.0], [-2.0, pytest.approx(0.002), 0.0]]
    assert connection_sparsity(model) == pytest.approx(3 / 6)
