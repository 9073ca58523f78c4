"""Leaky integrate-and-fire neurons over all T timesteps in one autograd node.

The model is ``snntorch.Leaky(beta, threshold, reset_mechanism="subtract")`` (snntorch 1.0,
``reset_delay=True``), step for step::

    U[t] = beta U[t-1] + I[t] - theta S[t-1],     S[t] = 1[U[t] > theta],     U[-1] = S[-1] = 0

``beta = 1`` is the IF neuron. The reset term is detached (snntorch computes it from the
previous membrane through ``.detach()``), so the backward pass through the surrogate
derivative ``sigma'`` (:mod:`.surrogates`) is the linear recurrence::

    dL/dU[t] = dL/dS[t] sigma'(U[t] - theta) + beta dL/dU[t+1],     dL/dI[t] = dL/dU[t]

:class:`MultiStepLeaky` computes the forward in place into preallocated ``[T, ...]`` buffers
(no per-step autograd nodes, no ``torch.stack``), keeps only the membrane ``U`` for the backward,
and runs the backward as one vectorized surrogate pass plus ``T - 1`` in-place additions. The
forward evaluates the same float32 expressions in the same order as snntorch
(``(beta U + I) - theta S``), so the spikes are identical bit for bit; gradients agree within
float32 rounding (the additions of the recurrence are ordered differently from autograd's).

:func:`leaky_reference` is the plain step-by-step loop through ``snntorch.Leaky`` that the tests
and NeuroBench use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import torch

from .surrogates import SURROGATE_DERIVATIVES, snntorch_surrogate


@dataclass(frozen=True)
class Repeated:
    """A current ``[B, ...]`` that is the same at each of ``timesteps`` steps (a static input
    seen T times): it is stored once, and its gradient is summed over T inside the backward."""

    current: torch.Tensor
    timesteps: int

    def expand(self) -> torch.Tensor:
        return self.current.unsqueeze(0).expand(self.timesteps, *self.current.shape)


Current = Union[torch.Tensor, Repeated]


def state_dtype(current: torch.Tensor) -> torch.dtype:
    """Membranes and spikes are float32 also for a bfloat16/float16 current (convolutions under
    autocast): a membrane summed over T steps in 8 mantissa bits would drift."""
    return torch.float32 if current.dtype in (torch.bfloat16, torch.float16) else current.dtype


def _state_buffer(step: torch.Tensor, timesteps: int) -> torch.Tensor:
    """An empty ``[T, ...]`` float state buffer laid out like one step ``step`` ``[B, ...]``
    (a channels-last step gives channels-last steps)."""
    dtype = state_dtype(step)
    if step.dim() != 4 or step.is_contiguous() or not step.is_contiguous(memory_format=torch.channels_last):
        return torch.empty((timesteps, *step.shape), dtype=dtype, device=step.device)
    flat = torch.empty((timesteps * step.shape[0], *step.shape[1:]), dtype=dtype, device=step.device,
                       memory_format=torch.channels_last)
    return flat.unflatten(0, (timesteps, step.shape[0]))


def _steps(current: Current) -> tuple[int, Callable[[int], torch.Tensor]]:
    if isinstance(current, Repeated):
        return current.timesteps, lambda t: current.current
    return current.shape[0], current.__getitem__


@torch.no_grad()
def leaky_forward(current: Current, beta: float, threshold: float, keep_membrane: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Spikes ``[T, ...]`` (0/1 in :func:`state_dtype`) and, with ``keep_membrane``, the
    pre-reset membranes ``U[t]`` ``[T, ...]`` for the input current ``[T, ...]`` (or
    :class:`Repeated`); without it (inference) only two steps of membrane are held."""
    timesteps, current_at = _steps(current)
    spikes = _state_buffer(current_at(0), timesteps)
    if keep_membrane:
        membrane = torch.empty_like(spikes)
    else:
        membrane = torch.empty_like(spikes[:2])
    fired = torch.empty(spikes.shape[1:], dtype=torch.bool, device=spikes.device)
    for t in range(timesteps):
        u = membrane[t] if keep_membrane else membrane[t % 2]
        if t == 0:
            u.copy_(current_at(0))
        else:
            previous = membrane[t - 1] if keep_membrane else membrane[(t - 1) % 2]
            if beta == 1.0:
                torch.add(previous, current_at(t), out=u)
            else:
                torch.mul(previous, beta, out=u).add_(current_at(t))
            if threshold == 1.0:
                u.sub_(spikes[t - 1])
            else:
                u.sub_(spikes[t - 1] * threshold)
        torch.gt(u, threshold, out=fired)
        spikes[t].copy_(fired)
    return spikes, (membrane if keep_membrane else None)


def leaky_backward(grad_spikes: torch.Tensor, membrane: torch.Tensor, beta: float, threshold: float,
                   surrogate: str, static: bool = False) -> torch.Tensor:
    """``dL/dI`` from ``dL/dS`` by the recurrence of the module docstring, one timestep at a time
    from ``T - 1`` down (each step's temporaries stay in cache instead of streaming whole
    ``[T, ...]`` tensors through memory once per operation).

    ``static``: the current was :class:`Repeated`; its gradient ``sum_t dL/dI[t]`` ``[B, ...]``
    is accumulated directly."""
    derivative = SURROGATE_DERIVATIVES[surrogate]
    timesteps = membrane.shape[0]
    if static:
        total = torch.zeros_like(membrane[0])
        buffers = (torch.empty_like(membrane[0]), torch.empty_like(membrane[0]))
    else:
        grad = torch.empty_like(membrane)
    carry = None
    for t in range(timesteps - 1, -1, -1):
        step = buffers[t % 2] if static else grad[t]
        derivative(torch.sub(membrane[t], threshold, out=step)).mul_(grad_spikes[t])
        if carry is not None:
            if beta == 1.0:
                step.add_(carry)
            else:
                step.add_(carry, alpha=beta)
        if static:
            total.add_(step)
        carry = step
    return total if static else grad


class MultiStepLeaky(torch.autograd.Function):
    """``S = MultiStepLeaky.apply(I, T, beta, threshold, surrogate)``: ``I`` is ``[T, B, ...]``
    (``T`` None) or the static ``[B, ...]`` current of every step (``T`` given)."""

    @staticmethod
    def forward(ctx, current: torch.Tensor, timesteps: int | None, beta: float, threshold: float,
                surrogate: str) -> torch.Tensor:
        static = timesteps is not None
        spikes, membrane = leaky_forward(Repeated(current, timesteps) if static else current, beta, threshold)
        ctx.save_for_backward(membrane)
        ctx.beta, ctx.threshold, ctx.surrogate, ctx.static = beta, threshold, surrogate, static
        ctx.current_dtype = current.dtype
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (membrane,) = ctx.saved_tensors
        grad = leaky_backward(grad_spikes, membrane, ctx.beta, ctx.threshold, ctx.surrogate, ctx.static)
        return grad.to(ctx.current_dtype), None, None, None, None


def multistep_leaky(current: Current, beta: float = 1.0, threshold: float = 1.0,
                    surrogate: str = "atan") -> torch.Tensor:
    """Spikes ``[T, B, ...]`` of a layer of (leaky) integrate-and-fire neurons driven by ``current``
    (``[T, B, ...]`` or :class:`Repeated`). Without autograd (evaluation) no membrane is kept."""
    if surrogate not in SURROGATE_DERIVATIVES:
        raise KeyError(f"unknown surrogate {surrogate!r}; allowed: {sorted(SURROGATE_DERIVATIVES)}")
    static = isinstance(current, Repeated)
    tensor = current.current if static else current
    if torch.is_grad_enabled() and tensor.requires_grad:
        return MultiStepLeaky.apply(tensor, current.timesteps if static else None, float(beta), float(threshold),
                                    surrogate)
    return leaky_forward(current, float(beta), float(threshold), keep_membrane=False)[0]


def leaky_reference(current: torch.Tensor, beta: float = 1.0, threshold: float = 1.0,
                    surrogate: str = "atan", neuron=None) -> torch.Tensor:
    """The same layer as a plain loop of ``snntorch.Leaky`` calls, one per timestep (stacked)."""
    import snntorch

    if neuron is None:
        neuron = snntorch.Leaky(beta=beta, threshold=threshold, spike_grad=snntorch_surrogate(surrogate),
                                reset_mechanism="subtract")
    if isinstance(current, Repeated):
        current = current.expand()
    membrane = torch.zeros_like(current[0])
    spikes = []
    for step in current.unbind(0):
        spike, membrane = neuron(step, membrane)
        spikes.append(spike)
    return torch.stack(spikes)
