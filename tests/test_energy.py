"""Energy models on hand-computed networks (every number below is worked out by hand).

Defaults of ``energy``: ops fp32 (E_MAC 4.6 pJ, E_AC 0.9 pJ); lemaire int32 (E_add 0.1 pJ,
E_mul 3.1 pJ, so a MAC 3.2 pJ), 32-bit words, piecewise SRAM cost (10 pJ at 8 KiB, linear
from 0 below), one access per word, FIFO of 1000 words, resets counted, analog layer once.
With 4-byte words below 8 KiB, a memory of n words costs e(n) = 10 * 4n / 8192 pJ per word:
e(1000) = 4.8828125, e(2) = 0.009765625, e(3) = 0.0146484375, e(6) = 0.029296875,
e(7) = 0.0341796875.
"""

import math

import pytest
import torch
from torch import nn

from lowspike.params import validate_params
from lowspike.energy import break_even_from_energies, break_even_spikerate, ENERGY_MODELS, evaluate_dnn_energy, evaluate_energy, LayerActivity, lemaire_energy, network_activity, NetworkActivity, ops_energy, sram_access_energy
from lowspike.snn.activity import converted_snn_activity

PJ = 1.0e-12


def energy_config(**overrides):
    return validate_params({"energy": overrides}).energy


def layer(**values) -> dict:
    record = {"name": "l", "kind": "linear", "in_shape": [3], "out_shape": [2], "weights": 6, "nonzero_weights": 6,
              "biases": 0, "dense_macs": 6, "effective_macs": None, "input_binary": True, "synops": 0.0,
              "input_events": 0.0, "neurons": 2, "output_spikes": 0.0, "neuron_model": "if"}
    record.update(values)
    return record


def linear_network() -> NetworkActivity:
    """fc1: 3 -> 2, analog input, one non-zero bias, IF, 3 spikes; fc2: 2 -> 2, fed by those
    3 spikes (each reaches 2 synapses: 6 SynOps), two non-zero biases, LIF, 2 spikes; T = 4."""
    return NetworkActivity.from_dict({"timesteps": 4, "layers": [
        layer(name="fc1", weights=6, nonzero_weights=5, biases=1, dense_macs=6, effective_macs=3.0,
              input_binary=False, input_events=8.0, output_spikes=3.0),
        layer(name="fc2", in_shape=[2], weights=4, nonzero_weights=4, biases=2, dense_macs=4, effective_macs=2.0,
              synops=6.0, input_events=3.0, output_spikes=2.0, neuron_model="lif"),
    ]})


def conv_network() -> NetworkActivity:
    """conv1: 1x4x4 -> 2x4x4 (3x3, padding 1), fed by 5 input spikes (2 interior x 18 synapses
    + 3 corners x 8 = 60 SynOps), two non-zero biases at 16 positions, IF, 10 spikes;
    conv2: 2x4x4 -> 1x2x2 (2x2, stride 2, no bias), fed by those 10 spikes (1 synapse each),
    non-spiking readout; T = 2."""
    return NetworkActivity.from_dict({"timesteps": 2, "layers": [
        layer(name="conv1", kind="conv2d", in_shape=[1, 4, 4], out_shape=[2, 4, 4], weights=18, nonzero_weights=18,
              biases=2, dense_macs=288, effective_macs=100.0, synops=60.0, input_events=5.0, neurons=32,
              output_spikes=10.0),
        layer(name="conv2", kind="conv2d", in_shape=[2, 4, 4], out_shape=[1, 2, 2], weights=8, nonzero_weights=8,
              biases=0, dense_macs=32, effective_macs=20.0, synops=10.0, input_events=10.0, neurons=0,
              output_spikes=0.0, neuron_model="none"),
    ]})


def picojoules(terms: dict) -> dict:
    return {k: pytest.approx(v * PJ, rel=1e-12, abs=1e-30) for k, v in terms.items()}


# ------------------------------------------------------------------------------------ ops


def test_ops_linear_network_by_hand():
    energies = ops_energy(linear_network(), energy_config())
    # SNN fc1 (analog, once): MACs 4.6 * 6 = 27.6, bias 0.9 * 1 = 0.9
    # SNN fc2: SynOps 0.9 * 6 = 5.4, biases 0.9 * 2 outputs * 4 steps = 7.2
    assert energies["snn"].per_layer == {"fc1": picojoules({"mac": 27.6, "ac": 0.0, "bias": 0.9}),
                                         "fc2": picojoules({"mac": 0.0, "ac": 5.4, "bias": 7.2})}
    assert energies["snn"].total == pytest.approx(41.1 * PJ)
    # dense DNN: 4.6 * 6 + 0.9 * 1 = 28.5 ; 4.6 * 4 + 0.9 * 2 = 20.2
    assert energies["dnn_dense"].layer_totals() == picojoules({"fc1": 28.5, "fc2": 20.2})
    # zero-skipping DNN: 4.6 * 3 + 0.9 = 14.7 ; 4.6 * 2 + 1.8 = 11.0
    assert energies["dnn_effective"].layer_totals() == picojoules({"fc1": 14.7, "fc2": 11.0})


def test_ops_pays_the_analog_layer_every_timestep_when_asked():
    energies = ops_energy(linear_network(), energy_config(analog_input="every_timestep"))
    # 4 steps: MACs 4.6 * 6 * 4 = 110.4, bias 0.9 * 4 = 3.6
    assert energies["snn"].per_layer["fc1"] == picojoules({"mac": 110.4, "ac": 0.0, "bias": 3.6})
    assert energies["dnn_dense"].total == pytest.approx(48.7 * PJ)  # the DNN runs once either way


def test_ops_conv_network_and_precision_presets_by_hand():
    energies = ops_energy(conv_network(), energy_config())
    # SNN conv1: 0.9 * 60 + 0.9 * (2 biases * 16 positions) * 2 steps = 54 + 57.6; conv2: 0.9 * 10
    assert energies["snn"].layer_totals() == picojoules({"conv1": 111.6, "conv2": 9.0})
    # dense DNN: 4.6 * 288 + 0.9 * 32 = 1353.6 ; 4.6 * 32 = 147.2
    assert energies["dnn_dense"].layer_totals() == picojoules({"conv1": 1353.6, "conv2": 147.2})
    # zero-skipping: 4.6 * 100 + 28.8 = 488.8 ; 4.6 * 20 = 92
    assert energies["dnn_effective"].layer_totals() == picojoules({"conv1": 488.8, "conv2": 92.0})
    int8 = ops_energy(conv_network(), energy_config(ops={"precision": "int8"}))
    # int8: AC 0.03 pJ: (60 + 64 + 10) * 0.03 = 4.02 ; MAC 0.23: 0.23 * 320 + 0.03 * 32 = 74.56
    assert int8["snn"].total == pytest.approx(4.02 * PJ)
    assert int8["dnn_dense"].total == pytest.approx(74.56 * PJ)
    fp16 = ops_energy(conv_network(), energy_config(ops={"precision": "fp16"}))
    assert fp16["snn"].total == pytest.approx(0.4 * 134 * PJ)  # AC 0.4 pJ


def test_ops_has_no_zero_skipping_dnn_without_effective_macs():
    record = linear_network().to_dict()
    record["layers"][1]["effective_macs"] = None
    assert set(ops_energy(NetworkActivity.from_dict(record), energy_config())) == {"snn", "dnn_dense"}


# -------------------------------------------------------------------------------- lemaire


def test_sram_access_energy_interpolations_by_hand():
    cfg = energy_config()
    # 2048 32-bit words = 8 KiB -> 10 pJ ; 5120 words = 20 KiB, halfway to 32 KiB -> 15 pJ
    assert sram_access_energy(2048, cfg) == pytest.approx(10 * PJ)
    assert sram_access_energy(5120, cfg) == pytest.approx(15 * PJ)
    assert sram_access_energy(8192, cfg) == pytest.approx(20 * PJ)
    # 1 MiB -> 100 pJ, and 100 pJ beyond (no Horowitz point past 1 MiB)
    assert sram_access_energy(262144, cfg) == pytest.approx(100 * PJ)
    assert sram_access_energy(10 * 262144, cfg) == pytest.approx(100 * PJ)
    assert sram_access_energy(1024, cfg) == pytest.approx(5 * PJ)  # 4 KiB: half of 8 KiB's
    fit = energy_config(lemaire={"sram_interpolation": "linear_fit"})
    # Lemaire's line: 13.2 + 1.09e-5 pJ/bit * 65536 bits = 13.9143424 pJ
    assert sram_access_energy(2048, fit) == pytest.approx(13.9143424 * PJ)
    assert sram_access_energy(0, fit) == pytest.approx(13.2 * PJ)
    packed = energy_config(lemaire={"word_bits": 8, "sram_access": "packed"})
    # 8192 bytes of 8-bit words -> 10 pJ per 64-bit access, 8 words per access -> 1.25 pJ
    assert sram_access_energy(8192, packed) == pytest.approx(1.25 * PJ)


def test_lemaire_linear_network_by_hand():
    energies = lemaire_energy(linear_network(), energy_config())
    fc1 = {
        "mac": 3.2 * 6,                 # one dense pass (once): 6 MACs
        "bias": 0.1 * 1,
        "addressing": 0.1 * (3 + 2),    # N_in + N_out
        "memory_input": 3 * 0.0146484375,        # 3 input reads in a 3-word memory
        "memory_params": (6 + 1) * 0.0341796875,  # 6 weights + 1 bias in a 7-word memory
        "current": 0.1 * 2 * 4,         # the stored current added to 2 membranes at 4 steps
        "memory_current": 2 * 4 * 0.009765625,   # and read from a 2-word memory
        "memory_potential": 2 * 2 * 4 * 0.009765625,  # each neuron read + written per step
        "reset": 0.1 * 3, "memory_output": 3 * 4.8828125,  # 3 spikes into the FIFO
        "leak": 0.0, "accumulate": 0.0,
    }
    fc2 = {
        "accumulate": 0.1 * 6, "bias": 0.1 * 2 * 4,
        "addressing": 0.1 * 6,          # one address per synapse; no multiply in a linear layer
        "memory_input": 3 * 4.8828125,  # 3 spikes read from the FIFO
        "memory_params": (6 + 2 * 4) * 0.029296875,  # 6 weights + 8 bias reads, 6-word memory
        "memory_potential": 2 * (6 + 2 * 4) * 0.009765625,
        "leak": 3.2 * 2 * 4,            # LIF: one MAC per neuron per step
        "reset": 0.1 * 2, "memory_output": 2 * 4.8828125,
        "mac": 0.0, "current": 0.0, "memory_current": 0.0,
    }
    assert energies["snn"].per_layer["fc1"] == picojoules(fc1)
    assert energies["snn"].per_layer["fc2"] == picojoules(fc2)
    assert energies["snn"].layer_totals() == picojoules({"fc1": 36.066015625, "fc2": 52.89765625})
    dense = energies["dnn_dense"].per_layer
    assert dense["fc1"] == picojoules({**dict.fromkeys(fc2, 0.0), "mac": 19.2, "bias": 0.1, "addressing": 0.5,
                                       "memory_input": 0.0439453125, "memory_params": 0.2392578125,
                                       "memory_output": 2 * 0.009765625})
    # fc2: 3.2 * 4 + 0.1 * 2 + 0.1 * (2 + 2) + 2 * e(2) + (4 + 2) * e(6) + 2 * e(2)
    assert energies["dnn_dense"].layer_totals()["fc2"] == pytest.approx(13.61484375 * PJ)


def test_lemaire_options_by_hand():
    network = linear_network()
    base = lemaire_energy(network, energy_config())["snn"].per_layer
    every = lemaire_energy(network, energy_config(analog_input="every_timestep"))["snn"].per_layer["fc1"]
    # 4 dense passes, no stored current
    assert every["mac"] == pytest.approx(4 * 19.2 * PJ) and every["addressing"] == pytest.approx(4 * 0.5 * PJ)
    assert every["current"] == 0.0 and every["memory_current"] == 0.0
    assert every["memory_potential"] == base["fc1"]["memory_potential"]
    no_reset = lemaire_energy(network, energy_config(lemaire={"count_resets": False}))["snn"].per_layer
    assert no_reset["fc1"]["reset"] == 0.0 and no_reset["fc2"]["reset"] == 0.0
    product = lemaire_energy(network, energy_config(lemaire={"dense_fc_addressing": "inputs_times_outputs"}))
    assert product["dnn_dense"].per_layer["fc1"]["addressing"] == pytest.approx(0.1 * 3 * 2 * PJ)
    int8 = lemaire_energy(network, energy_config(lemaire={"arithmetic": "int8"}))["snn"].per_layer["fc2"]
    assert int8["leak"] == pytest.approx((0.03 + 0.2) * 8 * PJ) and int8["accumulate"] == pytest.approx(0.18 * PJ)


def test_lemaire_conv_network_by_hand():
    energies = lemaire_energy(conv_network(), energy_config())
    snn = energies["snn"].per_layer
    # e(20 words) = 0.09765625 ; e(32) = 0.15625 ; e(8) = 0.0390625 ; e(4) = 0.01953125 ; e(16) = 0.078125
    assert snn["conv1"] == picojoules({
        "mac": 0.0, "accumulate": 0.1 * 60, "bias": 0.1 * 32 * 2,
        "addressing": 0.1 * 60 + 3.2 * 2 * 5,       # 2 multiplies locate each spike's first output
        "memory_input": 5 * 4.8828125,
        "memory_params": (60 + 32 * 2) * 0.09765625,
        "memory_potential": 2 * (60 + 32 * 2) * 0.15625,
        "leak": 0.0, "reset": 0.1 * 10, "current": 0.0, "memory_current": 0.0,
        "memory_output": 10 * 4.8828125,
    })
    assert snn["conv2"] == picojoules({
        "mac": 0.0, "accumulate": 0.1 * 10, "bias": 0.0, "addressing": 0.1 * 10 + 3.2 * 2 * 10,
        "memory_input": 10 * 4.8828125, "memory_params": 10 * 0.0390625,
        "memory_potential": 2 * 10 * 0.01953125,    # a non-spiking readout: no per-step pass
        "leak": 0.0, "reset": 0.0, "current": 0.0, "memory_current": 0.0, "memory_output": 0.0,
    })
    dense = energies["dnn_dense"].per_layer
    assert dense["conv1"] == picojoules({
        "mac": 3.2 * 288, "accumulate": 0.0, "bias": 0.1 * 32,
        "addressing": 0.1 * (16 + 32 + 18),         # inputs + outputs + C_out x kernel
        "memory_input": 288 * 0.078125,              # every MAC reads its input (16-word memory)
        "memory_params": (288 + 32) * 0.09765625, "memory_potential": 0.0,
        "leak": 0.0, "reset": 0.0, "current": 0.0, "memory_current": 0.0,
        "memory_output": 32 * 0.15625,
    })
    assert energies["dnn_dense"].layer_totals()["conv2"] == pytest.approx(
        (3.2 * 32 + 0.1 * (32 + 4 + 4) + 32 * 0.15625 + 32 * 0.0390625 + 4 * 0.01953125) * PJ)


# --------------------------------------------------------------------------- break-even


def test_break_even_spikerate_by_hand():
    network, cfg = linear_network(), energy_config()
    assert network.spikerate == pytest.approx((3 + 2) / (2 + 2))
    # ops: silent SNN = 28.5 (fc1) + 7.2 (fc2 biases) = 35.7 pJ, measured 41.1 at rate 1.25,
    # dense DNN 48.7: r* = 1.25 * (48.7 - 35.7) / (41.1 - 35.7)
    assert break_even_spikerate(network, "ops", cfg) == pytest.approx(1.25 * 13.0 / 5.4)
    # the zero-skipping DNN (25.7 pJ) is cheaper than the silent SNN: no break-even
    assert break_even_spikerate(network, "ops", cfg, "dnn_effective") is None
    # lemaire has no zero-skipping DNN; its silent SNN (fc1 + fc2 static terms) already costs
    # more than the dense DNN (33.7 pJ)
    assert break_even_spikerate(network, "lemaire", cfg, "dnn_effective") is None
    assert break_even_spikerate(network, "lemaire", cfg) is None


@pytest.mark.parametrize("model", sorted(ENERGY_MODELS))
def test_every_model_is_affine_in_the_activity(model):
    for network in (linear_network(), conv_network()):
        cfg = energy_config()
        at = {c: ENERGY_MODELS[model](network.with_activity_scaled(c), cfg)["snn"].total for c in (0.0, 0.5, 1.0, 3.0)}
        assert at[0.5] == pytest.approx((at[0.0] + at[1.0]) / 2, rel=1e-12)
        assert at[3.0] == pytest.approx(at[0.0] + 3 * (at[1.0] - at[0.0]), rel=1e-12)


def test_break_even_rate_makes_the_energies_equal():
    network, cfg = conv_network(), energy_config()
    rate = break_even_spikerate(network, "ops", cfg, "dnn_effective")
    assert rate is not None and rate > network.spikerate
    scaled = network.with_activity_scaled(rate / network.spikerate)
    energies = ops_energy(scaled, cfg)
    assert energies["snn"].total == pytest.approx(energies["dnn_effective"].total, rel=1e-12)


# ------------------------------------------------------------------------- silent network


def test_a_silent_network_has_defined_energies_and_an_unchanged_dnn():
    live = linear_network()
    silent = live.with_activity_scaled(0.0)
    assert silent.spikerate == 0.0
    cfg = energy_config()
    for model, estimate in ENERGY_MODELS.items():
        quiet, loud = estimate(silent, cfg), estimate(live, cfg)
        for net in loud:
            assert all(math.isfinite(v) and v >= 0 for terms in quiet[net].per_layer.values() for v in terms.values())
        assert quiet["dnn_dense"].per_layer == loud["dnn_dense"].per_layer
        assert 0 < quiet["snn"].total < loud["snn"].total
    summary = evaluate_energy(silent, cfg)["summary"]
    assert summary["spikerate"] == 0.0
    assert summary["ops"]["break_even_spikerate_dense"] is None  # no slope to extrapolate
    assert summary["ops"]["snn_over_dnn_dense"] == pytest.approx(35.7 / 48.7)
    assert summary["ops"]["dnn_effective_j"] == pytest.approx(25.7 * PJ)


def test_evaluate_energy_summary_and_breakdown_agree():
    network, cfg = conv_network(), energy_config()
    result = evaluate_energy(network, cfg)
    ops = result["summary"]["ops"]
    assert ops["snn_j"] == pytest.approx(120.6 * PJ) and ops["dnn_dense_j"] == pytest.approx(1500.8 * PJ)
    assert ops["snn_over_dnn_dense"] == pytest.approx(120.6 / 1500.8)
    assert ops["per_layer_j"]["snn"] == picojoules({"conv1": 111.6, "conv2": 9.0})
    assert result["breakdown"]["ops"]["snn"]["terms_j"] == picojoules({"mac": 0.0, "ac": 63.0, "bias": 57.6})
    lemaire = result["summary"]["lemaire"]
    assert lemaire["dnn_effective_j"] is None and lemaire["snn_over_dnn_effective"] is None
    assert lemaire["snn_j"] == pytest.approx(sum(sum(t.values()) for t in
                                                 result["breakdown"]["lemaire"]["snn"]["layers"].values()))
    only_ops = evaluate_energy(network, energy_config(models=["ops"]))["summary"]
    assert set(only_ops) == {"spikerate", "ops"}


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize("change, message", [
    ({"dense_macs": 7}, "dense_macs: got 7: must be 6"),
    ({"synops": 1.0, "input_binary": False}, "must be 0 for an analog"),
    ({"neuron_model": "none"}, "neurons: got 2: must be 0 exactly when neuron_model is 'none'"),
    ({"output_spikes": 9.0}, "output_spikes: got 9.0: must be at most neurons x timesteps (8)"),
    ({"nonzero_weights": 7}, "nonzero_weights: got 7"),
    ({"effective_macs": 6.5}, "effective_macs: got 6.5"),
    ({"input_binary": 1}, "input_binary: got 1: must be true or false"),
    ({"synops": -1.0}, "synops: got -1.0: must be a finite number >= 0"),
    ({"synops": float("nan")}, "synops: got nan"),
    ({"kind": "conv3d"}, "kind: got 'conv3d'"),
    ({"in_shape": [3, 1]}, "in_shape: got [3, 1]: must be a list of 1 positive integers"),
    ({"neurons": 3}, "neurons: got 3: must be at most the outputs (2)"),
    ({"extra": 1}, "unknown ['extra']"),
])
def test_bad_records_are_refused_with_the_key_and_the_value(change, message):
    record = layer(name="fc", synops=2.0, input_events=1.0, output_spikes=1.0)
    record.update(change)
    with pytest.raises(ValueError) as error:
        NetworkActivity.from_dict({"timesteps": 4, "layers": [record]})
    assert str(error.value).startswith("activity layer 0") and message in str(error.value)


def test_network_records_round_trip_and_refuse_duplicates():
    network = conv_network()
    assert NetworkActivity.from_dict(network.to_dict()) == network
    record = network.to_dict()
    record["layers"][1]["name"] = "conv1"
    with pytest.raises(ValueError, match="unique"):
        NetworkActivity.from_dict(record)
    with pytest.raises(ValueError, match="timesteps"):
        NetworkActivity.from_dict({"timesteps": 0, "layers": network.to_dict()["layers"]})
    missing = network.to_dict()
    del missing["layers"][0]["synops"]
    with pytest.raises(ValueError, match=r"missing \['synops'\]"):
        NetworkActivity.from_dict(missing)
    assert LayerActivity.from_dict(record["layers"][0]).bias_outputs == 32


# --------------------------------------------------------------- converted SNN -> records


def test_converted_snn_activity_maps_the_simulation_onto_weight_layers():
    from lowspike.snn.activity import eflops_per_sample, spiking_fanouts
    from lowspike.snn.convert import convert
    from lowspike.snn.simulation import simulate_batch

    torch.manual_seed(0)
    model = nn.Module()
    model.layers = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                                 nn.Linear(3 * 4 * 4, 5), nn.ReLU(), nn.Linear(5, 4))
    with torch.no_grad():
        model.layers[0].bias[1] = 0.0  # one zero bias: B = 2 channels x 64 positions
    inputs = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    inputs[:, :, :2] = 0.0  # some zero pixels
    snn = convert(model, inputs, percentile=100.0)
    timesteps = 7
    out = simulate_batch(snn, inputs, timesteps, fanouts=spiking_fanouts(snn), mode="dense")
    names = ["if1", "if2", "if3"]
    simulation = {"timesteps": timesteps, "input_coding": "analog",
                  "input_events": float((inputs != 0).flatten(1).sum(1).double().mean()) * timesteps,
                  "spikes_per_layer": dict(zip(names, (out.spikes_per_layer.sum(0).double() / 6).tolist())),
                  "synops_per_layer": dict(zip(["input", *names], out.synops_per_layer.mean(0).tolist()))}
    eflops = eflops_per_sample(model, inputs)
    activity = converted_snn_activity(snn, simulation, eflops["per_layer"])
    conv, fc1, fc2 = activity.layers
    assert [layer.name for layer in activity.layers] == ["conv2d0", "linear4", "linear6"]
    assert (conv.kind, conv.in_shape, conv.out_shape) == ("conv2d", (1, 8, 8), (3, 8, 8))
    assert (fc1.in_shape, fc1.out_shape, fc2.out_shape) == ((48,), (5,), (4,))
    # dense MACs without the taps on the zero padding: per row 2 + 6 x 3 + 2 = 22 in-bound taps of the
    # 3-tap kernel over 8 positions, so 22 x 22 per (input, output) channel pair; 27 x 64 with them
    assert (conv.weights, conv.biases, conv.dense_macs, conv.bias_outputs) == (27, 2, 3 * 22 * 22, 128)
    assert [layer.input_binary for layer in activity.layers] == [False, True, True]
    assert conv.synops == 0.0 and conv.input_events == pytest.approx(48 * 7)  # 48 non-zero pixels x T
    assert fc1.input_events == simulation["spikes_per_layer"]["if1"]
    assert fc1.synops == simulation["synops_per_layer"]["if1"]
    assert fc2.output_spikes == simulation["spikes_per_layer"]["if3"] and fc2.neurons == 4
    # effective MACs: weight and input both non-zero, counted directly on the DNN
    x = inputs
    direct = []
    for module in model.layers:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            active, mask = (x != 0).double(), (module.weight != 0).double()
            if isinstance(module, nn.Conv2d):
                count = torch.nn.functional.conv2d(active, mask, padding=module.padding).sum()
            else:
                count = torch.nn.functional.linear(active, mask).sum()
            direct.append(float(count) / 6)
        x = module(x)
    assert [layer.effective_macs for layer in activity.layers] == pytest.approx(direct, rel=1e-12)
    assert activity.spikerate == pytest.approx(float(out.spikes_per_sample.mean()) / (192 + 5 + 4))
    old_record = {k: v for k, v in simulation.items() if k != "synops_per_layer"}
    with pytest.raises(ValueError, match=r"lacks \['synops_per_layer'\].*re-run the simulate stage"):
        converted_snn_activity(snn, old_record, eflops["per_layer"])


# ------------------------------------------------------- shortcuts and the students' records


def residual_student_records() -> list[dict]:
    """The records of a hand-computed residual student (tests/test_metrics_students.py,
    TinyResidualStudent), as :class:`lowspike.metrics.StudentActivityMeter` writes them: T = 2;
    conv1 (analog, padding taps excluded: 20 of 24 MACs) -> IF; conv2 (fed by pooled spikes) ->
    IF, joined by a shortcut carrying the same pooled spikes (7 / 2 per sample, one membrane
    each); a linear readout."""
    common = {"effective_macs": None, "input_binary": True, "timesteps": 2}
    return [
        {**common, "name": "conv1", "kind": "conv1d", "in_shape": [1, 4], "out_shape": [2, 4], "weights": 6,
         "nonzero_weights": 3, "biases": 1, "dense_macs": 20.0, "effective_macs": 2.0, "input_binary": False,
         "synops": 0.0, "input_events": 0.0, "neurons": 8, "output_spikes": 3.5, "neuron_model": "if"},
        {**common, "name": "conv2", "kind": "conv1d", "in_shape": [2, 2], "out_shape": [2, 2], "weights": 4,
         "nonzero_weights": 1, "biases": 2, "dense_macs": 8.0, "synops": 1.5, "input_events": 3.5, "neurons": 4,
         "output_spikes": 2.5, "neuron_model": "if"},
        {**common, "name": "shortcut", "kind": "residual", "in_shape": [2, 2], "out_shape": [2, 2], "weights": 0,
         "nonzero_weights": 0, "biases": 0, "dense_macs": 4.0, "synops": 3.5, "input_events": 3.5, "neurons": 0,
         "output_spikes": 0.0, "neuron_model": "none"},
        {**common, "name": "readout", "kind": "linear", "in_shape": [2], "out_shape": [3], "weights": 6,
         "nonzero_weights": 3, "biases": 1, "dense_macs": 6.0, "synops": 4.0, "input_events": 2.5, "neurons": 0,
         "output_spikes": 0.0, "neuron_model": "none"},
    ]


def test_the_students_records_become_a_network_activity():
    network = network_activity(residual_student_records())
    assert network.timesteps == 2 and [layer.kind for layer in network.layers] == [
        "conv1d", "conv1d", "residual", "linear"]
    assert network.layers[0].dense_macs == 20 and isinstance(network.layers[0].dense_macs, int)
    assert network.spikerate == pytest.approx((3.5 + 2.5) / 12)
    records = residual_student_records()
    records[1]["timesteps"] = 3
    with pytest.raises(ValueError, match=r"disagree on timesteps: \[2, 3\]"):
        network_activity(records)


def test_ops_prices_a_shortcut_as_additions_by_hand():
    energies = ops_energy(network_activity(residual_student_records()), energy_config())
    # SNN: conv1 analog once: 4.6 * 20 MACs + 0.9 * (1 bias x 4 positions) = 95.6
    #      conv2: 0.9 * 1.5 SynOps + 0.9 * (2 biases x 2 positions) x 2 steps = 1.35 + 7.2
    #      shortcut: one add per arriving spike, 0.9 * 3.5 = 3.15; readout 0.9 * 4 + 0.9 * 1 * 2 = 5.4
    assert energies["snn"].per_layer["shortcut"] == picojoules({"mac": 0.0, "ac": 3.15, "bias": 0.0})
    assert energies["snn"].layer_totals() == picojoules(
        {"conv1": 95.6, "conv2": 8.55, "shortcut": 3.15, "readout": 5.4})
    # DNN: conv1 95.6; conv2 4.6 * 8 + 0.9 * 4 = 40.4; shortcut one add per output, 0.9 * 4 = 3.6;
    # readout 4.6 * 6 + 0.9 = 28.5
    assert energies["dnn_dense"].per_layer["shortcut"] == picojoules({"mac": 0.0, "ac": 3.6, "bias": 0.0})
    assert energies["dnn_dense"].layer_totals() == picojoules(
        {"conv1": 95.6, "conv2": 40.4, "shortcut": 3.6, "readout": 28.5})
    assert "dnn_effective" not in energies  # only the analog layer's effective MACs are known


def test_lemaire_prices_a_shortcut_by_hand():
    energies = lemaire_energy(network_activity(residual_student_records()), energy_config())
    zero = dict.fromkeys(energies["snn"].per_layer["conv1"], 0.0)
    # SNN: each of the 3.5 spikes read from the FIFO (e(1000) = 4.8828125), one add and one
    # address per membrane reached, the potential read and written in a 4-word memory
    # (e(4) = 0.01953125); no weight, no per-step neuron pass (conv2 pays it)
    assert energies["snn"].per_layer["shortcut"] == picojoules({
        **zero, "accumulate": 0.1 * 3.5, "addressing": 0.1 * 3.5, "memory_input": 3.5 * 4.8828125,
        "memory_potential": 2 * 3.5 * 0.01953125})
    # DNN: 4 additions, N_in + N_out addresses, the shortcut operand read (4-word memory), the
    # joined output read and the sum written
    assert energies["dnn_dense"].per_layer["shortcut"] == picojoules({
        **zero, "accumulate": 0.1 * 4, "addressing": 0.1 * 8, "memory_input": 4 * 0.01953125,
        "memory_output": 2 * 4 * 0.01953125})
    # the convolution after pooling: 1.5 SynOps, 2 x 3.5 address multiplies, 4 biased outputs x 2 steps
    conv2 = energies["snn"].per_layer["conv2"]
    assert conv2["accumulate"] == pytest.approx(0.15 * PJ) and conv2["bias"] == pytest.approx(0.1 * 8 * PJ)
    assert conv2["addressing"] == pytest.approx((0.1 * 1.5 + 3.2 * 7) * PJ)


def teacher_like_network() -> NetworkActivity:
    """A non-spiking network as lowspike.metrics.teacher_layer_activity records it: analog
    inputs everywhere, effective MACs known, a shortcut of 8 additions, 5 of a non-zero input."""
    common = {"input_binary": False, "synops": 0.0, "input_events": 0.0, "neurons": 0, "output_spikes": 0.0,
              "neuron_model": "none", "timesteps": 1}
    return network_activity([
        {**common, "name": "conv", "kind": "conv1d", "in_shape": [2, 4], "out_shape": [2, 4], "weights": 12,
         "nonzero_weights": 2, "biases": 0, "dense_macs": 40.0, "effective_macs": 5.0},
        {**common, "name": "conv.shortcut", "kind": "residual", "in_shape": [2, 4], "out_shape": [2, 4],
         "weights": 0, "nonzero_weights": 0, "biases": 0, "dense_macs": 8.0, "effective_macs": 5.0},
    ])


def test_an_analog_shortcut_is_a_dense_addition_and_the_dnn_only_summary():
    cfg = energy_config()
    energies = ops_energy(teacher_like_network(), cfg)
    # zero-skipping: 4.6 * 5 MACs ; 0.9 * 5 additions of a non-zero input
    assert energies["dnn_effective"].layer_totals() == picojoules({"conv": 23.0, "conv.shortcut": 4.5})
    assert energies["dnn_dense"].layer_totals() == picojoules({"conv": 184.0, "conv.shortcut": 7.2})
    every = ops_energy(teacher_like_network(), energy_config(analog_input="every_timestep"))
    assert every["snn"].per_layer["conv.shortcut"] == picojoules({"mac": 0.0, "ac": 7.2, "bias": 0.0})  # T = 1
    lemaire = lemaire_energy(teacher_like_network(), cfg)
    # e(8 words) = 0.0390625: the dense terms, the sum read and written as a potential
    assert lemaire["snn"].per_layer["conv.shortcut"] == picojoules({
        **dict.fromkeys(lemaire["snn"].per_layer["conv"], 0.0), "accumulate": 0.8, "addressing": 1.6,
        "memory_input": 8 * 0.0390625, "memory_potential": 2 * 8 * 0.0390625})
    assert lemaire["dnn_dense"].per_layer["conv.shortcut"]["memory_output"] == pytest.approx(2 * 8 * 0.0390625 * PJ)
    summary = evaluate_dnn_energy(teacher_like_network(), cfg)["summary"]
    assert summary["ops"]["dnn_dense_j"] == pytest.approx(191.2 * PJ)
    assert summary["ops"]["dnn_effective_j"] == pytest.approx(27.5 * PJ)
    assert summary["lemaire"]["dnn_effective_j"] is None
    assert set(summary["ops"]) == {"dnn_dense_j", "dnn_effective_j", "per_layer_j"}
    assert set(summary["ops"]["per_layer_j"]) == {"dnn_dense", "dnn_effective"}


@pytest.mark.parametrize("change, message", [
    ({"out_shape": [2, 3]}, "out_shape: got [2, 3]: must equal in_shape [2, 2] for a shortcut"),
    ({"weights": 1}, "weights: got 1: must be 0 for a shortcut"),
    ({"dense_macs": 5.0}, "dense_macs: got 5: must be 4 (one addition per output element)"),
    ({"synops": 4.0}, "synops: got 4.0: must be at most input_events (one membrane per spike)"),
    ({"neurons": 4, "neuron_model": "if", "output_spikes": 1.0}, "neurons: got 4: must be 0 for a shortcut"),
])
def test_bad_shortcut_records_are_refused(change, message):
    records = residual_student_records()
    records[2].update(change)
    with pytest.raises(ValueError) as error:
        network_activity(records)
    assert str(error.value).startswith("activity layer 2 'shortcut'") and message in str(error.value)


def test_a_convolution_may_leave_out_its_padding_taps_but_not_exceed_every_tap():
    records = residual_student_records()
    records[0]["dense_macs"] = 25.0  # 6 weights x 4 positions = 24 at most
    with pytest.raises(ValueError, match=r"dense_macs: got 25: must be in \[1, 24\]"):
        network_activity(records)
    records[0]["dense_macs"] = 24.0
    assert network_activity(records).layers[0].dense_macs == 24


def test_silent_energy_and_break_even_from_stored_energies_by_hand():
    summary = evaluate_energy(linear_network(), energy_config())["summary"]
    # ops: the silent SNN pays fc1's dense pass (28.5 pJ) and fc2's biases (7.2 pJ)
    assert summary["ops"]["snn_silent_j"] == pytest.approx(35.7 * PJ)
    assert break_even_from_energies(1.25, 41.1, 35.7, 48.7) == pytest.approx(1.25 * 13.0 / 5.4)
    assert summary["ops"]["break_even_spikerate_dense"] == pytest.approx(1.25 * 13.0 / 5.4)
    assert break_even_from_energies(1.25, 41.1, 35.7, 30.0) is None  # the silent SNN costs more
    assert break_even_from_energies(0.0, 35.7, 35.7, 48.7) is None  # silent: no slope
    assert break_even_from_energies(1.25, 41.1, 35.7, None) is None
