"""Cost metrics, per sample: spikes, spikerate, SynOps, EFLOPS.

Conventions (../shared/papers/README.md):

- SynOps = sum over spikes of the fan-out of the neuron that emitted it, counting only
  non-zero weights, exact at convolution borders, summed over layers and timesteps.
- EFLOPS (Eq. 1 of the regularization paper) = MACs whose weight AND input activation are
  both non-zero, plus the non-zero biases (once per output position for convolutions).
- spikerate (Eq. 12 of the distillation paper) = spikes per inference / number of IF/LIF
  neurons, in [0, T].
"""

from __future__ import annotations

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
