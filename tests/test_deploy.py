"""NIR export of converted SNNs and of the directly trained students, run back in sinabs and snntorch
against lowspike's own spikes."""

import numpy as np
import pytest
import torch

from lowspike import deploy
from lowspike.models import build_dnn, build_student
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


def test_the_agreement_measured_batch_by_batch_is_the_agreement_of_all_samples_at_once(exported, monkeypatch):
    _, snn, inputs, path = exported
    reference = deploy.lowspike_spikes(snn, inputs, TIMESTEPS)
    whole = {"sinabs": deploy.spike_agreement(reference, deploy.run_sinabs(deploy.load_sinabs(path, TIMESTEPS),
                                                                            inputs, TIMESTEPS)),
             "snntorch": deploy.spike_agreement(reference, deploy.run_snntorch(deploy.load_snntorch(path),
                                                                                inputs, TIMESTEPS))}
    moved = [s.clone() for s in reference]
    moved[0][0, 0].zero_()
    whole["moved"] = deploy.spike_agreement(reference, moved)
    monkeypatch.setattr(deploy, "AGREEMENT_BATCH", 5)  # 12 samples: batches of 5, 5 and 2
    batched = deploy.agreement_summary(snn, path, inputs, TIMESTEPS)
    assert batched["sinabs"] == whole["sinabs"] and batched["snntorch"] == whole["snntorch"]
    counts = None
    for part in range(0, inputs.shape[0], 5):
        counts = deploy._add_counts(counts, deploy._agreement_counts(
            [r[:, part:part + 5] for r in reference], [m[:, part:part + 5] for m in moved], None))
    assert deploy._agreement(counts) == whole["moved"] and whole["moved"]["events_differing"] > 0


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


# ------------------------------------------------------------------ directly trained students


STUDENTS = {  # name: (input shape, width, timesteps, samples, input scale)
    "scnn": ((1, 28, 28), 0.25, 10, 6, 3.0),
    "sres8": ((1, 10, 51), 0.5, 4, 8, 2.0),
    "svgg11": ((3, 16, 16), 0.0625, 4, 4, 2.0),
}


def _trained_like(model, seed: int):
    """Batch norms with spread running statistics and gains, and a louder spiking fc layer, so
    that every layer of a random-init student spikes as a trained one does."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) * 3 + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2 + 0.3)
    for fc in getattr(model, "fcs", []):
        fc.weight.data.mul_(8)
    return model.eval()


def _student(name: str, beta: float = 1.0, seed: int = 0):
    shape, width, timesteps, samples, scale = STUDENTS[name]
    torch.manual_seed(seed)
    model = build_student(name, input_shape=shape, num_classes=5, neuron="if" if beta == 1.0 else "lif", beta=beta,
                          timesteps=timesteps, width=width)
    return _trained_like(model, seed), torch.rand(samples, *shape) * scale


def _exported_student(tmp_path, name: str, beta: float = 1.0):
    model, inputs = _student(name, beta)
    path = tmp_path / f"{name}.nir"
    deploy.write_student_nir(path, model)
    return model, inputs, path


def _every_layer_spikes(agreement) -> bool:
    return all(layer["spikes"] > 0 for layer in agreement["layers"])


def test_the_student_graph_names_its_neurons_as_the_student_and_folds_its_pooling(tmp_path):
    import nir

    model, _, path = _exported_student(tmp_path, "sres8", beta=0.5)
    graph = nir.read(str(path))
    neurons = [name for name in deploy._order(graph, path) if type(graph.nodes[name]).__name__ in ("IF", "LIF")]
    assert neurons == model.spiking_layer_names
    lif = graph.nodes["blocks.0.spike2"]
    assert type(lif).__name__ == "LIF" and lif.metadata["beta"] == 0.5 and lif.metadata["reset"] == "subtract"
    assert np.all(lif.tau == 2.0) and np.all(lif.r == 2.0) and np.all(lif.v_leak == 0.0)  # tau = 1 / (1 - beta)
    assert sorted(deploy._sources(graph, path)["blocks.0.spike2"]) == ["blocks.0.conv2", "pool"]
    assert sorted(deploy._sources(graph, path)["blocks.1.spike2"]) == ["blocks.0.spike2", "blocks.1.conv2"]
    pool = np.asarray(graph.nodes["pool"].weight)
    assert pool.shape[2] == 2 and set(np.unique(pool)) == {0.0, 0.5}
    assert graph.metadata["lowspike"] == "student"


def test_an_if_scnn_student_runs_spike_for_spike_in_sinabs_and_with_its_totals_in_snntorch(tmp_path):
    model, inputs, path = _exported_student(tmp_path, "scnn")
    reference, readout = deploy.student_spikes(model, inputs)
    spikes, _ = deploy.run_student_sinabs(deploy.load_sinabs(path, model.timesteps), inputs, model.timesteps)
    assert all(torch.equal(r, s) for r, s in zip(reference, spikes, strict=True))
    agreement = deploy.student_agreement(model, path, inputs)
    assert _every_layer_spikes(agreement["sinabs"]) and agreement["sinabs"]["events_differing"] == 0
    snntorch = agreement["snntorch"]
    assert snntorch["totals_differing"] == 0 and snntorch["events_differing_fraction"] <= 1e-5
    assert snntorch["same_prediction"] == 1.0 and agreement["sinabs"]["same_prediction"] == 1.0
    assert agreement["samples"] == inputs.shape[0] and agreement["timesteps"] == model.timesteps


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_an_sres8_student_with_residual_blocks_matches_in_both_up_to_the_rounding_of_folded_batch_norm(
        tmp_path, beta):
    model, inputs, path = _exported_student(tmp_path, "sres8", beta)
    agreement = deploy.student_agreement(model, path, inputs)
    for reader in ("sinabs", "snntorch"):
        assert _every_layer_spikes(agreement[reader]) and agreement[reader]["events_differing_fraction"] <= 1e-3
        assert agreement[reader]["same_prediction"] == 1.0


def test_a_residual_block_with_identity_batch_norm_is_the_students_arithmetic(tmp_path):
    from lowspike.models.resnet import SpikingResNet1d

    torch.manual_seed(1)
    model = SpikingResNet1d((10, 16), 4, blocks=1, channels=8, beta=0.5, timesteps=6).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.eps = 0.0  # g = 1: the folded weights are the convolution's, bit for bit
    with torch.no_grad():
        model.blocks[0].conv2.weight.mul_(4)
    path = tmp_path / "block.nir"
    deploy.write_student_nir(path, model)
    inputs = torch.rand(8, 10, 16) * 4
    reference, readout = deploy.student_spikes(model, inputs)
    for spikes, other_readout in (deploy.run_student_snntorch(deploy.load_snntorch(path), inputs, 6),
                                  deploy.run_student_sinabs(deploy.load_sinabs(path, 6), inputs, 6)):
        assert [int(s.sum()) > 0 for s in reference] == [True, True, True]
        assert all(torch.equal(r, s) for r, s in zip(reference, spikes, strict=True))
        assert torch.allclose(readout, other_readout, rtol=0, atol=1e-6)


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_an_svgg11_student_matches_in_both_up_to_the_rounding_of_folded_batch_norm(tmp_path, beta):
    model, inputs, path = _exported_student(tmp_path, "svgg11", beta)
    agreement = deploy.student_agreement(model, path, inputs)
    for reader in ("sinabs", "snntorch"):
        assert _every_layer_spikes(agreement[reader]) and agreement[reader]["events_differing_fraction"] <= 1e-3
        assert agreement[reader]["same_prediction"] == 1.0


def _one_neuron_layer(tmp_path, beta: float, neurons: int):
    import nir

    ones, zeros = np.ones(neurons, dtype=np.float32), np.zeros(neurons, dtype=np.float32)
    if beta == 1.0:
        node = nir.IF(r=ones, v_threshold=ones, v_reset=zeros, metadata=deploy.neuron_metadata(beta))
    else:
        tau = ones / (1 - beta)
        node = nir.LIF(tau=tau, r=tau, v_leak=zeros, v_threshold=ones, v_reset=zeros,
                       metadata=deploy.neuron_metadata(beta))
    graph = nir.NIRGraph({"input": nir.Input({"input": np.array([neurons])}), "lif": node,
                          "output": nir.Output({"output": np.array([neurons])})},
                         [("input", "lif"), ("lif", "output")], metadata={"lowspike": "student"})
    nir.write(str(tmp_path / "neurons.nir"), graph)
    return tmp_path / "neurons.nir"


def _neuron_runs(tmp_path, beta: float):
    from lowspike.snn.leaky import multistep_leaky

    timesteps, neurons = 50, 30_000  # under torch's grain size: one thread, as the other tests
    currents = torch.randn(timesteps, neurons, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.3
    reference = multistep_leaky(currents, beta, 1.0, "atan")
    path = _one_neuron_layer(tmp_path, beta, neurons)
    sinabs = deploy.load_sinabs(path, timesteps)
    with torch.inference_mode():
        sinabs_spikes = sinabs(currents.T.reshape(-1, 1)).reshape(neurons, timesteps).T
        snntorch = deploy.load_snntorch(path)
        snntorch_spikes = torch.stack([snntorch(currents[t]) for t in range(timesteps)])
    return reference, sinabs_spikes, snntorch_spikes


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_snntorchs_lif_neurons_are_lowspikes_bit_for_bit(tmp_path, beta):
    reference, _, snntorch_spikes = _neuron_runs(tmp_path, beta)
    assert reference.sum() > 100_000 and torch.equal(reference, snntorch_spikes)


def test_sinabs_if_neurons_are_lowspikes_bit_for_bit_as_both_subtract_the_reset_before_adding_the_input(tmp_path):
    reference, sinabs_spikes, _ = _neuron_runs(tmp_path, 1.0)
    assert reference.sum() > 100_000 and torch.equal(reference, sinabs_spikes)


def test_snntorch_if_moves_one_spike_in_millions_as_snntorch_adds_the_input_before_the_reset(tmp_path):
    reference, _, snntorch_spikes = _neuron_runs(tmp_path, 1.0)
    assert int((reference != snntorch_spikes).sum()) / 2 / float(reference.sum()) <= 1e-5
    assert int((reference.sum(0) != snntorch_spikes.sum(0)).sum()) <= 2


def test_sinabs_lif_beta_one_half_moves_one_spike_in_millions_as_sinabs_adds_the_input_after_the_reset(tmp_path):
    reference, sinabs_spikes, _ = _neuron_runs(tmp_path, 0.5)
    assert int((reference != sinabs_spikes).sum()) / 2 / float(reference.sum()) <= 1e-5
    assert int((reference.sum(0) != sinabs_spikes.sum(0)).sum()) <= 2


def test_sinabs_lif_beta_0_9_moves_5e_7_of_spikes_as_its_reset_by_a_rounded_one_over_beta_is_inexact(tmp_path):
    reference, sinabs_spikes, _ = _neuron_runs(tmp_path, 0.9)
    assert reference.sum() > 100_000
    assert int((reference != sinabs_spikes).sum()) / 2 / float(reference.sum()) <= 1e-5
    assert int((reference.sum(0) != sinabs_spikes.sum(0)).sum()) <= 2


def test_spike_agreement_compares_predictions_by_the_summed_readout():
    spikes = [torch.zeros(2, 1, 3)]
    readout = torch.tensor([[[1.0, 0.0]], [[0.0, 0.5]]])  # [T=2, B=1, C=2]: summed, class 0 wins
    other = torch.tensor([[[0.0, 1.0]], [[0.4, 0.0]]])  # summed, class 1 wins
    agreement = deploy.spike_agreement(spikes, spikes, (readout, other))
    assert agreement["same_prediction"] == 0.0 and agreement["readout_max_difference"] == 1.0
    assert deploy.spike_agreement(spikes, spikes, (readout, readout))["same_prediction"] == 1.0


def _one_line_export_error(call, match: str) -> str:
    with pytest.raises(deploy.ExportError, match=match) as error:
        call()
    assert "\n" not in str(error.value)
    return str(error.value)


def test_what_nir_cannot_say_about_a_student_is_one_error_naming_the_layer():
    from lowspike.models import build_teacher

    model, _ = _student("scnn")
    model.spike2.threshold = 0.5
    _one_line_export_error(lambda: deploy.student_to_nir(model), r"layer spike2: threshold 0.5")
    teacher = build_teacher("resnet15", input_shape=(1, 10, 51), num_classes=5, width=0.2)
    _one_line_export_error(lambda: deploy.student_to_nir(teacher), r"model ResNet1d: no NIR export")
    wide = build_student("scnn", input_shape=(1, 20, 28), num_classes=5, width=0.25)
    _one_line_export_error(lambda: deploy.student_to_nir(wide), r"pass the input_shape")
    assert "output" in deploy.student_to_nir(wide, input_shape=(1, 20, 28)).nodes


def test_a_malformed_student_graph_is_one_error_naming_the_node(tmp_path):
    import nir

    ones = np.ones(3, dtype=np.float32)

    def written(nodes, edges, name):
        nodes = {"input": nir.Input({"input": np.array([3])}), **nodes, "output": nir.Output({"output": np.array([3])})}
        nir.write(str(tmp_path / name), nir.NIRGraph(nodes, edges, type_check=False))
        return tmp_path / name

    delay = written({"delay": nir.Delay(ones)}, [("input", "delay"), ("delay", "output")], "delay.nir")
    _one_line_export_error(lambda: deploy.load_snntorch(delay), r"node 'delay' \(Delay\) is not supported")
    lif = nir.LIF(tau=ones, r=ones, v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones)
    cycle = written({"a": nir.Scale(ones), "lif": lif}, [("input", "a"), ("a", "lif"), ("lif", "a"), ("lif", "output")],
                    "cycle.nir")
    _one_line_export_error(lambda: deploy.load_sinabs(cycle, 4), r"cycle")
    plain = written({"lif": lif}, [("input", "lif"), ("lif", "output")], "plain.nir")
    _one_line_export_error(lambda: deploy.load_sinabs(plain, 4), r"LIF node 'lif' has no lowspike metadata")
