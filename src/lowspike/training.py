"""One training loop for every model of both studies.

Early stopping on the validation loss (patience in epochs) with the best weights restored,
a checkpoint written atomically after every epoch (model, optimizer, scheduler, RNG and
early-stopping state) so that an interrupted run resumes where it stopped, and a run whose
loss becomes NaN or infinite ends with status ``diverged`` instead of crashing.
"""

from __future__ import annotations

import copy
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from .artifacts import load_torch, save_torch
from .config import TrainConfig
from .data.loading import SplitTensors


@dataclass
class StepOutput:
    """What a loss function returns for one batch."""

    loss: torch.Tensor
    logits: torch.Tensor
    extras: dict[str, float] = field(default_factory=dict)


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], StepOutput]
EpochCallback = Callable[[dict], None]


@dataclass
class FitResult:
    status: str  # "ok" or "diverged"
    best_epoch: int
    epochs_run: int
    best_val_loss: float
    history: list[dict]
    seconds: float
    resumed_from_epoch: int = 0


_progress: dict = {}
"""The training in progress in this process: checkpoint path and epochs done (for Ctrl-C)."""


def interruption_note() -> str:
    """What an interrupted stage kept and how to resume, for its one-line message."""
    if not _progress:
        return ": outputs are written atomically, nothing half-written is left; run `dvc repro` again"
    if _progress.get("checkpoint") is None:
        return f" in {_progress['description']} (it keeps no checkpoint): run `dvc repro` again"
    if _progress["epoch"] == 0:
        return f" in epoch 1 of {_progress['description']}: no epoch finished, nothing to keep; run `dvc repro` again"
    return (f" after epoch {_progress['epoch']} of {_progress['max_epochs']} ({_progress['description']}): "
            f"checkpoint kept in {_progress['checkpoint']}; `dvc repro` resumes from epoch {_progress['epoch'] + 1}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(precision: str, device: torch.device | str):
    """The autocast context of ``precision`` (``float32``: none; ``bfloat16``: matrix products and
    convolutions in bfloat16, accumulated in float32 by oneDNN / cuDNN)."""
    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.t_max)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    return None


def _rng_state(generator: torch.Generator) -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, generator: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _read_checkpoint(path: Path) -> dict:
    """The resume checkpoint at ``path``, or ``{}`` (train from scratch, one warning) when it
    cannot be read: a damaged checkpoint must not fail every later run of the stage."""
    try:
        saved = load_torch(path)
    except Exception as exc:  # noqa: BLE001 - torch.load raises several types on a damaged file
        print(f"warning: ignoring unreadable checkpoint {path} ({type(exc).__name__}); training from scratch",
              file=sys.stderr)
        return {}
    return saved if isinstance(saved, dict) else {}


@torch.inference_mode()
def evaluate_loss(model: nn.Module, loss_fn: LossFn, data: SplitTensors, batch_size: int) -> dict[str, float]:
    """Mean loss, accuracy and extras of ``loss_fn`` over ``data`` (no augmentation)."""
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    extras: dict[str, float] = {}
    for x, y in data.batches(batch_size):
        out = loss_fn(model, x, y)
        n = int(y.shape[0])
        total += n
        loss_sum += float(out.loss) * n
        correct += int((out.logits.argmax(dim=1) == y).sum())
        for key, value in out.extras.items():
            extras[key] = extras.get(key, 0.0) + float(value) * n
    total = max(total, 1)
    return {"loss": loss_sum / total, "accuracy": correct / total, **{k: v / total for k, v in extras.items()}}


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: SplitTensors,
    val_data: SplitTensors,
    cfg: TrainConfig,
    checkpoint_path: str | Path | None = None,
    fingerprint: str = "",
    on_epoch: EpochCallback | None = None,
    progress: bool | None = None,
    description: str = "train",
) -> FitResult:
    """Train ``model`` with early stopping on the validation loss; restore the best weights.

    ``checkpoint_path``: written after every epoch; if it exists with the same
    ``fingerprint`` (a hash of everything that defines the run), training resumes from it
    and ends bit-identical on CPU to an uninterrupted run.
    """
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = make_optimizer(model.parameters(), cfg)
    scheduler = make_scheduler(optimizer, cfg)
    history: list[dict] = []
    best_state = copy.deepcopy(model.state_dict())
    best_loss, best_epoch, epoch, stale = math.inf, 0, 0, 0
    status = "ok"
    resumed_from = 0

    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    if checkpoint_path is not None and checkpoint_path.exists():
        saved = _read_checkpoint(checkpoint_path)
        if saved.get("fingerprint") == fingerprint:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None and saved["scheduler"] is not None:
                scheduler.load_state_dict(saved["scheduler"])
            best_state, best_loss, best_epoch = saved["best_state"], saved["best_loss"], saved["best_epoch"]
            epoch, stale, history, status = saved["epoch"], saved["stale"], saved["history"], saved["status"]
            _set_rng_state(saved["rng"], generator)
            resumed_from = epoch
            print(f"resuming {description} from its checkpoint after epoch {epoch} ({checkpoint_path})",
                  file=sys.stderr, flush=True)
    _progress.clear()
    _progress.update(checkpoint=checkpoint_path, epoch=epoch, max_epochs=cfg.max_epochs, description=description)

    show = sys.stderr.isatty() if progress is None else progress
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.max_epochs, initial=epoch, desc=description, disable=not show, leave=False)
    while status == "ok" and epoch < cfg.max_epochs and stale < cfg.patience:
        epoch += 1
        model.train()
        seen, correct, loss_sum = 0, 0, 0.0
        extras: dict[str, float] = {}
        for x, y in train_data.batches(cfg.batch_size, shuffle=True, generator=generator):
            out = loss_fn(model, x, y)
            if not torch.isfinite(out.loss):
                status = "diverged"
                break
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            n = int(y.shape[0])
            seen += n
            loss_sum += float(out.loss.detach()) * n
            correct += int((out.logits.detach().argmax(dim=1) == y).sum())
            for key, value in out.extras.items():
                extras[key] = extras.get(key, 0.0) + float(value) * n
        if scheduler is not None:
            scheduler.step()
        if status == "ok":
            val = evaluate_loss(model, loss_fn, val_data, cfg.batch_size)
            if not math.isfinite(val["loss"]):
                status = "diverged"
        if status == "diverged":
            record = {"epoch": epoch, "status": "diverged"}
        else:
            seen = max(seen, 1)
            record = {
                "epoch": epoch,
                "train_loss": loss_sum / seen,
                "train_accuracy": correct / seen,
                **{f"train_{k}": v / seen for k, v in extras.items()},
                **{f"val_{k}": v for k, v in val.items()},
                "lr": optimizer.param_groups[0]["lr"],
            }
            if val["loss"] < best_loss:
                best_loss, best_epoch, stale = val["loss"], epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        bar.update(1)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", "val_loss", "val_accuracy")})
        if checkpoint_path is not None:
            save_torch(
                checkpoint_path,
                {
                    "fingerprint": fingerprint,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "best_state": best_state,
                    "best_loss": best_loss,
                    "best_epoch": best_epoch,
                    "epoch": epoch,
                    "stale": stale,
                    "history": history,
                    "status": status,
                    "rng": _rng_state(generator),
                },
            )
            _progress["epoch"] = epoch
    bar.close()
    _progress.clear()
    model.load_state_dict(best_state)
    if best_epoch == 0 and status == "diverged":
        best_loss = math.nan
    return FitResult(
        status=status,
        best_epoch=best_epoch,
        epochs_run=epoch,
        best_val_loss=best_loss,
        history=history,
        seconds=time.perf_counter() - started,
        resumed_from_epoch=resumed_from,
    )
