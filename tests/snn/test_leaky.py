"""The fused multi-step IF/LIF neuron against hand-computed cases and its snntorch module step by
step (snntorch's Leaky for LIF, its reset-first variant for IF): identical spikes, gradients equal
within float32 rounding for every surrogate of the registry."""

import math

import pytest
import snntorch
import torch

from lowspike import native
from lowspike.snn import leaky
from lowspike.snn.leaky import Repeated, ResetFirstIF, leaky_reference, multistep_leaky, reference_neuron
from lowspike.snn.surrogates import SURROGATE_DERIVATIVES, snntorch_surrogate


def _step_loop(neuron, current):
    membrane = torch.zeros_like(current[0])
    spikes = []
    for t in range(current.shape[0]):
        spike, membrane = neuron(current[t], membrane)
        spikes.append(spike)
    return torch.stack(spikes)


def _snntorch_loop(current, beta, surrogate="atan"):
    """The step-by-step loop of the snntorch module of the neuron (:func:`reference_neuron`)."""
    return _step_loop(reference_neuron(beta, 1.0, surrogate), current)


def _plain_snntorch_loop(current, beta):
    return _step_loop(snntorch.Leaky(beta=beta, threshold=1.0, spike_grad=snntorch_surrogate("atan"),
                                     reset_mechanism="subtract"), current)


IF_ORDER_CASE = torch.tensor([[1.25], [0.75 + 2.0 ** -23]])
"""U[0] = 1.25 fires; then (U - 1) + I = 1 + 2^-23 > 1 fires again, while (U + I) - 1 rounds
2 + 2^-23 to 2 (a tie, to even) and lands on 1: no spike."""


def test_the_if_neuron_subtracts_the_reset_before_adding_the_input_as_sinabs_and_the_conversion_simulator():
    assert multistep_leaky(IF_ORDER_CASE, 1.0).flatten().tolist() == [1.0, 1.0]
    assert _snntorch_loop(IF_ORDER_CASE, 1.0).flatten().tolist() == [1.0, 1.0]
    assert _plain_snntorch_loop(IF_ORDER_CASE, 1.0).flatten().tolist() == [1.0, 0.0]


def test_the_lif_neuron_adds_the_input_before_the_reset_as_snntorch():
    # beta 0.5: U[0] = 1.5 fires; (0.75 + I) - 1 with I = 1.25 + 2^-23: 2 + 2^-23 rounds to 2 (a
    # tie, to even), then 1.0: no spike; (0.75 - 1) + I would be 1 + 2^-23 and fire
    current = torch.tensor([[1.5], [1.25 + 2.0 ** -23]])
    assert multistep_leaky(current, 0.5).flatten().tolist() == [1.0, 0.0]
    assert _plain_snntorch_loop(current, 0.5).flatten().tolist() == [1.0, 0.0]
    assert type(reference_neuron(0.5)) is snntorch.Leaky and type(reference_neuron(1.0)) is ResetFirstIF


def test_if_backward_hand_computed():
    # I = (0.6, 0.6, 0.6), theta = 1: U = 0.6, 1.2 (spike), 0.8; atan'(x) = 1 / (1 + (pi x)^2)
    current = torch.full((3, 1), 0.6, requires_grad=True)
    spikes = multistep_leaky(current, beta=1.0)
    assert spikes.flatten().tolist() == [0.0, 1.0, 0.0]
    weights = torch.tensor([[1.0], [2.0], [3.0]])
    (spikes * weights).sum().backward()
    d = [1 / (1 + (math.pi * (u - 1.0)) ** 2) for u in (0.6, 1.2, 0.8)]
    # dL/dU[2] = 3 d2; dL/dU[1] = 2 d1 + dL/dU[2]; dL/dU[0] = 1 d0 + dL/dU[1] (beta = 1, reset detached)
    g2 = 3 * d[2]
    g1 = 2 * d[1] + g2
    g0 = 1 * d[0] + g1
    assert current.grad.flatten().tolist() == pytest.approx([g0, g1, g2], rel=1e-6)


def test_lif_backward_hand_computed():
    # beta = 0.5: dL/dU[t] = dL/dS[t] d(U[t]) + 0.5 dL/dU[t+1]; U = 0.6, 0.9, 1.05
    current = torch.full((3, 1), 0.6, requires_grad=True)
    multistep_leaky(current, beta=0.5).sum().backward()
    d = [1 / (1 + (math.pi * (u - 1.0)) ** 2) for u in (0.6, 0.9, 1.05)]
    g2 = d[2]
    g1 = d[1] + 0.5 * g2
    g0 = d[0] + 0.5 * g1
    assert current.grad.flatten().tolist() == pytest.approx([g0, g1, g2], rel=1e-5)


@pytest.mark.parametrize("beta", [1.0, 0.5, 0.9, 0.95])
def test_spikes_equal_snntorch_step_by_step(beta):
    torch.manual_seed(1)
    current = torch.randn(12, 8, 5, 6, 6) * 0.7 + 0.35
    current[3, 0] = 1.0  # membranes landing exactly on the threshold: no spike (fires on U > theta)
    expected = _snntorch_loop(current, beta)
    assert expected.sum() > 0
    assert torch.equal(multistep_leaky(current, beta), expected)


def test_channels_last_steps_give_the_same_spikes():
    torch.manual_seed(2)
    flat = (torch.randn(6 * 4, 3, 5, 5) + 0.4).contiguous(memory_format=torch.channels_last)
    current = flat.unflatten(0, (6, 4))
    spikes = multistep_leaky(current, 1.0)
    assert torch.equal(spikes, _snntorch_loop(current.contiguous(), 1.0))
    assert spikes[0].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("surrogate", sorted(SURROGATE_DERIVATIVES))
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.9])
def test_gradients_equal_snntorch_within_float32_rounding(surrogate, beta):
    torch.manual_seed(3)
    base = torch.randn(9, 6, 4, 5) * 0.6 + 0.4
    if surrogate == "sigmoid":  # snntorch's sigmoid derivative overflows to NaN below U - theta = -3.5
        base = base.clamp_min(-2.0)
    weights = torch.randn(9, 6, 4, 5)
    fused_input = base.clone().requires_grad_()
    reference_input = base.clone().requires_grad_()
    fused = multistep_leaky(fused_input, beta, surrogate=surrogate)
    reference = _snntorch_loop(reference_input, beta, surrogate)
    assert torch.equal(fused, reference)
    (fused * weights).sum().backward()
    (reference * weights).sum().backward()
    assert torch.isfinite(reference_input.grad).all()
    torch.testing.assert_close(fused_input.grad, reference_input.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_a_static_current_is_integrated_and_differentiated_like_its_expansion(beta):
    torch.manual_seed(4)
    static = (torch.randn(5, 3, 4) * 0.5 + 0.3).requires_grad_()
    expanded = static.detach().clone().requires_grad_()
    weights = torch.randn(7, 5, 3, 4)
    fused = multistep_leaky(Repeated(static, 7), beta)
    reference = _snntorch_loop(expanded.unsqueeze(0).expand(7, 5, 3, 4), beta)
    assert torch.equal(fused, reference)
    (fused * weights).sum().backward()
    (reference * weights).sum().backward()
    torch.testing.assert_close(static.grad, expanded.grad, rtol=1e-5, atol=1e-5)


def test_a_bfloat16_current_integrates_in_float32():
    current = torch.full((4, 2), 0.6, dtype=torch.bfloat16, requires_grad=True)
    spikes = multistep_leaky(current, 1.0)
    assert spikes.dtype == torch.float32
    assert spikes[:, 0].tolist() == _snntorch_loop(current.detach().float(), 1.0)[:, 0].tolist()
    spikes.sum().backward()
    assert current.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("beta", [1.0, 0.9])
def test_the_reference_loop_is_the_snntorch_module(beta):
    torch.manual_seed(5)
    current = torch.randn(6, 4, 3) + 0.5
    assert torch.equal(leaky_reference(current, beta), _snntorch_loop(current, beta))


def test_evaluation_keeps_no_graph():
    with torch.inference_mode():
        spikes = multistep_leaky(torch.randn(5, 3) + 0.5, 1.0)
    assert spikes.grad_fn is None


def _spikes_and_gradient(current, beta, surrogate, static_steps=None):
    leaf = current.detach().clone().requires_grad_(True)
    drive = Repeated(leaf, static_steps) if static_steps else leaf
    spikes = multistep_leaky(drive, beta, surrogate=surrogate)
    weights = torch.linspace(-1.0, 1.0, spikes.numel()).reshape(spikes.shape)
    (spikes * weights).sum().backward()
    return spikes.detach(), leaf.grad


@pytest.mark.parametrize("surrogate", sorted(leaky.SURROGATE_CODES))
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.7])
@pytest.mark.parametrize("layout", ["steps", "channels_last", "static", "bfloat16", "threads"])
def test_the_compiled_kernels_give_the_eager_loops_bits(monkeypatch, surrogate, beta, layout):
    """Same spikes, same gradients to the last bit: the compiled kernels change speed, never results."""
    torch.manual_seed(0)
    current = torch.randn(6, 3, 4, 5, 7) * 0.8 + 0.4
    static_steps = None
    if layout == "channels_last":
        current = current.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (6, 3))
    elif layout == "static":
        current, static_steps = current[0], 6
    elif layout == "bfloat16":
        current = current.to(torch.bfloat16)
    elif layout == "threads":  # three threads, the last range shorter than the others
        monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    monkeypatch.setenv(native.SWITCH, "0")
    eager = _spikes_and_gradient(current, beta, surrogate, static_steps)
    monkeypatch.setenv(native.SWITCH, "1")
    assert native.library(leaky.KERNELS, leaky.SIGNATURES) is not None
    compiled = _spikes_and_gradient(current, beta, surrogate, static_steps)
    assert torch.equal(eager[0], compiled[0]) and torch.equal(eager[1], compiled[1])
    assert compiled[1].dtype == current.dtype and compiled[0].stride() == eager[0].stride()
    with torch.inference_mode():
        assert torch.equal(multistep_leaky(Repeated(current, 6) if static_steps else current, beta), eager[0])


def test_the_kernels_split_a_layer_into_block_aligned_ranges_per_thread(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    assert native.ranges(1000) == [(0, 384), (384, 768), (768, 1000)]
    assert native.ranges(10) == [(0, 10)]


def test_a_machine_that_cannot_compile_runs_the_eager_loops_with_one_warning(monkeypatch, capsys, tmp_path):
    current = torch.randn(5, 40) + 0.5
    expected = _spikes_and_gradient(current, 1.0, "atan")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("LOWSPIKE_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setattr(native, "_libraries", {})
    first = _spikes_and_gradient(current, 1.0, "atan")
    second = _spikes_and_gradient(current, 1.0, "atan")
    assert all(torch.equal(a, b) for a, b in zip(expected, first)) and torch.equal(first[1], second[1])
    [line] = [l for l in capsys.readouterr().err.splitlines() if l.startswith("warning")]
    assert line.startswith("warning: the compiled kernels of leaky_kernels.c are unavailable (FileNotFoundError: ")
    assert line.endswith("running the eager code (same results, slower)")
    assert not list((tmp_path / "kernels").glob("*.so"))
