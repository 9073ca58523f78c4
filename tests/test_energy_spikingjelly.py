"""Cross-check of :mod:`lowspike.energy` against SpikingJelly 2.0's estimators
(``spikingjelly.activation_based.op_counter``: ``estimate_simple_energy``, the Horowitz
MAC/AC model SpikingJelly 2.0 ships under that name, and ``estimate_lemaire_energy``) on the
same converted LeNet-5 and the same spikes.

SpikingJelly profiles one forward pass of a torch module. Its network here carries the
converted LeNet-5's weights with SpikingJelly IF neurons (threshold 1, ``v_reset=None``:
reset by subtraction), runs T single steps on one sample, and is checked to emit exactly our
simulator's spikes (float64, random weights: no membrane lands exactly on the threshold, where
SpikingJelly's ``v >= 1`` and our ``v > 1`` would differ). Average pooling of spikes would
make SpikingJelly see a non-binary input and price the next layer as dense MACs, so each
2 x 2 pooling is folded into the next weight layer (the kernel upsampled 2 x 2 with weights / 4;
the convolution gets stride 2): the same currents from the unpooled binary spikes, each spike
reaching exactly the synapses of its pooled cell (our SynOps convention).

Every convention difference is named and computed in the test; the rest must agree to float
rounding.
"""

import warnings

import pytest
import torch
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based.op_counter import (
    LemaireEnergyConfig,
    estimate_lemaire_energy,
    estimate_simple_energy,
)
from torch import nn

from lowspike.params import validate_params
from lowspike.snn.activity import converted_snn_activity
from lowspike.energy import lemaire_energy, ops_energy, sram_access_energy
from lowspike.snn.activity import eflops_per_sample, spiking_fanouts
from lowspike.models.lenet import LeNet5
from lowspike.snn.convert import convert
from lowspike.snn.simulation import simulate_batch

T = 10
SAMPLES = 2
PJ = 1.0e-12


def fold_pooling(weight: torch.Tensor) -> torch.Tensor:
    """A weight reading 2 x 2-average-pooled maps, rewritten to read the unpooled maps."""
    return weight.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2) / 4


class FoldedLeNet(nn.Module):
    """The converted LeNet-5 for SpikingJelly: conv1 (analog input) -> IF -> conv2 with the
    first pooling folded in (10 x 10, stride 2) -> IF -> flatten -> fc1 with the second pooling
    folded in (1600 inputs) -> IF -> fc2 -> IF -> fc3 -> IF; ``forward`` runs T steps."""

    def __init__(self, snn: dict):
        super().__init__()
        w = [s for s in snn["layers"] if s["kind"] in ("linear", "conv")]
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2).double()
        self.conv2 = nn.Conv2d(6, 16, 10, stride=2).double()
        self.fc1 = nn.Linear(1600, 120).double()
        self.fc2 = nn.Linear(120, 84).double()
        self.fc3 = nn.Linear(84, 10).double()
        weights = [w[0]["weight"], fold_pooling(w[1]["weight"]),
                   fold_pooling(w[2]["weight"].reshape(120, 16, 5, 5)).reshape(120, 1600),
                   w[3]["weight"], w[4]["weight"]]
        with torch.no_grad():
            for module, weight, spec in zip((self.conv1, self.conv2, self.fc1, self.fc2, self.fc3), weights, w):
                module.weight.copy_(weight)
                module.bias.copy_(spec["bias"])
        self.neurons = nn.ModuleList(neuron.IFNode(v_threshold=1.0, v_reset=None) for _ in range(5))
        self.flatten = nn.Flatten()
        self.spikes: list[tuple[torch.Tensor, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self)
        self.spikes = []
        for _ in range(T):
            s1 = self.neurons[0](self.conv1(x))
            s2 = self.neurons[1](self.conv2(s1))
            s3 = self.neurons[2](self.fc1(self.flatten(s2)))
            s4 = self.neurons[3](self.fc2(s3))
            s5 = self.neurons[4](self.fc3(s4))
            self.spikes.append((s1, s2, s3, s4, s5))  # kept, counted after profiling (no op inside)
        return s5


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    model = LeNet5((1, 28, 28), 10).double()
    calibration = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    snn = convert(model, calibration, percentile=99.9)
    inputs = torch.rand(SAMPLES, 1, 28, 28, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    as_float = {**snn, "layers": [{k: v.float() if torch.is_tensor(v) else v for k, v in spec.items()}
                                  for spec in snn["layers"]]}
    out = simulate_batch(snn, inputs, T, fanouts=spiking_fanouts(as_float), mode="dense")
    names = [f"if{i + 1}" for i in range(5)]
    simulation = {"timesteps": T, "input_coding": "analog",
                  "input_events": float((inputs != 0).flatten(1).sum(1).double().mean()) * T,
                  "spikes_per_layer": dict(zip(names, (out.spikes_per_layer.sum(0).double() / SAMPLES).tolist())),
                  "synops_per_layer": dict(zip(["input", *names], out.synops_per_layer.mean(0).tolist()))}
    activity = converted_snn_activity(snn, simulation, eflops_per_sample(model, inputs)["per_layer"])

    network = FoldedLeNet(snn)
    lemaire, simple, sj_spikes = [], [], torch.zeros(T, 5, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Lemaire formulas do not support Flatten"
        for b in range(SAMPLES):
            lemaire.append(estimate_lemaire_energy(network, inputs[b:b + 1], config=LemaireEnergyConfig(strict=False)))
            sj_spikes += torch.tensor([[float(s.sum()) for s in step] for step in network.spikes])
            simple.append(estimate_simple_energy(network, inputs[b:b + 1]))
    return {"activity": activity, "ours_spikes": out.spikes_per_layer.double(), "sj_spikes": sj_spikes,
            "lemaire": lemaire, "simple": simple}


def mean(reports, get) -> float:
    return sum(get(r) for r in reports) / len(reports)


def test_spikingjelly_network_emits_our_spikes(case):
    assert case["ours_spikes"].sum() > 0 and (case["ours_spikes"].sum(0) > 0).all()
    assert torch.equal(case["sj_spikes"], case["ours_spikes"])


def test_ops_model_equals_spikingjelly_compute_energy_up_to_named_differences(case):
    activity = case["activity"]
    cfg = validate_params({"energy": {"analog_input": "every_timestep"}}).energy
    ours = ops_energy(activity, cfg)["snn"].term_totals()
    synops = sum(layer.synops for layer in activity.layers)
    conv1 = activity.layers[0]
    # Same convention: SynOps = every spike x the exact fan-out (all weights are non-zero here)
    assert mean(case["simple"], lambda r: r.counts["synop"]) == synops
    # SpikingJelly recomputes the analog first layer at every step (our every_timestep setting) and
    # counts every weight at every output position; our dense MACs leave out the taps that read the
    # zero padding (docs/conventions.md): conv1's 5x5 kernel, padding 2, on 28x28 has 9,864 of them
    padding_taps = conv1.weights * 28 * 28 - conv1.dense_macs
    assert padding_taps == 9864
    assert mean(case["simple"], lambda r: r.counts["mac"]) == (conv1.dense_macs + padding_taps) * T
    # Difference 1: SpikingJelly's ACs include the IF neurons' element-wise ops, 3 per neuron per
    # step (charge v + x, threshold v - 1, reset v - s); the ops model counts no neuron update.
    neuron_ops = 3 * sum(layer.neurons for layer in activity.layers) * T
    # Difference 2: SpikingJelly 2.0 counts its own bookkeeping: its memory counter sums the folded
    # conv2's occupancy map (1 x 10 x 10) outside its dispatch guard, and that aten.sum is counted
    # as 100 - 1 additions per step (SpikingJelly's issue, not a network operation).
    bookkeeping = (activity.layers[1].out_size // activity.layers[1].out_shape[0] - 1) * T
    assert mean(case["simple"], lambda r: r.counts["ac"]) == synops + neuron_ops + bookkeeping
    # Difference 3: we add the biases (E_AC per output with a non-zero bias per step); SpikingJelly's
    # convolution/linear rules do not.
    assert ours["bias"] == pytest.approx(0.9 * PJ * sum(layer.bias_outputs for layer in activity.layers) * T)
    # Difference 4: energy_total_pj adds parameter and neuron-state memory traffic (24.96 pJ/byte);
    # compare the compute part, 4.6 pJ x MACs + 0.9 pJ x ACs.
    sj_compute = mean(case["simple"], lambda r: r.energy_compute_pj)
    assert sj_compute == pytest.approx((ours["mac"] + ours["ac"]) / PJ + 0.9 * (neuron_ops + bookkeeping)
                                       + 4.6 * padding_taps * T, rel=1e-12)
    # Our default pays the analog layer once (the simulator computes that current once)
    default = ops_energy(activity, validate_params({}).energy)["snn"].term_totals()
    assert default["mac"] == pytest.approx(ours["mac"] / T, rel=1e-12)


def test_lemaire_model_equals_spikingjelly_lemaire_energy_up_to_named_differences(case):
    activity = case["activity"]
    cfg = validate_params({"energy": {"analog_input": "every_timestep"}}).energy
    ours = {k: v / PJ for k, v in lemaire_energy(activity, cfg)["snn"].term_totals().items()}
    sj = {k: mean(case["lemaire"], lambda r, k=k: r.breakdown_pj[k])
          for k in ("ops_pj", "addressing_pj", "inout_pj", "params_pj", "potential_pj")}
    sj_counts = {k: mean(case["lemaire"], lambda r, k=k: r.counts[k]) for k in ("synop", "mac", "acc_addr", "mac_addr")}
    e = lambda words: sram_access_energy(words, cfg) / PJ  # noqa: E731  pJ per word access

    conv1, conv2, fc1 = activity.layers[:3]
    events, synops = conv2.input_events, conv2.synops  # IF1 spikes into conv2, and their SynOps
    # Difference 0 (conv1's dense pass): SpikingJelly counts the taps on the zero padding too
    padding_taps = conv1.weights * 28 * 28 - conv1.dense_macs
    assert sj_counts["mac"] == (conv1.dense_macs + padding_taps) * T
    assert sj_counts["mac_addr"] == 2 * events
    assert fc1.synops == 120 * fc1.input_events  # every weight non-zero: the nominal fan-out is exact

    # Difference 1 (accumulates): SpikingJelly prices a spike into a convolution with the nominal
    # fan-out C_out x ceil(k/s)^2 = 16 x ceil(10/2)^2 = 400 (no border correction); we use the
    # exact SynOps. Everything else in the operations (conv1's MACs x T, biases, resets) agrees.
    extra_accumulates = 16 * 25 * events - synops
    assert sj_counts["synop"] == sum(layer.synops for layer in activity.layers) + extra_accumulates
    ops = ours["mac"] + ours["accumulate"] + ours["bias"] + ours["leak"] + ours["reset"] + ours["current"]
    assert sj["ops_pj"] == pytest.approx(ops + 0.1 * extra_accumulates + (0.1 + 3.1) * padding_taps * T, rel=1e-12)

    # Difference 2 (addressing, potential traffic, weight reads): SpikingJelly's memory fan-out of a
    # spike into a convolution is C_out x kernel size without the stride, 16 x 10 x 10 = 1600 in the
    # folded conv2 (the unfolded one has 16 x 5 x 5 = 400 synapses per pooled cell, border-corrected
    # in our SynOps).
    extra_reads = 1600 * events - synops
    assert sj["addressing_pj"] == pytest.approx(ours["addressing"] + 0.1 * extra_reads, rel=1e-12)
    assert sj["potential_pj"] == pytest.approx(ours["memory_potential"] + 2 * extra_reads * e(conv2.out_size),
                                               rel=1e-12)

    # Difference 3 (parameter memory size): the folded conv2 and fc1 hold 4x the weights
    # (9600 + 16 and 192000 + 120 words instead of 2400 + 16 and 48000 + 120), so each read costs
    # e(folded size); conv2 also reads its nominal 1600 weights per spike.
    bias_reads_conv2 = conv2.bias_outputs * T
    ours_conv2 = (synops + bias_reads_conv2) * e(conv2.parameter_words)
    sj_conv2 = (1600 * events + bias_reads_conv2) * e(4 * conv2.weights + conv2.biases)
    fc1_reads = fc1.synops + fc1.bias_outputs * T
    params_difference = (sj_conv2 - ours_conv2) + fc1_reads * (e(4 * fc1.weights + fc1.biases) - e(fc1.parameter_words))
    # and conv1's dense pass reads a weight for each of its padding taps
    params_difference += padding_taps * T * e(conv1.parameter_words)
    assert sj["params_pj"] == pytest.approx(ours["memory_params"] + params_difference, rel=1e-12)

    # No difference in the FIFO reads of input spikes and the output spike writes; conv1's dense input
    # reads differ by its padding taps (SpikingJelly reads an input for each, in a 784-word memory).
    assert sj["inout_pj"] == pytest.approx(ours["memory_input"] + ours["memory_output"]
                                           + padding_taps * T * e(conv1.in_size), rel=1e-12)
