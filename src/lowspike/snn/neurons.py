"""Integrate-and-fire neuron of the converted SNN: threshold 1, reset by subtraction.

Per timestep t, with input current I_t::

    v_t = v_{t-1} + I_t - theta * s_{t-1}
    s_t = 1[v_t > theta]

which is ``snntorch.Leaky(beta=1.0, reset_mechanism="subtract", threshold=theta)``: snntorch
subtracts the previous step's spike before integrating and fires on v > theta strictly.
Here the subtraction is applied right after firing (``v <- v - theta s_t``), which gives
the same spike trains; the membrane kept between steps is the post-reset one.
"""

from __future__ import annotations

import torch


def if_step(membrane: torch.Tensor, current: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """Integrate ``current`` into ``membrane`` in place, fire, reset by subtraction; return spikes."""
    membrane.add_(current)
    spikes = (membrane > threshold).to(membrane.dtype)
    membrane.sub_(spikes * threshold)
    return spikes
