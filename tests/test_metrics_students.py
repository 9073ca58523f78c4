"""Per-layer activity records of the spiking students: a hand-computed residual network, and
SynOps against a plain reference (per-neuron spike counts x fan-out maps counted by loops over
output positions and kernel taps) for SCNN, SRes-8 and SVGG-11 at a small width."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lowspike.projections import NETWORK_INPUT, Projection
from lowspike.metrics import folded_weight_and_bias, student_layer_activity, StudentActivityMeter
from lowspike.models import build_student
from lowspike.models.spiking import SpikingNetwork, SpikingNeurons, over_time

torch.set_num_threads(1)


class TinyResidualStudent(SpikingNetwork):
    """x [1, 4] -> conv1d(1->2, k3, pad 1) -> IF -> avg-pool 2 -> p;
    s2 = IF(BN(conv1d(2->2, k1)(p)) + p) (a shortcut); readout Linear(2->3) of the mean of s2 over
    positions. T = 2."""

    def __init__(self):
        super().__init__(timesteps=2)
        self.conv1 = nn.Conv1d(1, 2, 3, padding=1)
        self.spike1 = SpikingNeurons(1.0)
        self.conv2 = nn.Conv1d(2, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(2)
        self.spike2 = SpikingNeurons(1.0)
        self.readout = nn.Linear(2, 3)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([[[0.0, 1.0, 0.0]], [[1.0, 0.0, 1.0]]]))
            self.conv1.bias.copy_(torch.tensor([0.0, 0.5]))
            self.conv2.weight.copy_(torch.tensor([[[1.0], [0.0]], [[1.0], [1.0]]]))
            self.bn2.weight.copy_(torch.tensor([1.0, 0.0]))  # channel 1: gamma 0, its weights vanish
            self.bn2.bias.copy_(torch.tensor([0.2, 0.25]))
            self.readout.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 3.0]]))
            self.readout.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
        self.finish_init((1, 4))

    def run(self, x):
        s1 = self.spike1(self.repeat(self.conv1(x)))
        p = over_time(lambda z: F.avg_pool1d(z, 2), s1)
        s2 = self.spike2(over_time(lambda z: self.bn2(self.conv2(z)), p) + p)
        return over_time(lambda z: self.readout(z.mean(dim=2)), s2), [s1, s2]

    def projections(self):
        pool = (("avg", 2),)
        return [Projection("conv1", NETWORK_INPUT, "spike1"),
                Projection("conv2", "spike1", "spike2", pool, norm="bn2"),
                Projection(None, "spike1", "spike2", pool, name="shortcut"),
                Projection("readout", "spike2", None, (("global_avg",),))]


def test_records_of_a_hand_computed_residual_network():
    # Sample 0, x = [1.5, 0, 0, 0.6]. conv1 currents: ch0 = x = [1.5, 0, 0, .6];
    # ch1 = x[i-1] + x[i+1] + .5 = [.5, 2, 1.1, .5]. IF (U > 1, minus 1 after a spike), T = 2:
    # 1.5 -> U 1.5, 2.0: spikes at t0, t1; .6 -> .6, 1.2: t1; .5 -> .5, 1.0: none; 2 -> t0, t1;
    # 1.1 -> 1.1, 1.2: t0, t1. spike1: ch0 [t0: 1 0 0 0, t1: 1 0 0 1], ch1 [t0, t1: 0 1 1 0]: 7 spikes.
    # Pooled p: t0 ch0 [.5, 0] ch1 [.5, .5]; t1 ch0 [.5, .5] ch1 [.5, .5].
    # spike2 currents, BN (mean 0, var 1, eps 1e-5): ch0 ~ p_ch0 + .2 + p_ch0 (shortcut):
    # cell0 1.2, 1.2 -> U 1.2 (spike), 1.4 (spike); cell1 .2, 1.2 -> .2, 1.4 (spike); ch1 (gamma 0):
    # .25 + p_ch1 = .75 each step -> .75, 1.5 (spike), twice: spike2 holds 5 spikes.
    # Sample 1, x = 0: ch0 current 0, ch1 .5 -> U .5, 1.0: silent; spike2 currents .2 / .25: silent.
    model = TinyResidualStudent()
    x = torch.tensor([[[1.5, 0.0, 0.0, 0.6]], [[0.0, 0.0, 0.0, 0.0]]])
    records = {r["name"]: r for r in student_layer_activity(model, x)}
    assert list(records) == ["conv1", "conv2", "shortcut", "readout"]

    # conv1 fan-outs through the 3 non-zero weights, exact at borders: ch0's centre tap reads each
    # input once; ch1's taps at offsets -1 and +1 read input i from outputs i+1 and i-1 when they
    # exist: [1, 2, 2, 1]. Total [2, 3, 3, 2]. Non-zero inputs x0, x3: 2 + 2 = 4 MACs, sample 1 none.
    # Dense: per channel 2 + 3 + 3 + 2 in-bound taps (padding taps are no MACs) -> 20.
    assert records["conv1"] == {
        "name": "conv1", "kind": "conv1d", "in_shape": [1, 4], "out_shape": [2, 4], "weights": 6,
        "nonzero_weights": 3, "biases": 1, "dense_macs": 20.0, "effective_macs": 4 / 2, "input_binary": False,
        "synops": 0.0, "input_events": 0.0, "neurons": 8, "output_spikes": 7 / 2, "neuron_model": "if",
        "timesteps": 2}
    # conv2 with BN folded: W' = [[1 * s, 0], [0, 0]] (gamma_1 = 0): 1 non-zero weight;
    # b' = beta = [.2, .25]: 2 biases. Fan-out: a ch0 cell feeds out0 (1), a ch1 cell nothing.
    # SynOps: ch0 spikes (2 + 1 = 3) x 1 + ch1 spikes (4) x 0 = 3. All 7 spikes land in a cell.
    assert records["conv2"] == {
        "name": "conv2", "kind": "conv1d", "in_shape": [2, 2], "out_shape": [2, 2], "weights": 4,
        "nonzero_weights": 1, "biases": 2, "dense_macs": 8.0, "effective_macs": None, "input_binary": True,
        "synops": 3 / 2, "input_events": 7 / 2, "neurons": 4, "output_spikes": 5 / 2, "neuron_model": "if",
        "timesteps": 2}
    # The shortcut adds each of the 7 spikes into one membrane; 4 additions per timestep densely.
    assert records["shortcut"] == {
        "name": "shortcut", "kind": "residual", "in_shape": [2, 2], "out_shape": [2, 2], "weights": 0,
        "nonzero_weights": 0, "biases": 0, "dense_macs": 4.0, "effective_macs": None, "input_binary": True,
        "synops": 7 / 2, "input_events": 7 / 2, "neurons": 0, "output_spikes": 0.0, "neuron_model": "none",
        "timesteps": 2}
    # readout W = [[1, 0], [0, 0], [2, 3]]: fan-out ch0 2, ch1 1; spike2: ch0 3 spikes, ch1 2 -> 6 + 2.
    assert records["readout"] == {
        "name": "readout", "kind": "linear", "in_shape": [2], "out_shape": [3], "weights": 6,
        "nonzero_weights": 3, "biases": 1, "dense_macs": 6.0, "effective_macs": None, "input_binary": True,
        "synops": 8 / 2, "input_events": 5 / 2, "neurons": 0, "output_spikes": 0.0, "neuron_model": "none",
        "timesteps": 2}


def test_batch_norm_folding_by_hand():
    conv = nn.Conv1d(1, 2, 1)
    norm = nn.BatchNorm1d(2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[2.0]], [[3.0]]]))
        conv.bias.copy_(torch.tensor([1.0, 1.0]))
        norm.weight.copy_(torch.tensor([0.5, 0.0]))
        norm.bias.copy_(torch.tensor([0.0, 4.0]))
        norm.running_mean.copy_(torch.tensor([1.0, 3.0]))
        norm.running_var.copy_(torch.tensor([4.0, 1.0]))
    norm.eps = 0.0
    weight, bias = folded_weight_and_bias(conv, norm)
    # scale = gamma / sqrt(var): [.25, 0]; W' = [.5, 0]; b' = beta + (b - mean) * scale = [0, 4]
    assert weight.flatten().tolist() == [0.5, 0.0]
    assert bias.tolist() == [0.0, 4.0]


def test_the_meter_fed_batch_by_batch_equals_one_pass():
    torch.manual_seed(0)
    model = build_student("scnn", input_shape=(1, 12, 12), num_classes=4, timesteps=3, width=0.25).eval()
    with torch.no_grad():
        model.conv1.weight.mul_(4.0)
        model.conv2.weight.mul_(4.0)
    x = torch.rand(5, 1, 12, 12)
    meter = StudentActivityMeter(model)
    with torch.inference_mode():
        for batch in x.split(2):  # as measure_student's loop: one forward per batch
            meter.add(batch, model(batch))
    assert meter.records() == student_layer_activity(model, x, batch_size=5)


def test_a_silent_student_has_zero_activity_and_defined_records():
    model = build_student("scnn", input_shape=(1, 12, 12), num_classes=4, timesteps=3, width=0.25)
    with torch.no_grad():
        model.conv1.bias.fill_(-100.0)
    records = student_layer_activity(model, torch.rand(3, 1, 12, 12))
    assert [r["synops"] for r in records] == [0.0, 0.0, 0.0]
    assert [r["output_spikes"] for r in records] == [0.0, 0.0, 0.0]
    assert records[0]["effective_macs"] == records[0]["dense_macs"]  # no input pixel is zero


def test_projections_must_name_every_weight_layer():
    model = TinyResidualStudent()
    model.projections = lambda: [Projection("conv1", NETWORK_INPUT, "spike1")]
    with pytest.raises(ValueError, match="every weight layer"):
        StudentActivityMeter(model)


def test_a_wrong_projection_is_refused():
    model = TinyResidualStudent()
    wrong = TinyResidualStudent.projections(model)
    wrong[1] = Projection("conv2", "spike1", "spike2")  # the pooling forgotten: 2 x 4 inputs, not 2 x 2
    model.projections = lambda: wrong
    with pytest.raises(ValueError, match="does not match"):
        student_layer_activity(model, torch.zeros(1, 1, 4))


# --- plain reference: spike counts per neuron x fan-out maps counted by loops ----------------


def reference_conv_fanout(mask: np.ndarray, input_shape: tuple, padding: tuple) -> np.ndarray:
    """For each input position, the (output channel, output position, tap) triples with a non-zero
    weight that read it; stride 1, zero padding."""
    spatial, kernel = input_shape[1:], mask.shape[2:]
    outputs = [s + 2 * p - k + 1 for s, p, k in zip(spatial, padding, kernel)]
    fanout = np.zeros(input_shape)
    for out_position in itertools.product(*map(range, outputs)):
        for tap in itertools.product(*map(range, kernel)):
            position = [o - p + t for o, p, t in zip(out_position, padding, tap)]
            if all(0 <= q < s for q, s in zip(position, spatial)):
                fanout[(slice(None), *position)] += mask[(slice(None), slice(None), *tap)].sum(axis=0)
    return fanout


def reference_pooled_fanout(cell_fanout: np.ndarray, source_shape: tuple, kernel: int) -> np.ndarray:
    """A neuron's fan-out through k-average pooling: that of the cell holding it, 0 if cut off."""
    fanout = np.zeros(source_shape)
    for index in np.ndindex(*source_shape):
        cell = tuple(q // kernel for q in index[1:])
        if all(c < n for c, n in zip(cell, cell_fanout.shape[1:])):
            fanout[index] = cell_fanout[(index[0], *cell)]
    return fanout


def nonzero_mask(layer: nn.Module, norm: nn.Module | None = None) -> np.ndarray:
    mask = layer.weight.detach().numpy() != 0
    if norm is not None:
        mask &= (norm.weight.detach().numpy() != 0).reshape(-1, *[1] * (mask.ndim - 1))
    return mask.astype(np.float64)


def spike_counts(model, x) -> list[np.ndarray]:
    with torch.no_grad():
        return [s.sum(dim=(0, 1)).double().numpy() for s in model.eval()(x).spikes]


def prune(model: nn.Module, fraction: float = 0.3) -> None:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                m.weight.mul_((torch.rand(m.weight.shape, generator=generator) > fraction).float())


def assert_activity(counts: list[np.ndarray]) -> None:
    assert all(c.sum() > 0 for c in counts), [float(c.sum()) for c in counts]


def test_scnn_synops_equal_the_plain_reference():
    torch.manual_seed(0)
    model = build_student("scnn", input_shape=(1, 16, 16), num_classes=4, timesteps=4, width=0.5)
    prune(model)
    with torch.no_grad():
        model.conv1.weight.mul_(4.0)
        model.conv2.weight.mul_(6.0)
    x = torch.rand(3, 1, 16, 16) * (torch.rand(3, 1, 16, 16) > 0.3)
    records = {r["name"]: r for r in student_layer_activity(model, x)}
    s1, s2 = spike_counts(model, x)
    assert_activity([s1, s2])
    assert s1.shape == (8, 14, 14) and s2.shape == (32, 5, 5)  # 14 -> 7 cells; 5 -> 2 cells, row/col 4 cut off

    fan1 = reference_conv_fanout(nonzero_mask(model.conv1), (1, 16, 16), (1, 1))
    nonzero_inputs = (x != 0).sum(dim=0).double().numpy()
    assert records["conv1"]["effective_macs"] == (nonzero_inputs * fan1).sum() / 3
    dense1 = reference_conv_fanout(np.ones(model.conv1.weight.shape), (1, 16, 16), (1, 1)).sum()
    assert records["conv1"]["dense_macs"] == dense1

    fan2 = reference_pooled_fanout(reference_conv_fanout(nonzero_mask(model.conv2), (8, 7, 7), (1, 1)), s1.shape, 2)
    assert records["conv2"]["synops"] == (s1 * fan2).sum() / 3
    arrived = reference_pooled_fanout(np.ones((8, 7, 7)), s1.shape, 2)
    assert records["conv2"]["input_events"] == (s1 * arrived).sum() / 3 == s1.sum() / 3  # 14 is even

    readout_cells = nonzero_mask(model.readout).sum(axis=0).reshape(32, 2, 2)
    fan3 = reference_pooled_fanout(readout_cells, s2.shape, 2)
    assert records["readout"]["synops"] == (s2 * fan3).sum() / 3
    reached = reference_pooled_fanout(np.ones((32, 2, 2)), s2.shape, 2)
    assert records["readout"]["input_events"] == (s2 * reached).sum() / 3
    assert records["readout"]["input_events"] < s2.sum() / 3  # spikes of row/col 4 reach no cell
    assert records["conv2"]["output_spikes"] == s2.sum() / 3 and records["conv2"]["neurons"] == 32 * 5 * 5


def test_sres8_synops_equal_the_plain_reference():
    torch.manual_seed(0)
    model = build_student("sres8", input_shape=(1, 6, 21), num_classes=4, neuron="lif", beta=0.5, timesteps=4,
                          width=0.2)
    prune(model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv1d):
                m.weight.mul_(4.0)
            if isinstance(m, nn.BatchNorm1d):
                m.bias.fill_(0.3)
        model.blocks[0].bn2.weight[3] = 0.0  # a channel whose folded weights are all zero
    x = torch.randn(3, 1, 6, 21)
    records = {r["name"]: r for r in student_layer_activity(model, x)}
    counts = dict(zip(model.spiking_layer_names, spike_counts(model, x)))
    assert_activity(list(counts.values()))
    channels, length = 9, 21

    stem_fan = reference_conv_fanout(nonzero_mask(model.stem[0], model.stem[1]), (6, length), (1,))
    assert records["stem.0"]["effective_macs"] == (((x[:, 0] != 0).sum(0).double().numpy()) * stem_fan).sum() / 3
    source, pooled = "stem_spike", True
    for i, block in enumerate(model.blocks):
        fan = reference_conv_fanout(nonzero_mask(block.conv1, block.bn1), (channels, length // 2), (1,))
        if pooled:  # the 21st frame is cut off by the pooling window
            fan = reference_pooled_fanout(fan, counts[source].shape, 2)
        assert records[f"blocks.{i}.conv1"]["synops"] == (counts[source] * fan).sum() / 3
        shortcut = reference_pooled_fanout(np.ones((channels, length // 2)), counts[source].shape, 2) if pooled else 1
        assert records[f"blocks.{i}.shortcut"]["synops"] == (counts[source] * shortcut).sum() / 3
        fan2 = reference_conv_fanout(nonzero_mask(block.conv2, block.bn2), (channels, length // 2), (1,))
        assert records[f"blocks.{i}.conv2"]["synops"] == (counts[f"blocks.{i}.spike1"] * fan2).sum() / 3
        source, pooled = f"blocks.{i}.spike2", False
    assert records["blocks.0.shortcut"]["synops"] < counts["stem_spike"].sum() / 3
    assert records["blocks.0.conv2"]["nonzero_weights"] == int(nonzero_mask(model.blocks[0].conv2,
                                                                            model.blocks[0].bn2).sum())
    readout_fan = nonzero_mask(model.readout).sum(axis=0)[:, None]  # a spike counts its channel's fan-out
    assert records["readout"]["synops"] == (counts[source] * readout_fan).sum() / 3
    assert [r["neuron_model"] for r in records.values()].count("lif") == 7


def test_svgg11_synops_equal_the_plain_reference():
    torch.manual_seed(0)
    model = build_student("svgg11", input_shape=(3, 8, 8), num_classes=4, neuron="lif", beta=0.5, timesteps=2,
                          width=0.0625)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(5.0)
            if isinstance(m, nn.BatchNorm2d):
                m.bias.fill_(0.6)
    x = torch.rand(2, 3, 8, 8)
    records = {r["name"]: r for r in student_layer_activity(model, x)}
    counts = dict(zip(model.spiking_layer_names, spike_counts(model, x)))
    assert_activity(list(counts.values()))
    # 8x8: pools after convs 0, 1, 3 (8 -> 4 -> 2 -> 1), none once the map is 1 pixel wide
    assert model.pool_after == [True, True, False, True, False, False, False, False]
    for i in range(1, 8):
        source = counts[f"neurons.{i - 1}"]
        side = source.shape[-1] // 2 if model.pool_after[i - 1] else source.shape[-1]
        conv, norm = model.convs[i], model.norms[i]
        fan = reference_conv_fanout(nonzero_mask(conv, norm), (conv.in_channels, side, side), (1, 1))
        if model.pool_after[i - 1]:
            fan = reference_pooled_fanout(fan, source.shape, 2)
        assert records[f"convs.{i}"]["synops"] == (source * fan).sum() / 2
    fc_fan = nonzero_mask(model.fcs[0]).sum(axis=0)[:, None, None]  # global average over the 1x1 map
    assert records["fcs.0"]["synops"] == (counts["neurons.7"] * fc_fan).sum() / 2
    assert records["readout"]["synops"] == (counts["fc_neurons.0"] * nonzero_mask(model.readout).sum(axis=0)).sum() / 2
