"""Leaky integrate-and-fire neurons over all T timesteps in one autograd node.

The model is ``snntorch.Leaky(beta, threshold, reset_mechanism="subtract")`` (snntorch 1.0,
``reset_delay=True``), step for step::

    U[t] = beta U[t-1] + I[t] - theta S[t-1],     S[t] = 1[U[t] > theta],     U[-1] = S[-1] = 0

``beta = 1`` is the IF neuron. The float32 order of the sum is the one of the networks each
neuron is compared with: a LIF neuron (``beta < 1``) computes ``(beta U + I) - theta S`` as
snntorch does; the IF neuron computes ``(U - theta S) + I``, the reset before the input, as
lowspike's conversion simulator (:mod:`.simulation`) and sinabs' ``IAF`` do, so that a student
and a converted network have one IF neuron and an exported IF network runs in sinabs spike for
spike (docs/deploy.md). :func:`reference_neuron` is snntorch's module for each.

The reset term is detached (snntorch computes it from the previous membrane through
``.detach()``), so the backward pass through the surrogate derivative ``sigma'``
(:mod:`.surrogates`) is the linear recurrence::

    dL/dU[t] = dL/dS[t] sigma'(U[t] - theta) + beta dL/dU[t+1],     dL/dI[t] = dL/dU[t]

:class:`MultiStepLeaky` is one autograd node for the T steps (no per-step nodes, no
``torch.stack``). It keeps only the input current for the backward, which recomputes the
membranes. Both passes run on the current viewed as rows ``[T, N]`` in its memory order
(:class:`Rows`, no copy of a channels-last map) in the compiled kernels of ``leaky_kernels.c``
(:mod:`lowspike.native`: each tensor read and written once, a bfloat16 current cast inside the
step), or, without a C compiler, in the eager loops :func:`leaky_forward` and
:func:`leaky_backward`; both give the same bits, and the spikes of :func:`reference_neuron`'s
step-by-step loop bit for bit; gradients agree within float32 rounding (the additions of the
recurrence are ordered differently from autograd's).

:func:`leaky_reference` is the plain step-by-step loop through that snntorch module that the
tests and NeuroBench use.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import snntorch
import torch

from .. import native
from .surrogates import SURROGATE_CONSTANTS, snntorch_surrogate, surrogate_derivative


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
            reset = spikes[t - 1] if threshold == 1.0 else spikes[t - 1] * threshold
            if beta == 1.0:
                torch.sub(previous, reset, out=u).add_(current_at(t))
            else:
                torch.mul(previous, beta, out=u).add_(current_at(t)).sub_(reset)
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
    derivative = surrogate_derivative(surrogate)
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
                step.add_(carry * beta)
        if static:
            total.add_(step)
        carry = step
    return total if static else grad


# ------------------------------------------------------------------ rows and the autograd node


@dataclass(frozen=True)
class Rows:
    """How a current maps onto the rows ``[T, N]`` (or ``[N]`` for a static current) the kernels
    run on: its dims in memory order (``order``, time first) and their sizes (``shape``), so that
    the rows are a view of a contiguous or channels-last current, not a copy."""

    order: tuple[int, ...]
    shape: tuple[int, ...]
    static: bool

    @classmethod
    def of(cls, current: torch.Tensor, static: bool) -> "Rows":
        leading = 0 if static else 1
        rest = sorted(range(leading, current.dim()), key=lambda d: (-current.stride(d), d))
        order = tuple(range(leading)) + tuple(rest)
        return cls(order, tuple(current.shape[d] for d in order), static)

    def _steps_order(self) -> list[int]:
        """``order`` for a ``[T, ...]`` tensor (a static current's spikes and their gradient)."""
        return [0] + [d + 1 for d in self.order] if self.static else list(self.order)

    def rows(self, x: torch.Tensor, with_steps: bool = False) -> torch.Tensor:
        """``x`` (the current, or ``[T, ...]`` spikes or their gradient with ``with_steps``) as rows."""
        permuted = x.permute(self._steps_order() if with_steps else list(self.order))
        if not permuted.is_contiguous():
            permuted = permuted.contiguous()
        leading = 1 if (with_steps or not self.static) else 0
        return permuted.reshape(*permuted.shape[:leading], -1)

    def back(self, rows: torch.Tensor, with_steps: bool = False) -> torch.Tensor:
        """Rows back in the shape and layout of the current (``[T, ...]`` with ``with_steps``)."""
        order = self._steps_order() if with_steps else list(self.order)
        shape = ((rows.shape[0], *self.shape) if with_steps and self.static else self.shape)
        return rows.reshape(shape).permute([order.index(d) for d in range(len(order))])


KERNELS = Path(__file__).with_name("leaky_kernels.c")
"""The compiled forward and backward (:mod:`lowspike.native`): the same bits as the eager loops."""
_I64, _INT, _FLOAT, _PTR = ctypes.c_int64, ctypes.c_int, ctypes.c_float, ctypes.c_void_p
SIGNATURES = {
    "lowspike_integrate": [_PTR, _INT, _I64, _I64, _I64, _I64, _INT, _FLOAT, _FLOAT, _PTR, _PTR],
    "lowspike_backprop": [_PTR, _PTR, _INT, _I64, _I64, _I64, _I64, _INT, _FLOAT, _FLOAT, _INT, _FLOAT, _FLOAT, _PTR],
}
SURROGATE_CODES = {"atan": 0, "fast_sigmoid": 1, "triangular": 2}
"""The surrogates the compiled backward computes to the last bit (``sigmoid``'s ``exp`` would round
differently from PyTorch's vectorized one: it keeps the eager backward)."""


def _kernels(*tensors: torch.Tensor):
    """The compiled kernels when they can take ``tensors`` (CPU, contiguous, float32 or bfloat16)."""
    if not native.usable(*tensors) or any(t.dtype not in (torch.float32, torch.bfloat16) for t in tensors):
        return None
    return native.library(KERNELS, SIGNATURES)


def native_integrate(lib, current: torch.Tensor, steps: int, beta: float, threshold: float) -> torch.Tensor:
    """Spikes ``[T, N]`` (float32) of a current ``[T, N]`` or static ``[N]``: :func:`leaky_forward`'s bits."""
    n = current.shape[-1]
    spikes = torch.empty((steps, n), dtype=torch.float32)
    bf16 = int(current.dtype == torch.bfloat16)
    native.run(lambda begin, end: lib.lowspike_integrate(
        current.data_ptr(), bf16, steps, n, begin, end, int(current.dim() == 1), beta, threshold, spikes.data_ptr(),
        None), n)
    return spikes


def native_backprop(lib, grad_spikes: torch.Tensor, current: torch.Tensor, steps: int, beta: float, threshold: float,
                    surrogate: str) -> torch.Tensor:
    """``dL/dI`` in the current's dtype and shape, the membranes recomputed from ``current``:
    :func:`leaky_backward`'s bits."""
    n = current.shape[-1]
    grad = torch.empty(current.shape, dtype=current.dtype)
    bf16 = int(current.dtype == torch.bfloat16)
    scale, half = SURROGATE_CONSTANTS[surrogate]
    native.run(lambda begin, end: lib.lowspike_backprop(
        grad_spikes.data_ptr(), current.data_ptr(), bf16, steps, n, begin, end, int(current.dim() == 1), beta,
        threshold, SURROGATE_CODES[surrogate], scale, half, grad.data_ptr()), n)
    return grad


def _integrate(current: torch.Tensor, timesteps: int | None, beta: float, threshold: float
               ) -> tuple[torch.Tensor, torch.Tensor, Rows]:
    """Spikes ``[T, ...]`` in the layout of ``current``, the current as rows and its layout: the
    compiled kernel (:mod:`.native`), else :func:`leaky_forward` on the same rows."""
    layout = Rows.of(current, static=timesteps is not None)
    rows = layout.rows(current)
    steps = timesteps if timesteps is not None else current.shape[0]
    lib = _kernels(rows)
    if lib is not None:
        spikes = native_integrate(lib, rows, steps, beta, threshold)
    else:
        spikes, _ = leaky_forward(Repeated(rows, steps) if layout.static else rows, beta, threshold,
                                  keep_membrane=False)
    return layout.back(spikes, with_steps=True), rows, layout


def _backprop(grad_rows: torch.Tensor, rows: torch.Tensor, steps: int, beta: float, threshold: float,
              surrogate: str) -> torch.Tensor:
    """``dL/dI`` as rows in the current's dtype, the membranes recomputed from the current (no
    ``[T, N]`` membrane is kept between the passes): the compiled kernel where it computes this
    surrogate, else :func:`leaky_forward` and :func:`leaky_backward`."""
    lib = _kernels(grad_rows, rows) if surrogate in SURROGATE_CODES else None
    if lib is not None:
        return native_backprop(lib, grad_rows, rows, steps, beta, threshold, surrogate)
    static = rows.dim() == 1
    _, membrane = leaky_forward(Repeated(rows, steps) if static else rows, beta, threshold, keep_membrane=True)
    return leaky_backward(grad_rows, membrane, beta, threshold, surrogate, static).to(rows.dtype)


class MultiStepLeaky(torch.autograd.Function):
    """``S = MultiStepLeaky.apply(I, T, beta, threshold, surrogate)``: ``I`` is ``[T, B, ...]``
    (``T`` None) or the static ``[B, ...]`` current of every step (``T`` given). It keeps the
    current (not the ``[T, ...]`` membranes) for the backward, which recomputes the membranes."""

    @staticmethod
    def forward(ctx, current: torch.Tensor, timesteps: int | None, beta: float, threshold: float,
                surrogate: str) -> torch.Tensor:
        spikes, rows, layout = _integrate(current, timesteps, beta, threshold)
        ctx.save_for_backward(rows)
        ctx.beta, ctx.threshold, ctx.surrogate, ctx.layout = beta, threshold, surrogate, layout
        ctx.steps = spikes.shape[0]
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (rows,) = ctx.saved_tensors
        layout: Rows = ctx.layout
        grad = _backprop(layout.rows(grad_spikes, with_steps=True), rows, ctx.steps, ctx.beta, ctx.threshold,
                         ctx.surrogate)
        return layout.back(grad), None, None, None, None


def multistep_leaky(current: Current, beta: float = 1.0, threshold: float = 1.0,
                    surrogate: str = "atan") -> torch.Tensor:
    """Spikes ``[T, B, ...]`` of a layer of (leaky) integrate-and-fire neurons driven by ``current``
    (``[T, B, ...]`` or :class:`Repeated`). Without autograd (evaluation) no membrane is kept."""
    surrogate_derivative(surrogate)
    static = isinstance(current, Repeated)
    tensor = current.current if static else current
    if torch.is_grad_enabled() and tensor.requires_grad:
        return MultiStepLeaky.apply(tensor, current.timesteps if static else None, float(beta), float(threshold),
                                    surrogate)
    return _integrate(tensor, current.timesteps if static else None, float(beta), float(threshold))[0]


class ResetFirstIF(snntorch.Leaky):
    """``snntorch.Leaky(beta=1, reset_mechanism="subtract")`` with the reset subtracted before the
    input is added, ``U[t] = (U[t-1] - theta S[t-1]) + I[t]``: the IF neuron of the module
    docstring as an snntorch module (NeuroBench hooks it as one). snntorch's own computes
    ``(U[t-1] + I[t]) - theta S[t-1]``: the same sum, which float32 can round differently."""

    def __init__(self, threshold: float = 1.0, spike_grad=None):
        super().__init__(beta=1.0, threshold=threshold, spike_grad=spike_grad, reset_mechanism="subtract")

    def _base_sub(self, input_: torch.Tensor) -> torch.Tensor:
        return (self.mem - self.reset * self.threshold) + input_


def reference_neuron(beta: float = 1.0, threshold: float = 1.0, surrogate: str = "atan") -> snntorch.Leaky:
    """The snntorch module of one layer of :func:`multistep_leaky`'s neurons, bit for bit:
    :class:`ResetFirstIF` for ``beta = 1``, ``snntorch.Leaky`` itself for ``beta < 1``."""
    spike_grad = snntorch_surrogate(surrogate)
    if float(beta) == 1.0:
        return ResetFirstIF(threshold=threshold, spike_grad=spike_grad)
    return snntorch.Leaky(beta=beta, threshold=threshold, spike_grad=spike_grad, reset_mechanism="subtract")


def leaky_reference(current: torch.Tensor, beta: float = 1.0, threshold: float = 1.0,
                    surrogate: str = "atan", neuron=None) -> torch.Tensor:
    """The same layer as a plain loop of :func:`reference_neuron` calls, one per timestep (stacked)."""
    if neuron is None:
        neuron = reference_neuron(beta, threshold, surrogate)
    if isinstance(current, Repeated):
        current = current.expand()
    membrane = torch.zeros_like(current[0])
    spikes = []
    for step in current.unbind(0):
        spike, membrane = neuron(step, membrane)
        spikes.append(spike)
    return torch.stack(spikes)
