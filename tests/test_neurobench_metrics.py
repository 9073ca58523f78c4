"""NeuroBench's own metrics (neurobench 2.3.0) of the spiking students beside ours: the
step-by-step runner gives the layer-by-layer spikes; run_neurobench equals NeuroBench's
Benchmark.run; spikes and SynOps agree where the conventions coincide, and each difference is
named and computed here from the spikes."""

import json

import neurobench
import pytest
import torch
from neurobench.benchmarks import Benchmark
from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
from neurobench.metrics.workload import ActivationSparsity, ClassificationAccuracy, SynapticOperations
from neurobench.models import SNNTorchModel
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lowspike.metrics import connection_fanout, student_layer_activity
from lowspike.models import build_student
from lowspike.models.spiking import SpikingNeurons
from lowspike.neurobench_metrics import StepByStepStudent, neurobench_report, run_neurobench

torch.set_num_threads(1)


def test_the_pinned_neurobench_imports_beside_the_pinned_torch_and_snntorch():
    import snntorch

    assert neurobench.__version__ == "2.3.0"
    assert torch.__version__.startswith("2.14.1") and snntorch.__version__ == "1.0.0"


def scnn(timesteps=4):
    torch.manual_seed(0)
    model = build_student("scnn", input_shape=(1, 16, 16), num_classes=4, timesteps=timesteps, width=0.5)
    with torch.no_grad():
        model.conv1.weight.mul_(4.0)
        model.conv2.weight.mul_(6.0)
        model.conv2.weight[:, :, 0, :] = 0.0  # pruned: connection sparsity 0.2 of conv2
    return model.eval()


def sres8():
    torch.manual_seed(0)
    model = build_student("sres8", input_shape=(1, 6, 21), num_classes=4, neuron="lif", beta=0.5, timesteps=4,
                          width=0.2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv1d):
                m.weight.mul_(4.0)
            if isinstance(m, nn.BatchNorm1d):
                m.bias.fill_(0.3)
    return model.eval()


def svgg11(input_side=8):
    torch.manual_seed(0)
    model = build_student("svgg11", input_shape=(3, input_side, input_side), num_classes=4, neuron="lif", beta=0.5,
                          timesteps=3, width=0.0625)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(5.0)
            if isinstance(m, nn.BatchNorm2d):
                m.bias.fill_(0.6)
    return model.eval()


STUDENTS = {"scnn": (scnn, (1, 16, 16)), "sres8": (sres8, (1, 6, 21)), "svgg11": (svgg11, (3, 8, 8))}


def inputs_of(name, samples=5):
    generator = torch.Generator().manual_seed(2)
    shape = STUDENTS[name][1]
    x = torch.randn((samples, *shape), generator=generator) if name == "sres8" else torch.rand((samples, *shape),
                                                                                             generator=generator)
    return x, torch.randint(0, 4, (samples,), generator=generator)


@pytest.mark.parametrize("name, bfloat16", [("scnn", False), ("sres8", False), ("svgg11", False), ("scnn", True)])
def test_the_step_by_step_runner_gives_the_layer_by_layer_spikes(name, bfloat16):
    model = STUDENTS[name][0]()
    model.bfloat16 = bfloat16  # convolutions under autocast, membranes in float32 on both paths
    x, _ = inputs_of(name)
    with torch.no_grad():
        out = model(x)
        runner = StepByStepStudent(model).eval()
        steps = [runner(x) for _ in range(model.timesteps)]
    assert all(s.sum() > 0 for s in out.spikes)
    for layer, spikes in enumerate(out.spikes):
        assert torch.equal(torch.stack([step[1][layer] for step in steps]), spikes)
    assert torch.allclose(torch.stack([step[0] for step in steps]), out.readout, atol=1e-5)
    runner.reset()  # a new inference starts from U = 0
    with torch.no_grad():
        assert torch.equal(runner(x)[1][0], out.spikes[0][0])
    # the student itself is untouched: same modules, same spikes
    assert sum(isinstance(m, SpikingNeurons) for m in model.modules()) == len(out.spikes)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x).spikes, out.spikes))


def test_run_neurobench_equals_neurobenchs_own_benchmark_run():
    model = scnn(timesteps=3)
    x, y = inputs_of("scnn", samples=7)
    ours = run_neurobench(model, x, y, batch_size=3)
    repeated = x.unsqueeze(1).expand(7, 3, *x.shape[1:]).contiguous()
    benchmark = Benchmark(SNNTorchModel(StepByStepStudent(model)), DataLoader(TensorDataset(repeated, y), batch_size=3),
                          [], [lambda preds: preds.mean(dim=1).argmax(dim=1)],
                          [[ParameterCount, Footprint, ConnectionSparsity],
                           [ActivationSparsity, SynapticOperations, ClassificationAccuracy]])
    expected = benchmark.run(quiet=True)
    assert set(ours) - set(expected) == {"SynapticOperationsByLayer", "SpikesByLayer"}
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, rel=1e-12), key
    # the per-layer breakdown sums to NeuroBench's own totals
    by_layer = ours["SynapticOperationsByLayer"]
    for key in ("Effective_MACs", "Effective_ACs", "Dense"):
        assert sum(v[key] for v in by_layer.values()) == pytest.approx(ours["SynapticOperations"][key], rel=1e-12)


def pooled_operations_as_neurobench_counts(counts, cells, fanout):
    """NeuroBench on one call (one timestep of a batch) of a layer reading averaged spikes: the
    input is the cell averages count / cells; it is "spiking" only if every value is 0 or 1; its
    operations are the non-zero cells times their fan-out, one per cell however many spikes."""
    binary = bool(((counts == 0) | (counts == cells)).all())
    return float(((counts > 0).double() * fanout).sum()), binary


def reference_pooled(model, name, x, batch_size):
    """NeuroBench's Effective_ACs and Effective_MACs, and ours, of each pooled layer of SCNN or
    SRes-8, computed from the layer-by-layer spikes of each batch and timestep."""
    totals = {}

    def add(layer, counts, cells, fanout):
        entry = totals.setdefault(layer, {"acs": 0.0, "macs": 0.0, "synops": 0.0})
        ops, binary = pooled_operations_as_neurobench_counts(counts, cells, fanout)
        entry["acs" if binary else "macs"] += ops
        entry["synops"] += float((counts.double() * fanout).sum())

    with torch.no_grad():
        for batch in x.split(batch_size):
            spikes = model(batch).spikes
            for t in range(model.timesteps):
                if name == "scnn":
                    mask2 = (model.conv2.weight != 0).double()
                    counts2 = F.avg_pool2d(spikes[0][t], 2) * 4
                    add("conv2", counts2, 4, connection_fanout(model.conv2, tuple(counts2.shape[1:]), mask2)[0])
                    counts3 = (F.avg_pool2d(spikes[1][t], 2) * 4).flatten(1)
                    add("readout", counts3, 4, (model.readout.weight != 0).double().sum(0))
                else:
                    conv = model.blocks[0].conv1
                    counts1 = F.avg_pool1d(spikes[0][t], 2) * 2
                    add("blocks.0.conv1", counts1, 2,
                        connection_fanout(conv, tuple(counts1.shape[1:]), (conv.weight != 0).double())[0])
                    last = spikes[-1][t]
                    add("readout", last.sum(dim=2), last.shape[2], (model.readout.weight != 0).double().sum(0))
    return {layer: {k: v / x.shape[0] for k, v in entry.items()} for layer, entry in totals.items()}


@pytest.mark.parametrize("name", ["scnn", "sres8"])
def test_neurobench_agrees_with_our_counts_where_the_conventions_coincide(name):
    model = STUDENTS[name][0]()
    x, y = inputs_of(name, samples=6)
    batch_size, timesteps = 4, model.timesteps
    report = neurobench_report(model, x, y, batch_size=batch_size)
    json.dumps(report)
    records = {r["name"]: r for r in student_layer_activity(model, x)}
    layers = {row["name"]: row for row in report["layers"]}
    nb = report["neurobench"]

    # Spikes: NeuroBench's neuron hooks count what our layer-by-layer run emits, layer by layer.
    for row in report["spiking_layers"]:
        assert row["neurobench_spikes"] == row["lowspike_spikes"] > 0
    assert nb["ActivationSparsity"] == pytest.approx(report["lowspike"]["ActivationSparsity"], rel=1e-12)

    # Dense: NeuroBench's total operations (every weight, padding taps excluded) = our dense MACs x T.
    for row in layers.values():
        if row["input"] != "residual":
            assert row["neurobench_dense"] == row["lowspike_dense_macs_x_T"]
    assert nb["SynapticOperations"]["Dense"] == report["lowspike"]["DenseMACs"]

    # Spike inputs without pooling: NeuroBench's accumulates are our SynOps.
    unpooled = [row for row in layers.values() if row["input"] == "spikes"]
    assert len(unpooled) == (0 if name == "scnn" else 5)
    for row in unpooled:
        assert row["neurobench_effective_acs"] == row["lowspike_synops"] and row["neurobench_effective_macs"] == 0

    # Difference 1, analog input: NeuroBench presents the static input at every step (T x MACs);
    # the student computes that current once.
    analog = next(row for row in layers.values() if row["input"] == "analog")
    assert analog["neurobench_effective_macs"] == timesteps * analog["lowspike_effective_macs"]
    assert report["gaps"]["analog_input_macs_at_every_timestep"] == (timesteps - 1) * analog["lowspike_effective_macs"]

    # Difference 2, pooled spikes: NeuroBench counts a non-zero cell once per step, as MACs unless
    # that step's averages are all 0 or 1; we count every spike with its cell's fan-out.
    expected = reference_pooled(model, name, x, batch_size)
    for layer, entry in expected.items():
        row = layers[layer]
        assert row["input"] == "pooled spikes"
        assert row["neurobench_effective_acs"] == entry["acs"] and row["neurobench_effective_macs"] == entry["macs"]
        assert row["lowspike_synops"] == entry["synops"] == records[layer]["synops"]
        assert row["lowspike_synops"] > row["neurobench_effective_acs"] + row["neurobench_effective_macs"]
    assert report["gaps"]["pooled_cells_counted_once_per_timestep"] == pytest.approx(
        sum(e["synops"] - e["acs"] - e["macs"] for e in expected.values()), rel=1e-12)

    # Difference 3, shortcuts: no weight layer, so no operation in NeuroBench; one SynOp per spike in ours.
    shortcuts = [row for row in layers.values() if row["input"] == "residual"]
    assert len(shortcuts) == (0 if name == "scnn" else 3)
    for row in shortcuts:
        assert row["neurobench_effective_acs"] == row["neurobench_effective_macs"] == row["neurobench_dense"] == 0
    assert report["gaps"]["residual_synops_not_counted"] == sum(row["lowspike_synops"] for row in shortcuts)

    # The totals are ours plus the named gaps.
    ops = nb["SynapticOperations"]
    ours, gaps = report["lowspike"], report["gaps"]
    assert ops["Effective_ACs"] + ops["Effective_MACs"] == pytest.approx(
        ours["SynOps"] + ours["AnalogInputMACs"] + gaps["analog_input_macs_at_every_timestep"]
        - gaps["pooled_cells_counted_once_per_timestep"] - gaps["residual_synops_not_counted"], rel=1e-12)

    # Static metrics: parameters alike; connection sparsity rounded to 4 decimals by NeuroBench; the
    # footprint adds the buffers: batch-norm statistics and snntorch's scalar constants (3 float32
    # and 1 int64 per neuron layer; the membranes of a freshly reset network are empty).
    assert nb["ParameterCount"] == ours["ParameterCount"]
    assert nb["ConnectionSparsity"] == round(ours["ConnectionSparsity"], 4)
    if name == "scnn":  # conv2's first kernel rows, 32 x 8 x 5, of 200 + 6,400 + 512 weights
        assert ours["ConnectionSparsity"] == pytest.approx(1280 / (200 + 6400 + 512), rel=1e-12)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    bn_bytes = sum(2 * 4 * m.num_features + 8 for m in norms)
    assert gaps["footprint_buffer_bytes"] == bn_bytes + len(model.spiking_layer_names) * (3 * 4 + 8)

    with torch.no_grad():
        accuracy = float((model(x).logits.argmax(dim=1) == y).double().mean())
    assert nb["ClassificationAccuracy"] == pytest.approx(accuracy, rel=1e-12)


def test_without_pooling_neurobench_accumulates_are_our_synops():
    # SVGG-11 on a 1x1 input: no pooling layer, and the global average over a 1x1 map is the spike itself.
    model = svgg11(input_side=1)
    x = torch.rand(4, 3, 1, 1) + 0.5
    report = neurobench_report(model, x, torch.zeros(4, dtype=torch.long), batch_size=4)
    assert {row["input"] for row in report["layers"]} == {"analog", "spikes"}
    ops = report["neurobench"]["SynapticOperations"]
    assert report["lowspike"]["Spikes"] > 0
    assert ops["Effective_ACs"] == pytest.approx(report["lowspike"]["SynOps"], rel=1e-12)
    assert ops["Effective_MACs"] == model.timesteps * report["lowspike"]["AnalogInputMACs"]
    assert report["gaps"]["pooled_cells_counted_once_per_timestep"] == 0.0
