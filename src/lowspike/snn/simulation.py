"""Simulation of a converted SNN over T timesteps, vectorized over the batch.

Each weight layer integrates its input current into integrate-and-fire neurons (threshold
theta = 1, reset by subtraction: ``v += I; s = 1[v > theta]; v -= theta s``, the students' IF
neuron (:mod:`.leaky`) and sinabs' ``IAF`` in the same float32 order; ``snntorch.Leaky(beta=1,
reset_mechanism="subtract")`` gives the same spike trains up to that order's rounding); pooling
and flattening act on the spikes feeding the next weight layer. With ``analog`` input the
image is a constant current into the first weight layer (computed once); with ``poisson`` or
``bernoulli`` coding each pixel spikes with probability equal to its intensity at every
step, and those input spikes count as spikes and SynOps. The prediction at step t is the
class with the most output spikes so far, ties broken by the output membrane potential.

Speed. Every buffer (membranes, spikes, counts) is allocated once and updated in
place. Spike counts are accumulated per neuron and turned into per-sample spikes and SynOps
once at the end (``SynOps_b = sum_i n_bi * fanout_i`` with ``n_bi`` the spike count of neuron
i over T): both are sums of integers, exact in float32/float64, so they equal the per-step
sums. Average pooling of 0/1 spikes is a sum of strided slices divided by ``k^2`` (exact,
and several times faster than ``avg_pool2d`` on CPU).

Event-driven currents. Spikes are binary and often rare, so a weight layer's current
``I = W s + b`` only needs the weights of the inputs that spiked:

- linear: ``I[b] = b + sum_{j : s_bj != 0} s_bj W[:, j]`` (``index_add`` of the gathered rows
  of ``W^T``);
- convolution: for each kernel offset (kh, kw), each active input (b, c, h, w) adds
  ``s_bchw W[:, c, kh, kw]`` to the output position ``((h + p - kh) / stride, (w + p - kw) / stride)``
  when that is an integer position inside the output map.

The path is chosen per layer and per step from the input's measured density (non-zero
fraction, known for free from the previous layer's spike count): below
:data:`EVENT_DENSITY_LINEAR` / :data:`EVENT_DENSITY_CONV` the event path runs, above it the
dense ``addmm`` / ``conv2d``. Both compute the same sum in a different order: in float64 the
spikes are identical (tested), in float32 an input that lands within rounding of the
threshold can flip (``mode="dense"`` reproduces the plain reference bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from ..projections import synops_from_spikes

EVENT_DENSITY_LINEAR = 0.02
"""Input density below which a linear layer uses the event path. Measured on this 2-core CPU
(1 thread, batch 500, layers 300->100, 400->120, 784->300): the gathered ``index_add`` beats
MKL's dense ``addmm`` from about 2% non-zero inputs down (1.1x at 2%, 1.5-3x at 0.3%) and
loses above 5% (up to 50x slower at 50%)."""

EVENT_DENSITY_CONV = 0.0
"""Input density below which a convolution uses the event path. Measured against oneDNN's
dense ``conv2d`` on LeNet-5's second convolution (6->16 channels, 5x5, 14x14 input, batch 500,
1 thread): the event path was 1.8x to 7x slower at every density from 2% down to 0.05% (its 25
kernel-offset ``index_add`` calls cost more than the whole dense convolution), so ``auto``
never picks it on CPU; ``mode="event"`` still runs it."""

Mode = Literal["auto", "dense", "event"]


def apply_layer(spec: dict, x: torch.Tensor) -> torch.Tensor:
    kind = spec["kind"]
    if kind == "linear":
        return F.linear(x, spec["weight"], spec["bias"])
    if kind == "conv":
        return F.conv2d(x, spec["weight"], spec["bias"], stride=tuple(spec["stride"]), padding=tuple(spec["padding"]))
    if kind == "avgpool":
        return F.avg_pool2d(x, spec["kernel"])
    if kind == "flatten":
        return x.flatten(1)
    raise ValueError(f"unknown layer kind {kind!r}")


def pool_sum(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """``avg_pool2d(x, k)`` as ``(sum of the k x k strided slices) / k^2``.

    Bit-identical to :func:`F.avg_pool2d` whenever the window sums are exact, as for 0/1
    spikes (integer sums); rows and columns past the last full window are dropped, as there.
    """
    h, w = x.shape[-2] // kernel, x.shape[-1] // kernel
    x = x[..., : h * kernel, : w * kernel]
    rows = x.unflatten(-2, (h, kernel))
    acc = rows[..., 0, :].clone()
    for i in range(1, kernel):
        acc.add_(rows[..., i, :])
    cols = acc.unflatten(-1, (w, kernel))
    out = cols[..., 0].clone()
    for i in range(1, kernel):
        out.add_(cols[..., i])
    return out.div_(kernel * kernel)


def linear_events(x: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ W^T + b`` from the non-zero entries of ``x`` ``[B, K]`` only (``weight_t`` = ``W^T``
    ``[K, M]``): ``I[b] = b + sum_{j : x_bj != 0} x_bj W^T[j]``."""
    out = bias.expand(x.shape[0], bias.shape[0]).clone()
    rows, cols = x.nonzero(as_tuple=True)
    if rows.numel():
        contrib = weight_t.index_select(0, cols)
        values = x[rows, cols]
        if not bool((values == 1).all()):
            contrib.mul_(values.unsqueeze(1))
        out.index_add_(0, rows, contrib)
    return out


def conv_events(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: tuple[int, int],
                padding: tuple[int, int], out_hw: tuple[int, int]) -> torch.Tensor:
    """``conv2d(x, W, b)`` from the non-zero entries of ``x`` ``[B, C, H, W]`` only.

    Each active input (b, c, h, w) and kernel offset (kh, kw) adds ``x W[:, c, kh, kw]`` to
    output position ``(oh, ow) = ((h + p_h - kh) / s_h, (w + p_w - kw) / s_w)`` when both are
    integers inside the output map. Returns ``[B, C_out, H_out, W_out]``.
    """
    batch = x.shape[0]
    c_out, _, kh_size, kw_size = weight.shape
    ho, wo = out_hw
    out = bias.expand(batch * ho * wo, c_out).clone()
    b, c, h, w = x.nonzero(as_tuple=True)
    if b.numel():
        values = x[b, c, h, w]
        binary = bool((values == 1).all())
        hp, wp = h + padding[0], w + padding[1]
        for kh in range(kh_size):
            oh_num = hp - kh
            for kw in range(kw_size):
                ow_num = wp - kw
                oh, ow = oh_num // stride[0], ow_num // stride[1]
                keep = (oh_num >= 0) & (ow_num >= 0) & (oh < ho) & (ow < wo)
                if stride[0] > 1 or stride[1] > 1:
                    keep &= (oh_num % stride[0] == 0) & (ow_num % stride[1] == 0)
                index = keep.nonzero().squeeze(1)
                if index.numel() == 0:
                    continue
                target = (b[index] * ho + oh[index]) * wo + ow[index]
                contrib = weight[:, :, kh, kw].t().index_select(0, c[index])
                if not binary:
                    contrib.mul_(values[index].unsqueeze(1))
                out.index_add_(0, target, contrib)
    return out.view(batch, ho, wo, c_out).permute(0, 3, 1, 2)


def apply_trailing(ops: list[dict], x: torch.Tensor) -> torch.Tensor:
    for op in ops:
        x = apply_layer(op, x)
    return x


@dataclass
class SimulationOutput:
    """Raw records of one batch."""

    spikes_per_layer: torch.Tensor  # [T, L] spikes summed over the batch, per IF layer
    spikes_per_sample: torch.Tensor  # [B] total over T and layers
    predictions: torch.Tensor  # [T, B] predicted class after each step
    input_spikes_per_sample: torch.Tensor  # [B] (0 for analog input)
    synops_per_sample: torch.Tensor  # [B] float64, 0 when no fan-outs were given
    synops_per_layer: torch.Tensor  # [B, L + 1] float64: caused by the input's spikes (column 0)
    # and by each IF layer's (column l); sums to synops_per_sample exactly (integer counts)


class _WeightLayer:
    """One weight layer, the stateless ops on the spikes that feed it, and its IF neurons'
    buffers (membrane, spikes, spike counts), allocated once per simulation."""

    def __init__(self, spec: dict, before: list[dict], in_shape: tuple[int, ...], batch: int,
                 device: torch.device, dtype: torch.dtype, binary_input: bool):
        self.spec, self.before, self.kind = spec, before, spec["kind"]
        self.weight, self.bias = spec["weight"], spec["bias"]
        self.binary_input = binary_input
        probe = torch.zeros((1, *in_shape), dtype=dtype, device=device)
        for op in before:
            probe = apply_layer(op, probe)
        self.fan_in_size = probe[0].numel()
        out_shape = apply_layer(spec, probe).shape[1:]
        if self.kind == "linear":
            self.weight_t = self.weight.t().contiguous()
        else:
            self.stride, self.padding = tuple(spec["stride"]), tuple(spec["padding"])
            self.out_hw = tuple(out_shape[-2:])
        self.membrane = torch.zeros((batch, *out_shape), dtype=dtype, device=device)
        self.spikes = torch.zeros_like(self.membrane)
        self.fired = torch.zeros(self.membrane.shape, dtype=torch.bool, device=device)
        self.counts = torch.zeros_like(self.membrane)
        self.current = torch.empty_like(self.membrane) if self.kind == "linear" else None
        self.event_steps = 0

    def feed(self, spikes: torch.Tensor) -> torch.Tensor:
        """The input of the weight layer: the stateless ops applied to the incoming spikes."""
        x = spikes
        for op in self.before:
            if op["kind"] == "avgpool" and self.binary_input:
                x = pool_sum(x, op["kernel"])
            else:
                x = apply_layer(op, x)
        return x

    def use_event(self, mode: str, incoming: torch.Tensor | None) -> bool:
        """Event path or dense: in ``auto`` mode, event when the density ``incoming spikes /
        (batch x input size)`` is below the layer kind's threshold; the incoming spikes bound
        the non-zero inputs after pooling from above."""
        if mode != "auto":
            return mode == "event"
        threshold = EVENT_DENSITY_LINEAR if self.kind == "linear" else EVENT_DENSITY_CONV
        return float(incoming) < threshold * self.fan_in_size * self.membrane.shape[0]

    def current_from(self, x: torch.Tensor, event: bool) -> torch.Tensor:
        if event:
            self.event_steps += 1
            if self.kind == "linear":
                return linear_events(x, self.weight_t, self.bias)
            return conv_events(x, self.weight, self.bias, self.stride, self.padding, self.out_hw)
        if self.kind == "linear":
            return torch.addmm(self.bias, x, self.weight_t, out=self.current)
        return apply_layer(self.spec, x)

    def fire(self, current: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
        """IF step in place: ``v += I; s = 1[v > theta]; v -= theta s``."""
        self.membrane.add_(current)
        torch.gt(self.membrane, threshold, out=self.fired)
        self.spikes.copy_(self.fired)
        self.membrane.sub_(self.spikes, alpha=threshold)
        self.counts.add_(self.spikes)
        return self.spikes


@torch.inference_mode()
def simulate_batch(snn: dict, inputs: torch.Tensor, timesteps: int, input_coding: str = "analog",
                   generator: torch.Generator | None = None,
                   fanouts: list[torch.Tensor] | None = None, mode: Mode = "auto") -> SimulationOutput:
    """Simulate ``inputs`` for ``timesteps`` steps; ``fanouts`` (from
    :func:`lowspike.metrics.spiking_fanouts`) turns every spike into its SynOps, per source
    layer (``synops_per_layer``) and in total.

    ``mode``: ``"dense"`` computes every current with ``addmm``/``conv2d`` (bit-identical to the
    plain step-by-step reference), ``"event"`` from the active inputs only, ``"auto"`` picks per
    layer and step by input density (:data:`EVENT_DENSITY_LINEAR`, :data:`EVENT_DENSITY_CONV`).
    """
    if mode not in ("auto", "dense", "event"):
        raise ValueError(f"mode must be auto, dense or event, got {mode!r}")
    device, dtype = inputs.device, inputs.dtype
    specs = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in s.items()} for s in snn["layers"]]
    batch = inputs.shape[0]
    analog = input_coding == "analog"

    layers: list[_WeightLayer] = []
    before: list[dict] = []
    shape = tuple(inputs.shape[1:])
    for spec in specs:
        if spec["kind"] not in ("linear", "conv"):
            before.append(spec)
            continue
        layer = _WeightLayer(spec, before, shape, batch, device, dtype, binary_input=bool(layers) or not analog)
        layers.append(layer)
        shape, before = tuple(layer.membrane.shape[1:]), []
    trailing = before

    first_current = layers[0].current_from(layers[0].feed(inputs), event=False).clone() if analog else None
    spikes_per_layer = torch.zeros(timesteps, len(layers), device=device)
    input_counts = torch.zeros_like(inputs) if not analog else None
    out_counts = torch.zeros_like(apply_trailing(trailing, layers[-1].spikes))
    predictions = torch.empty(timesteps, batch, dtype=torch.long, device=device)
    for t in range(timesteps):
        if analog:
            current = first_current
        else:
            x = (torch.rand(inputs.shape, generator=generator).to(device) < inputs).to(dtype)
            input_counts.add_(x)
            incoming = x.sum() if mode == "auto" else None
            current = layers[0].current_from(layers[0].feed(x), layers[0].use_event(mode, incoming))
        for slot, layer in enumerate(layers):
            if slot > 0:
                current = layer.current_from(layer.feed(layers[slot - 1].spikes), layer.use_event(mode, incoming))
            incoming = layer.fire(current).sum()
            spikes_per_layer[t, slot] = incoming
        out_counts.add_(apply_trailing(trailing, layers[-1].spikes))
        score = torch.tanh(layers[-1].membrane).mul_(0.49).add_(out_counts)
        predictions[t] = score.argmax(dim=1)

    per_sample = torch.zeros(batch, device=device)
    for layer in layers:
        per_sample += layer.counts.flatten(1).sum(dim=1)
    input_spikes = input_counts.flatten(1).sum(dim=1) if input_counts is not None else torch.zeros(batch, device=device)
    synops_per_layer = torch.zeros(batch, len(layers) + 1, dtype=torch.float64, device=device)
    if fanouts is not None:
        counts = [input_counts] + [layer.counts for layer in layers]
        for column, (count, fanout) in enumerate(zip(counts, fanouts)):
            if count is not None:
                synops_per_layer[:, column] = synops_from_spikes(count, fanout.to(device))
    return SimulationOutput(spikes_per_layer, per_sample + input_spikes, predictions, input_spikes,
                            synops_per_layer.sum(dim=1), synops_per_layer)

