"""Metrics on hand-computed cases."""

import pytest
import torch
from torch import nn

from lowspike.snn.activity import eflops_per_sample, spiking_fanouts
from lowspike.metrics import spikerate
from lowspike.projections import fanout, synops_from_spikes


def test_conv_fanout_is_exact_at_borders():
    # 1 -> 1 channel, 3x3 kernel with a zero at its centre, padding 0, on a 3x3 input:
    # one output position reads every input position once, except the centre (zero weight).
    w = torch.ones(1, 1, 3, 3)
    w[0, 0, 1, 1] = 0
    mask = (w != 0).double()
    counts, out_shape = fanout(mask, (1, 3, 3), stride=(1, 1), padding=(0, 0))
    assert counts.tolist() == [[[1, 1, 1], [1, 0, 1], [1, 1, 1]]] and out_shape == (1, 1, 1)
    # padding 1 -> 9 output positions. The corner (0,0) is read by outputs (0,0),(0,1),(1,0),(1,1)
    # through kernel offsets (1,1) [zero], (1,0), (0,1), (0,0): 3 non-zero weights.
    fan = fanout(mask, (1, 3, 3), stride=(1, 1), padding=(1, 1))[0][0]
    assert fan[0, 0].item() == 3
    assert fan[1, 1].item() == 8  # read by all 9 outputs, once through the zero centre
    assert fan[0, 1].item() == 5  # read by 6 outputs, once through the centre


def test_linear_fanout_counts_nonzero_weights_per_input():
    w = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, -1.0]])
    counts, out_shape = fanout((w != 0).double(), (3,))
    assert counts.tolist() == [1, 0, 2] and out_shape == (2,)


def test_synops_two_layer_network_by_hand():
    # layer 1: 3 inputs -> 2 IF neurons, layer 2: 2 -> 2 (output). W2 has one zero.
    w1 = torch.ones(2, 3)
    w2 = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    snn = {"input_shape": [3], "layers": [
        {"kind": "linear", "weight": w1, "bias": torch.zeros(2)},
        {"kind": "linear", "weight": w2, "bias": torch.zeros(2)}]}
    fan_in, fan_hidden, fan_out = spiking_fanouts(snn)
    assert fan_in.tolist() == [2, 2, 2]
    assert fan_hidden.tolist() == [2, 1]
    assert fan_out.tolist() == [0, 0]
    hidden_spikes = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # sample 0: both fire; sample 1: neuron 1
    assert synops_from_spikes(hidden_spikes, fan_hidden).tolist() == [3.0, 1.0]


def test_fanout_through_average_pooling_and_flatten():
    # 1x4x4 IF map -> avg-pool 2 -> flatten (4) -> linear 4 -> 1 with weights [1, 0, 1, 1]
    snn = {"input_shape": [1, 4, 4], "layers": [
        {"kind": "conv", "weight": torch.ones(1, 1, 1, 1), "bias": torch.zeros(1), "stride": [1, 1], "padding": [0, 0]},
        {"kind": "avgpool", "kernel": 2}, {"kind": "flatten"},
        {"kind": "linear", "weight": torch.tensor([[1.0, 0.0, 1.0, 1.0]]), "bias": torch.zeros(1)}]}
    fanouts = spiking_fanouts(snn)
    assert fanouts[1][0].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]


def test_eflops_by_hand():
    # Linear 3 -> 2, W = [[1, 0, 2], [0, 0, 3]], b = [0, 5]; input [1, 0, 4]
    # MACs with both non-zero: row 0: x0*1, x2*2 -> 2; row 1: x2*3 -> 1; non-zero biases: 1 => 4
    model = nn.Module()
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))
        lin.bias.copy_(torch.tensor([0.0, 5.0]))
    model.layers = nn.Sequential(lin)
    result = eflops_per_sample(model, torch.tensor([[1.0, 0.0, 4.0], [0.0, 0.0, 0.0]]))
    # sample 2 is all zero: only the bias counts (1). Mean = (4 + 1) / 2
    assert result["total"] == pytest.approx(2.5)


def test_eflops_conv_counts_bias_per_output_position():
    conv = nn.Conv2d(1, 1, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(1.0)
    model = nn.Module()
    model.layers = nn.Sequential(conv)
    # 3x3 input of ones -> 2x2 outputs, each 4 MACs + 1 bias = 5 -> 20
    assert eflops_per_sample(model, torch.ones(1, 1, 3, 3))["total"] == pytest.approx(20.0)


def test_spikerate_is_zero_for_no_neurons():
    assert spikerate(30.0, 12) == 2.5
    assert spikerate(0.0, 0) == 0.0
