"""Spiking building blocks: the neuron layer against hand-computed spikes and snntorch's own
step-by-step loop; the surrogate registry."""

import pytest
import snntorch
import torch

from lowspike.models.spiking import SpikingNeurons, fold_time, over_time, unfold_time
from lowspike.snn.surrogates import SURROGATE_DERIVATIVES


def test_if_neurons_hand_computed():
    # I = 0.6 each step, theta = 1, reset by subtraction:
    # U = 0.6, 1.2 (spike), 1.2 + 0.6 - 1 = 0.8, 1.4 (spike)
    current = torch.full((4, 1, 1), 0.6)
    spikes = SpikingNeurons(beta=1.0)(current)
    assert spikes.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]


def test_lif_neurons_hand_computed():
    # beta = 0.5: U = 0.6, 0.9, 1.05 (spike), 0.525 + 0.6 - 1 = 0.125
    current = torch.full((4, 1, 1), 0.6)
    spikes = SpikingNeurons(beta=0.5)(current)
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]


def test_threshold_is_strict():
    spikes = SpikingNeurons(beta=1.0)(torch.full((3, 1), 1.0))
    assert spikes.flatten().tolist() == [0.0, 1.0, 1.0]  # U = 1 (no spike), 2 (spike), 2 + 1 - 1 = 2 (spike)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_matches_a_plain_snntorch_loop(beta):
    torch.manual_seed(0)
    current = torch.randn(7, 5, 3, 4)
    reference = snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="subtract")
    membrane = reference.init_leaky()
    expected = []
    for t in range(7):
        spike, membrane = reference(current[t], membrane)
        expected.append(spike)
    assert torch.equal(SpikingNeurons(beta=beta)(current), torch.stack(expected))


@pytest.mark.parametrize("name", sorted(SURROGATE_DERIVATIVES))
def test_surrogate_gradient_reaches_the_input(name):
    current = torch.full((3, 2), 0.9, requires_grad=True)
    SpikingNeurons(surrogate_name=name)(current).sum().backward()
    assert current.grad is not None and current.grad.abs().sum() > 0


def test_unknown_surrogate_is_refused():
    with pytest.raises(KeyError, match="allowed"):
        SpikingNeurons(surrogate_name="relu")


def test_time_folding_round_trip():
    x = torch.arange(24.0).reshape(2, 3, 4)
    assert fold_time(x).shape == (6, 4)
    assert torch.equal(unfold_time(fold_time(x), 2), x)
    assert torch.equal(over_time(torch.nn.Identity(), x), x)


@pytest.mark.parametrize("shape", [(3, 5, 49), (3, 5, 48), (2, 4, 7, 9), (2, 4, 8, 8)])
def test_average_pooling_by_two_is_pytorchs_bit_for_bit_forward_and_backward(shape):
    from torch.nn import functional as F

    from lowspike.models.spiking import avg_pool2

    torch.manual_seed(0)
    x = torch.randn(shape, requires_grad=True)
    reference = x.detach().clone().requires_grad_(True)
    pool = F.avg_pool1d if len(shape) == 3 else F.avg_pool2d
    ours, theirs = avg_pool2(x), pool(reference, 2)
    assert torch.equal(ours, theirs)
    grad = torch.randn_like(ours)
    ours.backward(grad)
    theirs.backward(grad)
    assert torch.equal(x.grad, reference.grad)
