"""The simulator against a plain step-by-step snntorch reference, spike for spike."""

import snntorch
import torch
from torch import nn
from torch.nn import functional as F

from lowspike.snn.conversion import convert, nonzero_percentile
from lowspike.snn.simulation import apply_layer, simulate_batch


def _lenet_like() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Module()
    model.layers = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 3),
    )
    return model


def _reference_spikes(snn: dict, inputs: torch.Tensor, timesteps: int) -> list[torch.Tensor]:
    """Every layer's spikes at every step, from snntorch.Leaky(beta=1, subtract) layers."""
    weight_layers = [s for s in snn["layers"] if s["kind"] in ("linear", "conv")]
    neurons = [snntorch.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract") for _ in weight_layers]
    mems = [n.init_leaky() for n in neurons]
    totals = [0.0] * len(weight_layers)
    per_step = []
    for _ in range(timesteps):
        x, slot, step = inputs, 0, []
        for spec in snn["layers"]:
            if spec["kind"] in ("linear", "conv"):
                x, mems[slot] = neurons[slot](apply_layer(spec, x), mems[slot])
                step.append(x.sum().item())
                slot += 1
            else:
                x = apply_layer(spec, x)
        per_step.append(torch.tensor(step))
    return per_step


def test_simulator_matches_snntorch_reference_spike_for_spike():
    model = _lenet_like()
    inputs = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    snn = convert(model, inputs, percentile=100.0)
    out = simulate_batch(snn, inputs, timesteps=30)
    reference = torch.stack(_reference_spikes(snn, inputs, 30))
    assert reference.sum() > 0
    assert torch.equal(out.spikes_per_layer, reference.to(out.spikes_per_layer.dtype))


def test_percentile_100_normalizes_every_layer_maximum_to_one():
    model = _lenet_like()
    inputs = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    snn = convert(model, inputs, percentile=100.0)
    with torch.no_grad():
        x = inputs
        for spec in snn["layers"]:
            x = apply_layer(spec, x)
            if spec["kind"] in ("linear", "conv"):
                assert abs(x.clamp_min(0).max().item() - 1.0) < 1e-5
                x = F.relu(x)


def test_nonzero_percentile_ignores_zeros_and_handles_silence():
    assert nonzero_percentile(torch.tensor([0.0, 0.0, 1.0, 3.0]), 100.0) == 3.0
    assert nonzero_percentile(torch.tensor([0.0, 0.0, 1.0, 3.0]), 50.0) == 2.0
    assert nonzero_percentile(torch.zeros(5), 99.9) == 0.0


def test_silent_network_gives_zero_spikes_and_defined_predictions():
    model = _lenet_like()
    for p in model.parameters():
        nn.init.zeros_(p)
    snn = convert(model, torch.rand(4, 1, 8, 8), percentile=99.9)
    out = simulate_batch(snn, torch.rand(4, 1, 8, 8), timesteps=5)
    assert out.spikes_per_sample.sum().item() == 0
    assert out.predictions.shape == (5, 4)


def test_synops_equal_spikes_times_fanout_on_a_dense_net():
    from lowspike.metrics import spiking_fanouts

    snn = {"input_shape": [4], "layers": [
        {"kind": "linear", "weight": torch.full((3, 4), 0.3), "bias": torch.zeros(3)},
        {"kind": "linear", "weight": torch.ones(5, 3), "bias": torch.zeros(5)}]}
    inputs = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.5, 0.0, 0.0, 0.0]])
    out = simulate_batch(snn, inputs, timesteps=10, fanouts=spiking_fanouts(snn))
    # sample 0: hidden current 1.2 > 1 every step -> 3 neurons x 10 spikes, each to 5 outputs = 150
    # sample 1: current 0.15 per step crosses 1 at step 7 (1.05) -> 3 spikes x 5 = 15
    assert out.synops_per_sample.tolist() == [150.0, 15.0]
    assert out.spikes_per_layer[:, 0].sum().item() == 33
