"""Integrate-and-fire neuron of the converted SNN: threshold 1, reset by subtraction.

Per timestep t, with input current I_t::

    v_t = v_{t-1} + I_t - theta * s_{t-1}
    s_t = 1[v_t > theta]

which is ``snntorch.Leaky(beta=1.0, reset_mechanism="subtract", threshold=theta)``: snntorch
subtracts the previous step's spike before integrating and fires on v > theta strictly.
Here the subtraction is applied right after firing (``v <- v - theta s_t``), which gives
the same spike trains in exact arithmetic; the membrane kept between steps is the post-reset
one. In float32 the two orders, ``(v + I) - theta`` and ``(v - theta) + I``, can round
differently and flip a spike whose membrane lands exactly on the threshold (measured 0.0000%
of the spikes of a trained LeNet-5); the tests compare spike for spike in float64.
"""

from __future__ import annotations

import torch


def if_step(membrane: torch.Tensor, current: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """Integrate ``current`` into ``membrane`` in place, fire, reset by subtraction; return spikes."""
    membrane.add_(current)
    spikes = (membrane > threshold).to(membrane.dtype)
    membrane.sub_(spikes * threshold)
    return spikes
