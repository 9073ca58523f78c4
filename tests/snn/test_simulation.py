"""The simulator against a plain step-by-step snntorch reference, spike for spike."""

import snntorch
import torch
from torch import nn
from torch.nn import functional as F

from lowspike.snn.convert import convert, nonzero_percentile
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
    from lowspike.snn.activity import spiking_fanouts

    snn = {"input_shape": [4], "layers": [
        {"kind": "linear", "weight": torch.full((3, 4), 0.3), "bias": torch.zeros(3)},
        {"kind": "linear", "weight": torch.ones(5, 3), "bias": torch.zeros(5)}]}
    inputs = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.5, 0.0, 0.0, 0.0]])
    out = simulate_batch(snn, inputs, timesteps=10, fanouts=spiking_fanouts(snn))
    # sample 0: hidden current 1.2 > 1 every step -> 3 neurons x 10 spikes, each to 5 outputs = 150
    # sample 1: current 0.15 per step crosses 1 at step 7 (1.05) -> 3 spikes x 5 = 15
    assert out.synops_per_sample.tolist() == [150.0, 15.0]
    assert out.spikes_per_layer[:, 0].sum().item() == 33


def _random_snn(dtype: torch.dtype, seed: int) -> tuple[dict, torch.Tensor]:
    """A converted LeNet-like net with random weights, in ``dtype`` (float64: the dense and
    event paths sum in different orders; float64 keeps every threshold decision identical)."""
    torch.manual_seed(seed)
    model = nn.Module()
    model.layers = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 10), nn.ReLU(), nn.Linear(10, 3),
    ).to(dtype)
    inputs = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return convert(model, inputs, percentile=100.0), inputs


def test_event_path_gives_the_dense_spikes_on_random_nets_in_float64():
    for seed in range(2):
        snn, inputs = _random_snn(torch.float64, seed)
        for coding in ("analog", "poisson"):
            dense = simulate_batch(snn, inputs, 20, coding, torch.Generator().manual_seed(seed), mode="dense")
            for mode in ("event", "auto"):
                other = simulate_batch(snn, inputs, 20, coding, torch.Generator().manual_seed(seed), mode=mode)
                assert dense.spikes_per_layer.sum() > 0
                assert torch.equal(dense.spikes_per_layer, other.spikes_per_layer)
                assert torch.equal(dense.predictions, other.predictions)
                assert torch.equal(dense.spikes_per_sample, other.spikes_per_sample)


def test_event_path_matches_the_plain_reference_in_float64():
    """Plain loop: every layer recomputed each step, IF by :func:`if_step` (itself checked
    against snntorch.Leaky in tests/snn/test_neurons.py; snntorch returns float32 spikes)."""
    from .reference import if_step

    snn, inputs = _random_snn(torch.float64, 7)
    out = simulate_batch(snn, inputs, 20, mode="event")
    weight_layers = sum(s["kind"] in ("linear", "conv") for s in snn["layers"])
    mems: list = [None] * weight_layers
    per_step = []
    for _ in range(20):
        x, slot, step = inputs, 0, []
        for spec in snn["layers"]:
            x = apply_layer(spec, x)
            if spec["kind"] in ("linear", "conv"):
                mems[slot] = torch.zeros_like(x) if mems[slot] is None else mems[slot]
                x = if_step(mems[slot], x)
                step.append(x.sum().item())
                slot += 1
        per_step.append(step)
    assert out.spikes_per_layer.sum() > 0
    assert out.spikes_per_layer.tolist() == per_step


def test_event_kernels_equal_dense_kernels_on_hand_cases():
    from lowspike.snn.simulation import conv_events, linear_events

    weight = torch.tensor([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    out = linear_events(x, weight.t().contiguous(), torch.tensor([0.25, -1.0]))
    assert out.tolist() == [[5.25, 39.0], [0.25, -1.0], [1.25, 7.0]]
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    xs = (torch.rand(2, 3, 7, 7, generator=g) < 0.2).double()
    for stride, padding in (((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 2), (0, 2))):
        dense = F.conv2d(xs, w, b, stride=stride, padding=padding)
        event = conv_events(xs, w, b, stride, padding, tuple(dense.shape[-2:]))
        assert torch.allclose(dense, event, atol=1e-12, rtol=0)


def test_pool_sum_is_bit_identical_to_avg_pool_on_spikes():
    from lowspike.snn.simulation import pool_sum

    spikes = (torch.rand(3, 2, 9, 7, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    for k in (2, 3):
        assert torch.equal(pool_sum(spikes, k), F.avg_pool2d(spikes, k))
    assert pool_sum(torch.ones(1, 1, 2, 2), 2).item() == 1.0


def test_dense_mode_keeps_counts_and_synops_of_the_per_step_formulas():
    from lowspike.snn.activity import spiking_fanouts
    from lowspike.projections import synops_from_spikes

    snn, inputs = _random_snn(torch.float32, 4)
    fanouts = spiking_fanouts(snn)
    out = simulate_batch(snn, inputs, 15, "bernoulli", torch.Generator().manual_seed(0), fanouts, mode="dense")
    # plain per-step recomputation with the same random input spikes
    g = torch.Generator().manual_seed(0)
    neurons = [snntorch.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract")
               for s in snn["layers"] if s["kind"] in ("linear", "conv")]
    mems = [n.init_leaky() for n in neurons]
    synops = torch.zeros(inputs.shape[0], dtype=torch.float64)
    spikes = torch.zeros(inputs.shape[0])
    for _ in range(15):
        x = (torch.rand(inputs.shape, generator=g) < inputs).float()
        synops += synops_from_spikes(x, fanouts[0])
        spikes += x.flatten(1).sum(1)
        slot = 0
        for spec in snn["layers"]:
            if spec["kind"] in ("linear", "conv"):
                x, mems[slot] = neurons[slot](apply_layer(spec, x), mems[slot])
                synops += synops_from_spikes(x, fanouts[slot + 1])
                spikes += x.flatten(1).sum(1)
                slot += 1
            else:
                x = apply_layer(spec, x)
    assert torch.equal(out.synops_per_sample, synops)
    assert torch.equal(out.spikes_per_sample, spikes)


def test_synops_per_source_layer_add_up_exactly_to_the_total():
    """Column 0: SynOps of the input's spikes (Bernoulli coding), column l: of IF layer l's
    spikes (the output layer's are 0); each equals its layer's spike counts x fan-out."""
    from lowspike.snn.activity import spiking_fanouts
    from lowspike.projections import synops_from_spikes

    snn, inputs = _random_snn(torch.float32, 5)
    fanouts = spiking_fanouts(snn)
    out = simulate_batch(snn, inputs, 12, "bernoulli", torch.Generator().manual_seed(1), fanouts, mode="dense")
    assert out.synops_per_layer.shape == (inputs.shape[0], len(fanouts))
    assert torch.equal(out.synops_per_layer.sum(dim=1), out.synops_per_sample)
    assert (out.synops_per_layer[:, :-1] > 0).all() and (out.synops_per_layer[:, -1] == 0).all()
    g = torch.Generator().manual_seed(1)
    input_synops = torch.zeros(inputs.shape[0], dtype=torch.float64)
    for _ in range(12):
        input_synops += synops_from_spikes((torch.rand(inputs.shape, generator=g) < inputs).float(), fanouts[0])
    assert torch.equal(out.synops_per_layer[:, 0], input_synops)
    analog = simulate_batch(snn, inputs, 12, fanouts=fanouts)
    assert (analog.synops_per_layer[:, 0] == 0).all()
    assert torch.equal(analog.synops_per_layer.sum(dim=1), analog.synops_per_sample)
