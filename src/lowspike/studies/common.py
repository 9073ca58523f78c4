"""Helpers shared by both studies: run naming, fingerprints, model checkpoints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artifacts import load_torch, save_torch

CHECKPOINT_ROOT = Path(".cache/checkpoints")


def format_value(value: float) -> str:
    """A number as DVC renders it in matrix stage names and paths (Python's ``str``)."""
    return str(value)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (params of a run, its inputs' hashes)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_path(run_id: str) -> Path:
    """Where an interrupted run's resume checkpoint lives (outside DVC outputs)."""
    return CHECKPOINT_ROOT / f"{run_id.replace('/', '__')}.pt"


def save_model(path: str | Path, model: nn.Module, **meta: Any) -> None:
    save_torch(path, {"state_dict": model.state_dict(), **meta})


def load_model_payload(path: str | Path) -> dict:
    return load_torch(path)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    if labels.numel() == 0:
        return 0.0
    return float((logits.argmax(dim=1) == labels).float().mean())
