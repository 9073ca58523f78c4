"""Cost metrics, per sample: spikes, spikerate, SynOps, EFLOPS.

Conventions (../shared/papers/README.md):

- SynOps = sum over spikes of the fan-out of the neuron that emitted it, counting only
  non-zero weights, exact at convolution borders, summed over layers and timesteps.
- EFLOPS (Eq. 1 of the regularization paper) = MACs whose weight AND input activation are
  both non-zero, plus the non-zero biases (once per output position for convolutions).
- spikerate (Eq. 12 of the distillation paper) = spikes per inference / number of IF/LIF
  neurons, in [0, T].

The directly trained students (distillation paper) are described to these metrics by a list of
:class:`Projection` (their ``projections()`` method); :class:`StudentActivityMeter` turns the
spikes of the forward passes the caller already runs into one record per weight layer
(:func:`student_layer_activity`), the input of the energy models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def weight_fanout(spec: dict, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Fan-out of every input position of a weight layer: how many non-zero weights read it.

    Linear: ``fanout[j] = #{i : W[i, j] != 0}``. Conv2d: the transposed convolution of an
    all-ones output map with the mask ``1[W != 0]``, which counts, per input position, the
    (output channel, output position, kernel offset) triples that read it — positions near
    the border are read by fewer output positions.
    """
    mask = (spec["weight"] != 0).to(torch.float64)
    if spec["kind"] == "linear":
        return mask.sum(dim=0).reshape(input_shape)
    stride, padding = tuple(spec["stride"]), tuple(spec["padding"])
    probe = torch.zeros((1, *input_shape), dtype=torch.float64)
    out_shape = F.conv2d(probe, mask, stride=stride, padding=padding).shape[1:]
    ones = torch.ones((1, *out_shape), dtype=torch.float64)
    fanout = F.conv_transpose2d(ones, mask, stride=stride, padding=padding)
    h, w = input_shape[1:]
    if fanout.shape[-2:] != (h, w):
        fanout = F.pad(fanout, (0, w - fanout.shape[-1], 0, h - fanout.shape[-2]))
    return fanout[0]


def spiking_fanouts(snn: dict) -> list[torch.Tensor]:
    """Fan-out map of each IF layer's neurons (the output layer's is all zeros), and of the
    input as element 0, through the pooling/flattening between weight layers.

    A neuron whose spikes pass through k x k average pooling feeds one pooled cell; it is
    counted with that cell's fan-out (neurons cut off by the pooling window have none).
    """
    shapes = []
    x = torch.zeros((1, *snn["input_shape"]))
    from .snn.simulation import apply_layer

    for spec in snn["layers"]:
        shapes.append(tuple(x.shape[1:]))
        x = apply_layer(spec, x)
    output_shape = tuple(x.shape[1:])

    fanouts: list[torch.Tensor] = []
    pending: list[dict] = []
    source_shape = tuple(snn["input_shape"])
    for spec, shape in zip(snn["layers"], shapes):
        if spec["kind"] in ("avgpool", "flatten"):
            pending.append({**spec, "shape": shape})
            continue
        fanout = weight_fanout(spec, shape)
        for op in reversed(pending):
            if op["kind"] == "flatten":
                fanout = fanout.reshape(op["shape"])
            else:
                k = op["kernel"]
                c, h, w = op["shape"]
                up = fanout.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)
                fanout = torch.zeros((c, h, w), dtype=up.dtype)
                fanout[:, : up.shape[-2], : up.shape[-1]] = up
        fanouts.append(fanout.reshape(source_shape))
        pending = []
        probe = apply_layer(spec, torch.zeros((1, *shape)))
        source_shape = tuple(probe.shape[1:])
    fanouts.append(torch.zeros(output_shape, dtype=torch.float64))
    return fanouts


def dnn_fanouts(model: nn.Module, input_shape: tuple[int, ...]) -> list[torch.Tensor]:
    """Fan-out map of each hidden activation map of a conversion-study DNN (the post-ReLU ``X_l``
    of Eq. 4 of the regularization paper, in order): what each of its neurons will pay per spike
    once converted (:func:`spiking_fanouts` of the unnormalized network; normalization rescales
    weights, it does not zero them)."""
    from .snn.conversion import layer_specs

    with torch.no_grad():
        specs = layer_specs(model)
    return spiking_fanouts({"layers": specs, "input_shape": list(input_shape)})[1:-1]


def synops_from_spikes(spikes: torch.Tensor, fanout: torch.Tensor) -> torch.Tensor:
    """SynOps per sample of one layer at one step: ``sum_i s_bi * fanout_i``; spikes ``[B, ...]``."""
    return (spikes.flatten(1).to(torch.float64) * fanout.flatten().to(spikes.device)).sum(dim=1)


@torch.inference_mode()
def eflops_per_sample(model: nn.Module, inputs: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    """EFLOPS of Eq. 1 of the regularization paper, mean per sample, total and per weight layer.

    ``EFLOPS_l = sum 1[W_l != 0] * 1[A_{l-1} != 0] + #non-zero biases`` (the products
    counted over every MAC; biases counted at each output position of a convolution).
    Pooling layers hold no weights and are not counted.
    """
    modules = list(model.layers)
    names = [f"{type(m).__name__.lower()}{i}" for i, m in enumerate(modules) if isinstance(m, (nn.Linear, nn.Conv2d))]
    totals = torch.zeros(len(names), dtype=torch.float64)
    count = 0
    for batch in inputs.split(batch_size):
        x, slot = batch, 0
        for m in modules:
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                active = (x != 0).to(torch.float64)
                wmask = (m.weight != 0).to(torch.float64)
                bias_nonzero = (m.bias != 0).to(torch.float64) if m.bias is not None else None
                if isinstance(m, nn.Linear):
                    macs = F.linear(active, wmask).sum()
                    biases = bias_nonzero.sum() * batch.shape[0] if bias_nonzero is not None else 0.0
                else:
                    out = F.conv2d(active, wmask, stride=m.stride, padding=m.padding)
                    macs = out.sum()
                    positions = out.shape[-1] * out.shape[-2]
                    biases = bias_nonzero.sum() * positions * batch.shape[0] if bias_nonzero is not None else 0.0
                totals[slot] += macs + biases
                slot += 1
            x = m(x)
        count += batch.shape[0]
    per_layer = (totals / max(count, 1)).tolist()
    return {"total": float(sum(per_layer)), "per_layer": dict(zip(names, per_layer))}


def spikerate(total_spikes: float, num_neurons: int) -> float:
    """Eq. 12 of the distillation paper: spikes per inference / number of IF/LIF neurons (0 if none)."""
    return float(total_spikes) / num_neurons if num_neurons > 0 else 0.0


# --- Per-layer activity of the directly trained students -------------------------------------

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
NETWORK_INPUT = None
"""``Projection.source`` of a layer that reads the network input (pixels, MFCCs: analog)."""


@dataclass(frozen=True)
class Projection:
    """How a weight layer, or an identity shortcut, carries events from a source to neurons.

    ``layer``: qualified name of the Linear/Conv1d/Conv2d module, or None for an identity
    shortcut (a residual connection adding its source's spikes into ``target``'s membranes).
    ``source``: the spiking layer whose spikes feed it, or :data:`NETWORK_INPUT`.
    ``pooling``: the average poolings between the source and the layer, in order:
    ``("avg", k)`` is k (x k) average pooling with stride k over every dimension after the
    channels, ``("global_avg",)`` the mean over all of them. Reshapes are implicit: a Linear
    layer reads the pooled map flattened, a Conv1d layer reads it as ``(in_channels, -1)``.
    ``norm``: the batch norm applied to the layer's output (folded into it for the counts).
    ``target``: the spiking layer whose membranes receive the output, None for the readout.
    ``name``: the record's name; defaults to ``layer`` (required for a shortcut).
    """

    layer: str | None
    source: str | None
    target: str | None
    pooling: tuple[tuple[Any, ...], ...] = ()
    norm: str | None = None
    name: str | None = None

    def __post_init__(self):
        if self.layer is None and self.name is None:
            raise ValueError("an identity shortcut needs a name")
        for op in self.pooling:
            if op[0] not in POOLINGS:
                raise ValueError(f"unknown pooling {op!r}; allowed: {sorted(POOLINGS)}")

    @property
    def record_name(self) -> str:
        return self.name or self.layer


def _avg_pool_shape(shape: tuple[int, ...], kernel: int) -> tuple[int, ...]:
    return (shape[0], *(n // kernel for n in shape[1:]))


def _avg_pool_pull_back(cell_map: torch.Tensor, source_shape: tuple[int, ...], kernel: int) -> torch.Tensor:
    up = cell_map
    for dim in range(1, cell_map.dim()):
        up = up.repeat_interleave(kernel, dim=dim)
    source_map = torch.zeros(source_shape, dtype=cell_map.dtype)
    source_map[(slice(None), *(slice(0, n) for n in up.shape[1:]))] = up
    return source_map


def _global_avg_pull_back(cell_map: torch.Tensor, source_shape: tuple[int, ...]) -> torch.Tensor:
    return cell_map.reshape(cell_map.shape[0], *([1] * (len(source_shape) - 1))).expand(source_shape).clone()


POOLINGS = {
    "avg": (_avg_pool_shape, _avg_pool_pull_back),
    "global_avg": (lambda shape: (shape[0],), _global_avg_pull_back),
}
"""Pooling name -> (pooled shape of one sample, pull-back of a map over the pooled cells)."""


def pooled_shapes(source_shape: tuple[int, ...], pooling: tuple[tuple[Any, ...], ...]) -> list[tuple[int, ...]]:
    """Shapes of one sample from the source through every pooling of ``pooling``."""
    shapes = [tuple(source_shape)]
    for name, *args in pooling:
        shapes.append(tuple(POOLINGS[name][0](shapes[-1], *args)))
    return shapes


def pull_back(cell_map: torch.Tensor, source_shape: tuple[int, ...],
              pooling: tuple[tuple[Any, ...], ...]) -> torch.Tensor:
    """The value of ``cell_map`` (over the pooled cells) at every source position: the value of
    the cell the position falls in, 0 where the pooling window cuts the position off.

    With ``cell_map`` a fan-out, this gives every spike the fan-out of its pooled cell (the
    SynOps convention of ../shared/papers/README.md, as in sinabs' ModelSynopsHook).
    """
    shapes = pooled_shapes(source_shape, pooling)
    source_map = cell_map.reshape(shapes[-1])
    for (name, *args), shape in zip(reversed(pooling), reversed(shapes[:-1])):
        source_map = POOLINGS[name][1](source_map, shape, *args)
    return source_map


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
    """Fan-out of every input position of a Linear/Conv1d/Conv2d layer through the weights marked
    in ``weight_mask`` (float64 0/1, the weight's shape), and the layer's output shape, one sample.

    ``fanout[i] = sum_o #{weights w of the mask with which output o reads input i}``. Linear:
    ``fanout[j] = sum_i mask[i, j]``. Convolution: the gradient of ``sum(conv(x, mask))`` with
    respect to ``x`` (a transposed convolution of an all-ones output map), so an input near a
    zero-padded border, read by fewer output positions, has a smaller fan-out ("exact at
    borders", ../shared/papers/README.md). Summed over the inputs, with an all-ones mask, it is
    the layer's dense MAC count: padding taps are no MACs.
    """
    if isinstance(layer, nn.Linear):
        return weight_mask.sum(dim=0).reshape(input_shape), (layer.out_features,)
    if not isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        raise TypeError(f"no fan-out for {type(layer).__name__}")
    if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        raise ValueError("fan-outs need integer zero padding")
    conv, conv_input = ((F.conv1d, torch.nn.grad.conv1d_input) if isinstance(layer, nn.Conv1d)
                        else (F.conv2d, torch.nn.grad.conv2d_input))
    geometry = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
    probe = torch.zeros((1, *input_shape), dtype=torch.float64)
    output_shape = tuple(conv(probe, weight_mask, None, **geometry).shape[1:])
    fanout = conv_input(probe.shape, weight_mask, torch.ones((1, *output_shape), dtype=torch.float64), **geometry)
    return fanout[0], output_shape


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
