"""NIR export of converted SNNs, run back in sinabs and snntorch against lowspike's own spikes."""

import numpy as np
import pytest
import torch

from lowspike import deploy
from lowspike.models import build_dnn
from lowspike.snn.convert import convert
from lowspike.snn.simulation import simulate_batch

TIMESTEPS = 40


def _converted(arch: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_dnn(arch, (1, 28, 28), 10)
    calibration = torch.rand(64, 1, 28, 28)
    snn = convert(model, calibration, percentile=99.0)
    return snn, torch.rand(12, 1, 28, 28)


@pytest.fixture(params=["mlp", "lenet5"])
def exported(request, tmp_path):
    snn, inputs = _converted(request.param)
    path = tmp_path / f"{request.param}.nir"
    deploy.write_nir(path, snn)
    return request.param, snn, inputs, path


def test_the_reference_spikes_are_the_simulators(exported):
    _, snn, inputs, _ = exported
    reference = deploy.lowspike_spikes(snn, inputs, TIMESTEPS)
    simulated = simulate_batch(snn, inputs, TIMESTEPS, mode="dense")
    per_step = torch.stack([r.flatten(2).sum(dim=(1, 2)) for r in reference], dim=1)
    assert torch.equal(per_step, simulated.spikes_per_layer)
    assert per_step.sum() > 0


def test_the_graph_survives_nir_write_and_read(exported):
    import nir

    arch, snn, _, path = exported
    graph = nir.read(str(path))
    kinds = [type(graph.nodes[name]).__name__ for name in deploy._chain(graph, path)]
    if arch == "mlp":
        assert kinds == ["Flatten", "Affine", "IF", "Affine", "IF", "Affine", "IF"]
    else:
        assert kinds == ["Conv2d", "IF", "SumPool2d", "Conv2d", "IF", "SumPool2d", "Flatten", "Affine", "IF",
                         "Affine", "IF", "Affine", "IF"]
    neuron = next(node for node in graph.nodes.values() if type(node).__name__ == "IF")
    assert neuron.metadata["reset"] == "subtract" and neuron.metadata["fires_on"] == ">"


def test_sinabs_reproduces_every_spike_per_layer_and_step(exported):
    _, snn, inputs, path = exported
    reference = deploy.lowspike_spikes(snn, inputs, TIMESTEPS)
    spikes = deploy.run_sinabs(deploy.load_sinabs(path, TIMESTEPS), inputs, TIMESTEPS)
    agreement = deploy.spike_agreement(reference, spikes)
    assert agreement["events_differing"] == 0 and agreement["same_prediction"] == 1.0
    assert all(torch.equal(r, s) for r, s in zip(reference, spikes))


def test_snntorch_reproduces_the_spike_totals_with_spikes_moved_by_rounding_only(exported):
    _, snn, inputs, path = exported
    reference = deploy.lowspike_spikes(snn, inputs, TIMESTEPS)
    agreement = deploy.spike_agreement(reference, deploy.run_snntorch(deploy.load_snntorch(path), inputs, TIMESTEPS))
    assert agreement["totals_differing"] == 0 and agreement["same_prediction"] == 1.0
    assert agreement["events_differing_fraction"] <= 1e-3


def test_spike_agreement_counts_a_moved_spike_twice_and_keeps_the_totals():
    reference = [torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])]  # [T=2, B=1, 2 neurons]
    moved = [torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]]])]
    agreement = deploy.spike_agreement(reference, moved)
    assert agreement["events_differing"] == 2 and agreement["totals_differing"] == 0
    assert agreement["events_differing_fraction"] == 1.0


def test_a_pooling_kernel_that_is_not_a_power_of_two_is_refused_naming_the_layer():
    snn = {"input_shape": [1, 6, 6], "layers": [
        {"kind": "conv", "weight": torch.ones(2, 1, 1, 1), "bias": torch.zeros(2), "stride": [1, 1], "padding": [0, 0]},
        {"kind": "avgpool", "kernel": 3}, {"kind": "flatten"},
        {"kind": "linear", "weight": torch.ones(3, 8), "bias": torch.zeros(3)}]}
    with pytest.raises(deploy.ExportError, match=r"layer 1 \(avgpool 3x3\)"):
        deploy.to_nir(snn)


def test_a_damaged_or_foreign_file_is_one_clear_error(tmp_path):
    import nir

    damaged = tmp_path / "damaged.nir"
    damaged.write_bytes(b"not hdf5")
    with pytest.raises(deploy.ExportError, match="not a readable NIR file"):
        deploy.load_sinabs(damaged, 4)
    ones = np.ones(3, dtype=np.float32)
    foreign = nir.NIRGraph({"input": nir.Input({"input": np.array([3])}),
                            "lif": nir.IF(r=ones, v_threshold=ones, v_reset=np.zeros(3, dtype=np.float32)),
                            "output": nir.Output({"output": np.array([3])})},
                           [("input", "lif"), ("lif", "output")])
    nir.write(str(tmp_path / "foreign.nir"), foreign)
    with pytest.raises(deploy.ExportError, match="has no lowspike metadata"):
        deploy.load_snntorch(tmp_path / "foreign.nir")
