import snntorch
import torch

from .reference import if_step


def test_if_step_hand_computed_train():
    # currents 0.6, 0.6, 0.6, 0.6 -> v: .6, 1.2 (fire -> .2), .8, 1.4 (fire -> .4)
    v = torch.zeros(1)
    spikes = [if_step(v, torch.tensor([0.6])).item() for _ in range(4)]
    assert spikes == [0.0, 1.0, 0.0, 1.0]
    assert abs(v.item() - 0.4) < 1e-6


def test_exactly_at_threshold_does_not_fire_like_snntorch():
    v = torch.zeros(1)
    assert if_step(v, torch.tensor([1.0])).item() == 0.0


def test_matches_snntorch_leaky_beta_one_subtract_spike_for_spike():
    g = torch.Generator().manual_seed(0)
    currents = torch.rand(50, 8, 16, generator=g) * 1.5 - 0.25
    reference = snntorch.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract")
    mem = reference.init_leaky()
    v = torch.zeros(8, 16)
    for t in range(50):
        expected, mem = reference(currents[t], mem)
        assert torch.equal(if_step(v, currents[t]), expected)
