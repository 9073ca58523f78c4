"""What a converted SNN of the conversion study costs: fan-outs, EFLOPS and per-layer activity.

A converted SNN is the dict of :func:`lowspike.snn.convert.convert` (weight, pooling and
flattening layers). Conventions (docs/conventions.md):

- SynOps = sum over spikes of the fan-out of the neuron that emitted it, counting only non-zero
  weights, exact at convolution borders, summed over layers and timesteps; a spike through
  k x k average pooling counts the fan-out of its pooled cell.
- EFLOPS (Eq. 1 of the regularization paper) = MACs whose weight AND input activation are both
  non-zero, plus the non-zero biases (once per output position for convolutions).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..energy import NetworkActivity
from ..projections import dense_macs, fanout, pull_back
from .convert import layer_specs
from .simulation import apply_layer

WEIGHT_KINDS = ("linear", "conv")


def _layer_fanout(spec: dict, input_shape: tuple[int, ...]) -> torch.Tensor:
    mask = (spec["weight"] != 0).to(torch.float64)
    geometry = {} if spec["kind"] == "linear" else {"stride": spec["stride"], "padding": spec["padding"]}
    return fanout(mask, input_shape, **geometry)[0]


def spiking_fanouts(snn: dict) -> list[torch.Tensor]:
    """Fan-out map of the input (element 0) and of each IF layer's neurons (the output layer's
    is all zeros), through the pooling and flattening between weight layers: a neuron whose
    spikes pass through k x k average pooling is counted with its pooled cell's fan-out
    (neurons cut off by the pooling window have none)."""
    shapes = []
    x = torch.zeros((1, *snn["input_shape"]))
    for spec in snn["layers"]:
        shapes.append(tuple(x.shape[1:]))
        x = apply_layer(spec, x)
    output_shape = tuple(x.shape[1:])

    fanouts: list[torch.Tensor] = []
    pooling: list[tuple] = []
    source_shape = tuple(snn["input_shape"])
    for spec, shape in zip(snn["layers"], shapes):
        if spec["kind"] not in WEIGHT_KINDS:
            if spec["kind"] == "avgpool":
                pooling.append(("avg", spec["kernel"]))
            continue
        fanouts.append(pull_back(_layer_fanout(spec, shape), source_shape, tuple(pooling)).reshape(source_shape))
        pooling = []
        source_shape = tuple(apply_layer(spec, torch.zeros((1, *shape))).shape[1:])
    fanouts.append(torch.zeros(output_shape, dtype=torch.float64))
    return fanouts


def dnn_fanouts(model: nn.Module, input_shape: tuple[int, ...]) -> list[torch.Tensor]:
    """Fan-out map of each hidden activation map of a conversion-study DNN (the post-ReLU ``X_l``
    of Eq. 4 of the regularization paper, in order): what each of its neurons will pay per spike
    once converted (:func:`spiking_fanouts` of the unnormalized network; normalization rescales
    weights, it does not zero them)."""
    with torch.no_grad():
        specs = layer_specs(model)
    return spiking_fanouts({"layers": specs, "input_shape": list(input_shape)})[1:-1]


def _layer_eflops(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """EFLOPS of one Linear/Conv2d layer per sample of the batch ``x`` (``[B]``, float64 integer
    counts): its MACs whose input and weight are both non-zero, plus its non-zero biases at every
    output position."""
    active = (x != 0).to(torch.float64)
    wmask = (module.weight != 0).to(torch.float64)
    biases = float((module.bias != 0).sum()) if module.bias is not None else 0.0
    if isinstance(module, nn.Linear):
        return F.linear(active, wmask).sum(dim=1) + biases
    out = F.conv2d(active, wmask, stride=module.stride, padding=module.padding)
    return out.flatten(1).sum(dim=1) + biases * out.shape[-1] * out.shape[-2]


@torch.inference_mode()
def eflops_per_sample(model: nn.Module, inputs: torch.Tensor, batch_size: int = 500) -> dict[str, Any]:
    """EFLOPS of Eq. 1 of the regularization paper: the mean per sample, total and per weight
    layer (named ``<module type><index in model.layers>``, e.g. ``conv2d0``), and ``samples``,
    each sample's total (for the bootstrap, :mod:`lowspike.stats`).

    ``EFLOPS_l = sum 1[W_l != 0] * 1[A_{l-1} != 0] + #non-zero biases`` (the products
    counted over every MAC; biases counted at each output position of a convolution).
    Pooling layers hold no weights and are not counted.
    """
    modules = list(model.layers)
    names = [f"{type(m).__name__.lower()}{i}" for i, m in enumerate(modules) if isinstance(m, (nn.Linear, nn.Conv2d))]
    per_sample = []
    for batch in inputs.split(batch_size):
        x, layers = batch, []
        for m in modules:
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                layers.append(_layer_eflops(m, x))
            x = m(x)
        per_sample.append(torch.stack(layers, dim=1))
    counts = torch.cat(per_sample) if per_sample else torch.zeros(0, len(names), dtype=torch.float64)
    per_layer = (counts.sum(dim=0) / max(counts.shape[0], 1)).tolist()
    return {"total": float(sum(per_layer)), "per_layer": dict(zip(names, per_layer)),
            "samples": counts.sum(dim=1).tolist()}


def converted_snn_activity(snn: dict, simulation: dict, eflops_per_layer: dict[str, float]) -> NetworkActivity:
    """Per-layer activity of a converted SNN, the input of the energy models (:mod:`lowspike.energy`).

    ``simulation``: the ``simulation.json`` record of the conversion study (``timesteps``,
    ``input_coding``, ``input_events``, ``spikes_per_layer`` and ``synops_per_layer``, means
    per sample); ``eflops_per_layer``: its DNN's EFLOPS per weight layer in forward order
    (:func:`eflops_per_sample`), whose keys name the layers. Every weight layer drives IF
    neurons (the output layer too); the l-th layer's input events are the spikes of IF layer
    l-1 (the network input's for the first layer: Poisson/Bernoulli spikes, or the non-zero
    pixels x T with analog coding), ``dense_macs`` every weight at every output position less the
    taps that read zero padding (docs/conventions.md), and ``effective_macs = EFLOPS_l - B_l``
    (clipped at 0 against rounding).
    """
    missing = [k for k in ("synops_per_layer", "input_events") if k not in simulation]
    if missing:
        raise ValueError(f"the simulation record lacks {missing} (written before energy existed): re-run the "
                         "simulate stage")
    names = list(eflops_per_layer)
    weight_specs = [s for s in snn["layers"] if s["kind"] in WEIGHT_KINDS]
    if len(names) != len(weight_specs):
        raise ValueError(f"{len(weight_specs)} weight layers in the SNN, {len(names)} in eflops_per_layer")
    analog = simulation["input_coding"] == "analog"
    layers = []
    x = torch.zeros((1, *snn["input_shape"]), dtype=weight_specs[0]["weight"].dtype)
    with torch.inference_mode():
        for spec in snn["layers"]:
            y = apply_layer(spec, x)
            if spec["kind"] in WEIGHT_KINDS:
                slot = len(layers)
                layers.append(_layer_record(spec, list(x.shape[1:]), list(y.shape[1:]), names[slot],
                                            eflops_per_layer[names[slot]], simulation, slot, analog))
            x = y
    return NetworkActivity.from_dict({"timesteps": int(simulation["timesteps"]), "layers": layers})


def _layer_record(spec: dict, in_shape: list[int], out_shape: list[int], name: str, eflops: float,
                  simulation: dict, slot: int, analog: bool) -> dict:
    """The activity record of the ``slot``-th weight layer (keys of :class:`lowspike.energy.LayerActivity`)."""
    weight, bias = spec["weight"], spec["bias"]
    kind = "linear" if spec["kind"] == "linear" else f"conv{weight.dim() - 2}d"
    output_positions = math.prod(out_shape[1:]) if kind != "linear" else 1
    geometry = {} if kind == "linear" else {"stride": spec["stride"], "padding": spec["padding"]}
    biases = int(torch.count_nonzero(bias))
    source = "input" if slot == 0 else f"if{slot}"
    spikes = simulation["spikes_per_layer"]
    return {
        "name": name, "kind": kind, "in_shape": in_shape, "out_shape": out_shape,
        "weights": weight.numel(), "nonzero_weights": int(torch.count_nonzero(weight)), "biases": biases,
        "dense_macs": dense_macs(weight, in_shape, **geometry),
        "effective_macs": max(0.0, float(eflops) - biases * output_positions),
        "input_binary": slot > 0 or not analog,
        "synops": float(simulation["synops_per_layer"][source]),
        "input_events": float(simulation["input_events"] if slot == 0 else spikes[source]),
        "neurons": math.prod(out_shape), "output_spikes": float(spikes[f"if{slot + 1}"]),
        "neuron_model": "if",
    }
