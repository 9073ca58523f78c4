"""Plain reference implementations that the fast paths of :mod:`lowspike.snn` are tested against."""

from __future__ import annotations

import torch


def if_step(membrane: torch.Tensor, current: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """One step of the converted SNN's integrate-and-fire neuron, in place: integrate ``current``
    into ``membrane``, fire where ``v > theta``, reset by subtraction; returns the spikes::

        v_t = v_{t-1} + I_t - theta * s_{t-1},     s_t = 1[v_t > theta]

    which is ``snntorch.Leaky(beta=1.0, reset_mechanism="subtract", threshold=theta)``: snntorch
    subtracts the previous step's spike before integrating and fires on v > theta strictly.
    Here the subtraction is applied right after firing, which gives the same spike trains in
    exact arithmetic; in float32 the two orders, ``(v + I) - theta`` and ``(v - theta) + I``, can
    round differently and flip a spike whose membrane lands exactly on the threshold."""
    membrane.add_(current)
    spikes = (membrane > threshold).to(membrane.dtype)
    membrane.sub_(spikes * threshold)
    return spikes
