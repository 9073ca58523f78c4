"""Per-layer activity of the distillation study's networks, and the spikerate.

- spikerate (Eq. 12 of the distillation paper) = spikes per inference / number of IF/LIF
  neurons, in [0, T].
- The directly trained students are described by a list of
  :class:`~lowspike.projections.Projection` (their ``projections()`` method);
  :class:`StudentActivityMeter` turns the spikes of the forward passes the caller already runs
  into one record per weight layer (:func:`student_layer_activity`), the input of the energy
  models (:mod:`lowspike.energy`); :func:`teacher_layer_activity` writes the same records for a
  non-spiking teacher (dense and effective MACs, forward hooks).

Conventions (docs/conventions.md): SynOps count every spike times its fan-out through non-zero
weights, exact at borders (:func:`lowspike.projections.fanout`); dense MACs exclude the taps
that read zero padding. The converted SNNs of the conversion study are counted in
:mod:`lowspike.snn.activity`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .projections import NETWORK_INPUT, Projection, fanout, pooled_shapes, pull_back

def spikerate(total_spikes: float, num_neurons: int) -> float:
    """Eq. 12 of the distillation paper: spikes per inference / number of IF/LIF neurons (0 if none)."""
    return float(total_spikes) / num_neurons if num_neurons > 0 else 0.0


def per_sample_counts(values: torch.Tensor | list) -> list[int]:
    """Per-sample integer counts (0/1 correctness, spikes, SynOps, EFLOPS) as JSON integers: the
    ``per_sample`` records that the bootstrap resamples (:mod:`lowspike.stats`)."""
    values = torch.as_tensor(values)
    if values.is_floating_point():
        values = values.round()
    return [int(v) for v in values.long().tolist()]


# --- Per-layer activity of the directly trained students -------------------------------------

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def layer_input_shape(layer: nn.Module, pooled_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape in which ``layer`` reads a pooled map of one sample (the implicit reshape)."""
    numel = math.prod(pooled_shape)
    if isinstance(layer, nn.Linear):
        shape = (numel,)
        ok = numel == layer.in_features
    elif isinstance(layer, nn.Conv1d):
        shape = (layer.in_channels, numel // layer.in_channels)
        ok = numel % layer.in_channels == 0
    else:
        shape = tuple(pooled_shape)
        ok = len(shape) == 3 and shape[0] == layer.in_channels
    if not ok:
        raise ValueError(f"{type(layer).__name__} cannot read a map of shape {tuple(pooled_shape)}")
    return shape


def connection_fanout(layer: nn.Module, input_shape: tuple[int, ...],
                      weight_mask: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """:func:`lowspike.projections.fanout` of a Linear/Conv1d/Conv2d module: the fan-out of every
    input position through the weights marked in ``weight_mask`` (float64 0/1, the weight's
    shape), and the layer's output shape, one sample."""
    if isinstance(layer, nn.Linear):
        return fanout(weight_mask, input_shape)
    if not isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        raise TypeError(f"no fan-out for {type(layer).__name__}")
    if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        raise ValueError("fan-outs need integer zero padding")
    return fanout(weight_mask, input_shape, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                  groups=layer.groups)


def folded_weight_and_bias(layer: nn.Module, norm: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight and bias of ``layer`` with the batch norm that follows it folded in (inference), float64.

    ``W' = W * gamma / sqrt(var + eps)`` per output channel and
    ``b' = beta + (b - mean) * gamma / sqrt(var + eps)`` (batch norm at inference, Ioffe &
    Szegedy 2015, Alg. 2; folded as in Jacob et al. 2018, Sec. 3.2). A weight of ``W'`` is
    zero where ``W`` is or where its channel's ``gamma`` is; without ``norm``, ``(W, b)``.
    """
    weight = layer.weight.detach().to("cpu", torch.float64)
    bias = layer.bias.detach().to("cpu", torch.float64) if layer.bias is not None else None
    if norm is None:
        return weight, bias
    if norm.running_mean is None:
        raise ValueError("folding needs a batch norm with running statistics")
    def as_float64(tensor: torch.Tensor | None, default: float) -> torch.Tensor:
        if tensor is None:
            return torch.full((norm.num_features,), default, dtype=torch.float64)
        return tensor.detach().to("cpu", torch.float64)

    gamma, beta = as_float64(norm.weight, 1.0), as_float64(norm.bias, 0.0)
    scale = gamma / torch.sqrt(as_float64(norm.running_var, 1.0) + norm.eps)
    mean = as_float64(norm.running_mean, 0.0)
    folded_bias = beta + ((bias if bias is not None else 0.0) - mean) * scale
    return weight * scale.reshape(-1, *([1] * (weight.dim() - 1))), folded_bias


def _exact_count(events: torch.Tensor, leading: int) -> torch.Tensor:
    """Sum of 0/1 ``events`` over its ``leading`` first dimensions, exact (float32 while the sums
    stay below 2**24), reduced as a row sum in memory order: about 9x faster than a strided
    reduction of channels-last spikes here."""
    x = events.flatten(0, leading - 1)
    order = [0, *sorted(range(1, x.dim()), key=lambda d: -x.stride(d))]
    rows = x.permute(order)
    dtype = torch.float32 if x.shape[0] < 2**24 else torch.float64
    total = rows.reshape(rows.shape[0], -1).sum(dim=0, dtype=dtype).reshape(rows.shape[1:])
    return total.permute([order[1:].index(d) for d in range(1, x.dim())])


def _neuron_model(neurons: nn.Module) -> str:
    return "if" if float(neurons.beta) == 1.0 else "lif"


class StudentActivityMeter:
    """Per-layer activity of a spiking student, from the forward passes its caller already runs.

    ``add(inputs, output)`` after each ``output = model(inputs)`` (the spikes summed over T and
    the batch, per neuron, and the non-zero inputs, per position), then ``records()``: one dict
    per :class:`Projection` of ``model.projections()``, per inference (the mean per sample):

    - ``name``, ``kind`` ("linear", "conv1d", "conv2d", or "residual" for an identity shortcut),
      ``in_shape`` and ``out_shape`` of one sample at one timestep;
    - ``weights``, ``nonzero_weights``, ``biases`` (non-zero biases, one per output channel),
      counted with the following batch norm folded in (:func:`folded_weight_and_bias`);
    - ``dense_macs``: MACs of one sample at one timestep, every weight, padding taps excluded;
      for a shortcut, its additions (one per target neuron that a pooled cell reaches);
    - ``effective_macs``: for a layer reading the network input (analog, the same computation
      as in the non-spiking counterpart), the MACs whose input and weight are both non-zero, per
      evaluation (the student computes it once, the input being static); None for the layers
      that read spikes, whose non-spiking counterpart sees other activations;
    - ``input_binary``: the input is spikes (possibly averaged by pooling), not the analog input;
    - ``synops``: ``sum_t sum_i s_i[t] * fanout_i`` with the fan-out of the pooled cell of
      neuron i through non-zero weights, exact at borders (:func:`connection_fanout`,
      :func:`pull_back`); a shortcut adds each arriving spike into one membrane: one SynOp per
      spike whose pooled cell reaches a neuron. 0 for the analog input (its MACs are not SynOps);
    - ``input_events``: spikes arriving (inside a pooled cell), summed over T; 0 for analog input;
    - ``neurons`` driven and their ``output_spikes`` summed over T, ``neuron_model`` ("if" for
      beta = 1, else "lif"); 0, 0, "none" for the readout and for a shortcut (whose target
      neurons belong to the convolution that drives them);
    - ``timesteps`` T of the network.
    """

    def __init__(self, model: nn.Module):
        if not hasattr(model, "projections"):
            raise TypeError(f"{type(model).__name__} declares no projections(): its layers cannot be measured")
        self.model = model
        self.projections: list[Projection] = list(model.projections())
        self.spiking_layer_names: list[str] = list(model.spiking_layer_names)
        self._check_coverage()
        self.counts: dict[str | None, torch.Tensor] = {}
        self.samples = 0

    def _check_coverage(self) -> None:
        weight_layers = {n for n, m in self.model.named_modules() if isinstance(m, WEIGHT_LAYERS)}
        declared = [p.layer for p in self.projections if p.layer is not None]
        if sorted(declared) != sorted(weight_layers):
            raise ValueError(f"projections must name every weight layer once: declared {sorted(declared)}, "
                             f"model has {sorted(weight_layers)}")
        known = set(self.spiking_layer_names) | {NETWORK_INPUT}
        for p in self.projections:
            if p.source not in known or (p.target is not None and p.target not in known):
                raise ValueError(f"projection {p.record_name}: unknown source or target layer")

    def _accumulate(self, key: str | None, counts: torch.Tensor) -> None:
        counts = counts.to("cpu", torch.float64)
        self.counts[key] = self.counts[key] + counts if key in self.counts else counts

    def add(self, inputs: torch.Tensor, output: Any) -> None:
        """Count one batch: ``inputs`` ``[B, ...]`` and the model's output (``.spikes``)."""
        if len(output.spikes) != len(self.spiking_layer_names):
            raise ValueError("one spike tensor per spiking layer expected")
        for name, spikes in zip(self.spiking_layer_names, output.spikes):
            self._accumulate(name, _exact_count(spikes.detach(), leading=2))
        self._accumulate(NETWORK_INPUT, _exact_count(inputs.detach() != 0, leading=1))
        self.samples += int(inputs.shape[0])

    def records(self) -> list[dict[str, Any]]:
        """One record per projection, means per sample over every sample added."""
        if self.samples == 0:
            raise ValueError("no samples added")
        modules = dict(self.model.named_modules())
        timesteps = int(self.model.timesteps)
        return [self._record(p, modules, timesteps) for p in self.projections]

    def _record(self, p: Projection, modules: dict[str, nn.Module], timesteps: int) -> dict[str, Any]:
        source_counts = self.counts[p.source]
        source_shape = tuple(source_counts.shape)
        pooled_shape = pooled_shapes(source_shape, p.pooling)[-1]
        if p.layer is None:
            kind, in_shape = "residual", pooled_shape
            fanout = torch.ones(pooled_shape, dtype=torch.float64)
            out_shape, dense = pooled_shape, float(fanout.sum())
            weights = nonzero_weights = biases = 0
        else:
            layer = modules[p.layer]
            kind = "linear" if isinstance(layer, nn.Linear) else type(layer).__name__.lower()
            in_shape = layer_input_shape(layer, pooled_shape)
            weight, bias = folded_weight_and_bias(layer, modules[p.norm] if p.norm else None)
            mask = (weight != 0).to(torch.float64)
            fanout, out_shape = connection_fanout(layer, in_shape, mask)
            dense = float(connection_fanout(layer, in_shape, torch.ones_like(mask))[0].sum())
            weights, nonzero_weights = int(weight.numel()), int(mask.sum())
            biases = int((bias != 0).sum()) if bias is not None else 0
        if p.target is not None and tuple(out_shape) != tuple(self.counts[p.target].shape):
            raise ValueError(f"projection {p.record_name}: output {tuple(out_shape)} does not match "
                             f"{p.target} {tuple(self.counts[p.target].shape)}")
        source_fanout = pull_back(fanout, source_shape, p.pooling)
        reached = pull_back(torch.ones(pooled_shape, dtype=torch.float64), source_shape, p.pooling)
        analog = p.source is NETWORK_INPUT
        samples = self.samples
        target_counts = self.counts[p.target] if p.target is not None and p.layer is not None else None
        return {
            "name": p.record_name,
            "kind": kind,
            "in_shape": list(in_shape),
            "out_shape": list(out_shape),
            "weights": weights,
            "nonzero_weights": nonzero_weights,
            "biases": biases,
            "dense_macs": dense,
            "effective_macs": float((source_counts * source_fanout).sum()) / samples if analog else None,
            "input_binary": not analog,
            "synops": 0.0 if analog else float((source_counts * source_fanout).sum()) / samples,
            "input_events": 0.0 if analog else float((source_counts * reached).sum()) / samples,
            "neurons": int(target_counts.numel()) if target_counts is not None else 0,
            "output_spikes": float(target_counts.sum()) / samples if target_counts is not None else 0.0,
            "neuron_model": _neuron_model(modules[p.target]) if target_counts is not None else "none",
            "timesteps": timesteps,
        }


@torch.inference_mode()
def student_layer_activity(model: nn.Module, inputs: torch.Tensor, batch_size: int = 256) -> list[dict[str, Any]]:
    """Per-layer activity records of a spiking student over ``inputs`` (one forward pass per
    batch, in eval mode); see :class:`StudentActivityMeter` for the keys and conventions."""
    was_training = model.training
    model.eval()
    meter = StudentActivityMeter(model)
    try:
        for batch in inputs.split(batch_size):
            meter.add(batch, model(batch))
    finally:
        model.train(was_training)
    return meter.records()


# --- Per-layer activity of the non-spiking teachers -------------------------------------------


class _TeacherProbe:
    """Forward hooks that count, per weight layer and shortcut block, the non-zero inputs at every
    position (summed over the batch), and find the batch norm applied to each weight layer's output."""

    def __init__(self, model: nn.Module):
        self.weight_layers = {n: m for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)}
        declared = set(model.shortcut_blocks()) if hasattr(model, "shortcut_blocks") else set()
        self.shortcut_blocks = {n: m for n, m in model.named_modules() if n in declared}
        norms = {n: m for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        self.counts: dict[str, torch.Tensor] = {}
        self.out_shapes: dict[str, tuple[int, ...]] = {}
        self.order: list[str] = []
        self.norm_of: dict[str, str] = {}
        self.calls: dict[str, int] = {}
        self._last_output: tuple[str, torch.Tensor] | None = None
        self.handles = [m.register_forward_hook(self._weight_hook(n)) for n, m in self.weight_layers.items()]
        self.handles += [m.register_forward_hook(self._shortcut_hook(n)) for n, m in self.shortcut_blocks.items()]
        self.handles += [m.register_forward_hook(self._norm_hook(n)) for n, m in norms.items()]

    def _seen(self, name: str, inputs: torch.Tensor, output: torch.Tensor) -> None:
        counts = _exact_count(inputs.detach() != 0, leading=1).to("cpu", torch.float64)
        self.counts[name] = self.counts[name] + counts if name in self.counts else counts
        self.out_shapes[name] = tuple(output.shape[1:])
        self.calls[name] = self.calls.get(name, 0) + 1
        if name not in self.order:
            self.order.append(name)

    def _weight_hook(self, name: str):
        def hook(module, args, output):
            self._seen(name, args[0], output)
            self._last_output = (name, output)
        return hook

    def _shortcut_hook(self, name: str):
        def hook(module, args, output):
            self._seen(f"{name}.shortcut", args[0], output)
        return hook

    def _norm_hook(self, name: str):
        def hook(module, args, output):
            if self._last_output is not None and args[0] is self._last_output[1]:
                layer = self._last_output[0]
                if self.norm_of.setdefault(layer, name) != name:
                    raise ValueError(f"{layer}: followed by two batch norms ({self.norm_of[layer]}, {name})")
            self._last_output = None
        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


@torch.inference_mode()
def teacher_layer_activity(model: nn.Module, inputs: torch.Tensor, batch_size: int = 256) -> list[dict[str, Any]]:
    """Per-layer records of a non-spiking network (an FNN teacher) over ``inputs``, one forward
    pass per batch in eval mode, with the keys of :class:`StudentActivityMeter`'s records.

    Forward hooks on every Linear/Conv1d/Conv2d layer count the non-zero entries of its input at
    each position; a batch norm whose input is a weight layer's output is folded into that layer
    (:func:`folded_weight_and_bias`). Per weight layer ``l``, in the order of the forward pass:

    - ``dense_macs``: every weight at every output position, the taps that read zero padding
      excluded (as the students': ``sum_i fanout_i`` through all weights,
      :func:`connection_fanout`);
    - ``effective_macs`` = ``sum_i n_i fanout_i / samples`` with ``n_i`` the samples whose input
      ``i`` is non-zero and ``fanout_i`` its fan-out through the non-zero folded weights: the
      MACs whose input and weight are both non-zero (EFLOPS of Eq. 1 of the regularization
      paper without its bias term), exact at borders;
    - ``biases``: non-zero folded biases; ``weights``, ``nonzero_weights`` of the folded weight.

    A residual block adding its input to its output (named by the model's ``shortcut_blocks()``) gives a
    ``<block>.shortcut`` record after its convolutions: ``kind`` "residual", one addition per
    output element (``dense_macs``), ``effective_macs`` its additions of a non-zero input.
    Every record: ``input_binary`` false, ``synops``, ``input_events``, ``neurons``,
    ``output_spikes`` 0, ``neuron_model`` "none", ``timesteps`` 1. Pooling, ReLU and the
    global average are not counted (as in the students' records and NeuroBench).
    """
    was_training = model.training
    model.eval()
    probe = _TeacherProbe(model)
    samples = 0
    try:
        for batch in inputs.split(batch_size):
            probe.calls.clear()
            model(batch)
            repeated = sorted(name for name, calls in probe.calls.items() if calls != 1)
            if repeated:
                raise ValueError(f"layers called more than once per forward pass: {repeated}")
            samples += int(batch.shape[0])
    finally:
        probe.close()
        model.train(was_training)
    if samples == 0:
        raise ValueError("no samples")
    modules = dict(model.named_modules())
    records = []
    for name in probe.order:
        counts = probe.counts[name]
        in_shape, out_shape = tuple(counts.shape), probe.out_shapes[name]
        if name in probe.weight_layers:
            layer = probe.weight_layers[name]
            norm = probe.norm_of.get(name)
            weight, bias = folded_weight_and_bias(layer, modules[norm] if norm else None)
            mask = (weight != 0).to(torch.float64)
            fanout, _ = connection_fanout(layer, in_shape, mask)
            kind = "linear" if isinstance(layer, nn.Linear) else type(layer).__name__.lower()
            weights, nonzero_weights = int(weight.numel()), int(mask.sum())
            biases = int((bias != 0).sum()) if bias is not None else 0
            dense = float(connection_fanout(layer, in_shape, torch.ones_like(mask))[0].sum())
            effective = float((counts * fanout).sum()) / samples
        else:
            kind, weights, nonzero_weights, biases = "residual", 0, 0, 0
            dense, effective = float(math.prod(out_shape)), float(counts.sum()) / samples
        records.append({
            "name": name, "kind": kind, "in_shape": list(in_shape), "out_shape": list(out_shape),
            "weights": weights, "nonzero_weights": nonzero_weights, "biases": biases, "dense_macs": dense,
            "effective_macs": effective, "input_binary": False, "synops": 0.0, "input_events": 0.0,
            "neurons": 0, "output_spikes": 0.0, "neuron_model": "none", "timesteps": 1,
        })
    return records
