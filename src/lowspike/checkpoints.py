"""Tensors and models on disk: ``torch.save`` into memory, written atomically
(:func:`lowspike.artifacts.write_bytes`), so equal objects give equal bytes.

``torch.save`` to a path stores that file's name inside the archive, so saving through a
randomly named temporary file made every run's bytes differ (and DVC re-ran everything
downstream). An in-memory buffer has no name: the archive root is always ``archive``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .artifacts import write_bytes


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into memory: the same object gives the same bytes."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_torch(target: str | Path, obj: Any) -> None:
    """``torch.save`` into memory, then written atomically: byte-identical for equal objects."""
    write_bytes(target, torch_bytes(obj))


def load_torch(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    return torch.load(Path(path), map_location=map_location, weights_only=False)


def save_model(path: str | Path, model: nn.Module, **meta: Any) -> None:
    """``model.pt``: the state dict and what rebuilds the model (architecture, shapes, ...)."""
    save_torch(path, {"state_dict": model.state_dict(), **meta})


def load_model_payload(path: str | Path) -> dict:
    return load_torch(path)
