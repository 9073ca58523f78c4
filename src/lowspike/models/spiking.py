"""Building blocks of the directly trained spiking students (distillation paper, Sec. III-IV).

A student sees a static input repeated over T timesteps. It runs *layer by layer*: each
stateless layer (convolution, batch norm, pooling, linear) acts once on all timesteps folded
into the batch dimension ``[T*B, ...]``, and each spiking layer integrates its input current
``[T, B, ...]`` step by step. For a feed-forward network this gives exactly the same spikes as
running the whole network one timestep at a time, with far fewer Python calls. The first
layer's current is computed once, since the input does not change over time.

The last layer is a non-spiking readout: its output ``[T, B, C]`` is averaged over T into the
logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..snn.leaky import Current, Repeated, leaky_reference, multistep_leaky, reference_neuron


@dataclass
class SpikingOutput:
    """What a student returns for a batch of B samples.

    ``logits`` ``[B, C]`` the readout averaged over T; ``readout`` ``[T, B, C]`` the readout at
    every step (the input of the logits regularizer, Eq. 8); ``spikes`` one 0/1 tensor
    ``[T, B, ...]`` per spiking layer, differentiable through the surrogate gradient.
    """

    logits: torch.Tensor
    readout: torch.Tensor
    spikes: list[torch.Tensor]


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, ...]`` -> ``[T*B, ...]``."""
    return x.flatten(0, 1)


def unfold_time(x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """``[T*B, ...]`` -> ``[T, B, ...]``."""
    return x.unflatten(0, (timesteps, x.shape[0] // timesteps))


def over_time(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a stateless ``module`` to every timestep of ``x`` ``[T, B, ...]`` at once."""
    return unfold_time(module(fold_time(x)), x.shape[0])


class _AvgPool2(torch.autograd.Function):
    """Average pooling by 2 over the last ``dims`` (1 or 2) dims: PyTorch's forward, and a backward
    that writes ``dL/dy / 2^dims`` into each window once (zero where an odd size leaves a row or
    column out), in the input's memory layout whatever the layout of ``dL/dy``: the same values
    as ``avg_pool*d``'s backward, without its zero-fill, accumulation and layout copies."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dims: int) -> torch.Tensor:
        ctx.dims, ctx.shape = dims, x.shape
        ctx.channels_last = dims == 2 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        if dims == 2:
            return F.avg_pool2d(x, 2)
        end = x.shape[-1] // 2 * 2  # (a + b) * 0.5: avg_pool1d's (a + b) / 2 bit for bit, 7x faster on CPU
        return (x[..., 0:end:2] + x[..., 1:end:2]).mul_(0.5)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        share = grad / (2 ** ctx.dims)
        if ctx.dims == 1:
            n, c, length = ctx.shape
            out = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device)
            half = share.shape[-1]
            out[..., :2 * half].view(n, c, half, 2).copy_(share.unsqueeze(-1).expand(n, c, half, 2))
            out[..., 2 * half:].zero_()
            return out, None
        n, c, height, width = ctx.shape
        h, w = share.shape[-2:]
        if ctx.channels_last:  # work in NHWC: the input's layout
            out = torch.empty((n, height, width, c), dtype=grad.dtype, device=grad.device)
            out[:, :2 * h, :2 * w].view(n, h, 2, w, 2, c).copy_(
                share.permute(0, 2, 3, 1)[:, :, None, :, None, :].expand(n, h, 2, w, 2, c))
            out[:, 2 * h:].zero_()
            out[:, :2 * h, 2 * w:].zero_()
            return out.permute(0, 3, 1, 2), None
        out = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device)
        out[:, :, :2 * h, :2 * w].view(n, c, h, 2, w, 2).copy_(share[:, :, :, None, :, None].expand(n, c, h, 2, w, 2))
        out[:, :, 2 * h:].zero_()
        out[:, :, :2 * h, 2 * w:].zero_()
        return out, None


def avg_pool2(x: torch.Tensor) -> torch.Tensor:
    """Average pooling by 2 over the spatial dims of ``[N, C, H, W]`` (or the time dim of
    ``[N, C, L]``), as ``nn.AvgPool2d(2)`` / ``avg_pool1d(x, 2)`` compute it (:class:`_AvgPool2`)."""
    return _AvgPool2.apply(x, x.dim() - 2)


class SpikingNeurons(nn.Module):
    """One layer of (leaky) integrate-and-fire neurons, ``snntorch.Leaky`` with reset by subtraction.

    U[t] = beta U[t-1] + I[t] - theta S[t-1],   S[t] = H(U[t] - theta),  theta = 1

    (snntorch fires on U > theta strictly). ``beta = 1`` is the IF neuron, ``beta < 1`` the LIF
    neuron; the order each sums in float32 is :mod:`lowspike.snn.leaky`'s. The backward pass of
    H is the chosen surrogate (``atan`` by default).

    By default the T steps run fused (:func:`lowspike.snn.leaky.multistep_leaky`: one autograd
    node); ``fused = False`` runs the reference loop of snntorch module calls through
    :attr:`neuron` (:func:`~lowspike.snn.leaky.reference_neuron`, the same spikes; the tests and
    NeuroBench use it).
    """

    def __init__(self, beta: float = 1.0, surrogate_name: str = "atan", threshold: float = 1.0):
        super().__init__()
        self.beta = float(beta)
        self.threshold = float(threshold)
        self.surrogate_name = surrogate_name
        self.fused = True
        self.neuron = reference_neuron(self.beta, self.threshold, surrogate_name)

    def forward(self, current: Current) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` for the input current ``[T, B, ...]`` (or a static current
        :class:`~lowspike.snn.leaky.Repeated` over T), starting from U = 0."""
        if self.fused:
            return multistep_leaky(current, self.beta, self.threshold, self.surrogate_name)
        return leaky_reference(current, neuron=self.neuron)


class SpikingNetwork(nn.Module):
    """Base of every student: subclasses define ``run(x) -> (readout [T,B,C], spikes)`` and call
    :meth:`finish_init` at the end of ``__init__`` to count the neurons of each spiking layer."""

    def __init__(self, timesteps: int):
        super().__init__()
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        self.timesteps = int(timesteps)
        self._neurons: list[int] = []
        self._channels_last = False
        self.bfloat16 = False
        """Convolutions and linear layers under bfloat16 autocast (membranes and spikes stay float32)."""

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def repeat(self, current: torch.Tensor) -> Repeated:
        """A static current ``[B, ...]`` seen at every one of the T steps, for a spiking layer."""
        return Repeated(current, self.timesteps)

    def finish_init(self, input_shape: tuple[int, ...]) -> None:
        if any(isinstance(m, nn.Conv2d) for m in self.modules()):
            self._channels_last = True  # measured faster for the 2-D convolutions on CPU
            self.to(memory_format=torch.channels_last)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            _, spikes = self.run(torch.zeros(1, *input_shape))
        self.train(was_training)
        self._neurons = [int(s[0, 0].numel()) for s in spikes]
        if len(self._neurons) != len(self.spiking_layer_names):
            raise RuntimeError("spiking layers must be defined in the order the forward pass uses them")

    @property
    def spiking_layer_names(self) -> list[str]:
        return [name for name, module in self.named_modules() if isinstance(module, SpikingNeurons)]

    def neuron_counts(self) -> list[int]:
        """IF/LIF neurons of each spiking layer for one sample (the denominator of Eq. 12)."""
        return list(self._neurons)

    def forward(self, x: torch.Tensor) -> SpikingOutput:
        if self._channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.bfloat16):
            readout, spikes = self.run(x)
        readout = readout.float()
        return SpikingOutput(logits=readout.mean(dim=0), readout=readout, spikes=spikes)


def scaled(channels: int, width: float) -> int:
    """A layer's width scaled by the ``width`` param, at least 1."""
    return max(1, int(round(channels * width)))
