"""How events travel from one layer to the next: the declarations and the counting primitives
that the spiking students, the converted SNNs and the teachers share (a leaf module: it imports
nothing else of the package).

- :class:`Projection`: what a weight layer, or an identity shortcut, reads and drives; every
  student declares its list (``projections()``), from which :mod:`lowspike.metrics` counts.
- Pooling between a source and a layer (:data:`POOLINGS`): k x k average pooling with stride k
  and the global average; :func:`pull_back` maps a value per pooled cell back to every source
  position, so a spike counts the fan-out of its pooled cell.
- :func:`fanout`: per input position, how many (non-zero) weights read it, exact at zero-padded
  borders. Summed over the inputs with an all-ones mask it is the layer's dense MAC count,
  padding taps excluded.

Conventions (docs/conventions.md): SynOps count every spike times the number of non-zero
weights that read it (its fan-out), exact at borders; a spike through average pooling counts
the fan-out of its pooled cell (as sinabs' ModelSynopsHook).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch.nn import functional as F

NETWORK_INPUT = None
"""``Projection.source`` of a layer that reads the network input (pixels, MFCCs: analog)."""


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

Pooling = tuple[tuple[Any, ...], ...]


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
    pooling: Pooling = ()
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


def pooled_shapes(source_shape: tuple[int, ...], pooling: Pooling) -> list[tuple[int, ...]]:
    """Shapes of one sample from the source through every pooling of ``pooling``."""
    shapes = [tuple(source_shape)]
    for name, *args in pooling:
        shapes.append(tuple(POOLINGS[name][0](shapes[-1], *args)))
    return shapes


def pull_back(cell_map: torch.Tensor, source_shape: tuple[int, ...], pooling: Pooling) -> torch.Tensor:
    """The value of ``cell_map`` (over the pooled cells, any shape with their number of elements)
    at every source position: the value of the cell the position falls in, 0 where the pooling
    window cuts the position off.

    With ``cell_map`` a fan-out, this gives every spike the fan-out of its pooled cell.
    """
    shapes = pooled_shapes(source_shape, pooling)
    source_map = cell_map.reshape(shapes[-1])
    for (name, *args), shape in zip(reversed(pooling), reversed(shapes[:-1])):
        source_map = POOLINGS[name][1](source_map, shape, *args)
    return source_map


def fanout(weight_mask: torch.Tensor, input_shape: Sequence[int], stride: Sequence[int] = (),
           padding: Sequence[int] = (), dilation: Sequence[int] = (), groups: int = 1
           ) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Fan-out of every input position of a linear layer (``weight_mask`` 2-D) or a 1-D or 2-D
    convolution (3-D or 4-D), and the layer's output shape, for one sample.

    ``weight_mask`` is float64 0/1 of the weight's shape (the weights that count).
    ``fanout[i] = sum_o #{weights of the mask with which output o reads input i}``. Linear:
    ``fanout[j] = sum_i mask[i, j]``. Convolution: the gradient of ``sum(conv(x, mask))`` with
    respect to ``x`` (a transposed convolution of an all-ones output map), so an input near a
    zero-padded border, read by fewer output positions, has a smaller fan-out. With an all-ones
    mask, ``sum_i fanout_i`` is the dense MAC count without the taps that read padding.
    """
    if weight_mask.dim() == 2:
        return weight_mask.sum(dim=0).reshape(tuple(input_shape)), (weight_mask.shape[0],)
    conv, conv_input = ((F.conv1d, torch.nn.grad.conv1d_input) if weight_mask.dim() == 3
                        else (F.conv2d, torch.nn.grad.conv2d_input))
    spatial = weight_mask.dim() - 2
    geometry = dict(stride=tuple(stride) or (1,) * spatial, padding=tuple(padding) or (0,) * spatial,
                    dilation=tuple(dilation) or (1,) * spatial, groups=groups)
    probe = torch.zeros((1, *input_shape), dtype=torch.float64)
    output_shape = tuple(conv(probe, weight_mask, None, **geometry).shape[1:])
    counts = conv_input(probe.shape, weight_mask, torch.ones((1, *output_shape), dtype=torch.float64), **geometry)
    return counts[0], output_shape


def dense_macs(weight: torch.Tensor, input_shape: Sequence[int], **geometry: Any) -> int:
    """MACs of one dense pass of a layer over one sample: every weight at every output position,
    the taps that read zero padding excluded (the one dense-MAC convention of both studies)."""
    counts, _ = fanout(torch.ones(weight.shape, dtype=torch.float64), input_shape, **geometry)
    return int(round(float(counts.sum())))


def synops_from_spikes(spikes: torch.Tensor, fanout_map: torch.Tensor) -> torch.Tensor:
    """SynOps per sample of one source at one step: ``sum_i s_bi * fanout_i``; spikes ``[B, ...]``."""
    return (spikes.flatten(1).to(torch.float64) * fanout_map.flatten().to(spikes.device)).sum(dim=1)

