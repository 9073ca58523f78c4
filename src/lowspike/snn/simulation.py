"""Simulation of a converted SNN over T timesteps, vectorized over the batch.

Each weight layer integrates its input current into IF neurons (:mod:`.neurons`); pooling
and flattening act on the spikes feeding the next weight layer. With ``analog`` input the
image is a constant current into the first layer (computed once); with ``poisson`` or
``bernoulli`` coding each pixel spikes with probability equal to its intensity at every
step, and those input spikes count as spikes and SynOps. The prediction at step t is the
class with the most output spikes so far, ties broken by the output membrane potential.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..metrics import synops_from_spikes
from .neurons import if_step


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


@dataclass
class SimulationOutput:
    """Raw records of one batch."""

    spikes_per_layer: torch.Tensor  # [T, L] spikes summed over the batch, per IF layer
    spikes_per_sample: torch.Tensor  # [B] total over T and layers
    predictions: torch.Tensor  # [T, B] predicted class after each step
    input_spikes_per_sample: torch.Tensor  # [B] (0 for analog input)
    synops_per_sample: torch.Tensor  # [B] float64, 0 when no fan-outs were given


@torch.inference_mode()
def simulate_batch(snn: dict, inputs: torch.Tensor, timesteps: int, input_coding: str = "analog",
                   generator: torch.Generator | None = None,
                   fanouts: list[torch.Tensor] | None = None) -> SimulationOutput:
    """Simulate ``inputs`` for ``timesteps`` steps; ``fanouts`` (from
    :func:`lowspike.metrics.spiking_fanouts`) turns every spike into its SynOps."""
    layers = [{k: (v.to(inputs.device) if torch.is_tensor(v) else v) for k, v in s.items()} for s in snn["layers"]]
    weight_positions = [i for i, s in enumerate(layers) if s["kind"] in ("linear", "conv")]
    batch = inputs.shape[0]
    membranes: list[torch.Tensor | None] = [None] * len(weight_positions)
    first_current = apply_layer(layers[0], inputs) if input_coding == "analog" and layers[0]["kind"] in ("linear", "conv") else None
    spikes_per_layer = torch.zeros(timesteps, len(weight_positions), device=inputs.device)
    per_sample = torch.zeros(batch, device=inputs.device)
    input_spikes = torch.zeros(batch, device=inputs.device)
    synops = torch.zeros(batch, dtype=torch.float64, device=inputs.device)
    fanouts = [f.to(inputs.device) for f in fanouts] if fanouts is not None else None
    out_counts = None
    predictions = torch.empty(timesteps, batch, dtype=torch.long, device=inputs.device)
    for t in range(timesteps):
        if input_coding == "analog":
            x = inputs
        else:
            x = (torch.rand(inputs.shape, generator=generator).to(inputs.device) < inputs).to(inputs.dtype)
            input_spikes += x.flatten(1).sum(dim=1)
            if fanouts is not None:
                synops += synops_from_spikes(x, fanouts[0])
        slot = 0
        for i, spec in enumerate(layers):
            if spec["kind"] in ("linear", "conv"):
                current = first_current if (i == 0 and first_current is not None) else apply_layer(spec, x)
                if membranes[slot] is None:
                    membranes[slot] = torch.zeros_like(current)
                x = if_step(membranes[slot], current)
                counts = x.flatten(1).sum(dim=1)
                per_sample += counts
                spikes_per_layer[t, slot] = counts.sum()
                if fanouts is not None:
                    synops += synops_from_spikes(x, fanouts[slot + 1])
                slot += 1
            else:
                x = apply_layer(spec, x)
        out_counts = x.clone() if out_counts is None else out_counts + x
        score = out_counts + 0.49 * torch.tanh(membranes[-1])
        predictions[t] = score.argmax(dim=1)
    return SimulationOutput(spikes_per_layer, per_sample + input_spikes, predictions, input_spikes, synops)
