"""The conversion study's DNNs (regularization paper, Sec. 3.3) as one plain sequence of layers."""

from __future__ import annotations

import torch
from torch import nn


class ReluSequence(nn.Module):
    """``layers``, a plain ``nn.Sequential`` of Flatten/Conv2d/AvgPool2d/Linear/ReLU modules that
    conversion walks (:mod:`lowspike.snn.convert`); the outputs of its ReLUs are the hidden
    activations the regularizers act on (the X_l of Eq. 4 of the regularization paper)."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward_with_activations(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the post-ReLU hidden activation maps."""
        hidden = []
        for module in self.layers:
            x = module(x)
            if isinstance(module, nn.ReLU):
                hidden.append(x)
        return x, hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
