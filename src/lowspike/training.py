"""One training loop for every model of both studies.

Early stopping on the validation loss (patience in epochs) with the best weights restored,
a checkpoint written atomically after every epoch (model, optimizer, scheduler, RNG and
early-stopping state) so that an interrupted run resumes where it stopped, and a run whose
loss becomes NaN or infinite ends with status ``diverged`` instead of crashing. Ctrl-C ends
:func:`fit` with :class:`TrainingInterrupted`, which says what was kept.
"""

from __future__ import annotations

import copy
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .artifacts import sha256_file
from .checkpoints import load_torch, save_torch
from .config import TrainConfig
from .data.loading import SplitTensors
from .imports import closure, package_modules

CHECKPOINT_ROOT = Path(".cache/checkpoints")


@dataclass
class StepOutput:
    """What a loss function returns for one batch."""

    loss: torch.Tensor
    logits: torch.Tensor
    extras: dict[str, float] = field(default_factory=dict)


LossFn = Callable[..., StepOutput]
"""``loss_fn(model, x, y)``, or ``loss_fn(model, x, y, t)`` for a split with per-sample targets
(:meth:`lowspike.data.loading.SplitTensors.with_targets`)."""
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


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`, after ``epoch`` finished epochs (checkpointed in ``checkpoint``)."""

    def __init__(self, description: str, epoch: int, max_epochs: int, checkpoint: Path | None):
        super().__init__(description)
        self.description, self.epoch, self.max_epochs, self.checkpoint = description, epoch, max_epochs, checkpoint

    @property
    def note(self) -> str:
        """What the interrupted stage kept and how to resume, for its one-line message."""
        if self.checkpoint is None:
            return f" in {self.description} (it keeps no checkpoint): run `dvc repro` again"
        if self.epoch == 0:
            return f" in epoch 1 of {self.description}: no epoch finished, nothing to keep; run `dvc repro` again"
        return (f" after epoch {self.epoch} of {self.max_epochs} ({self.description}): checkpoint kept in "
                f"{self.checkpoint}; `dvc repro` resumes from epoch {self.epoch + 1}")


def code_hashes(roots: list[str]) -> dict[str, str]:
    """The sha256 of every file of the package modules ``roots`` run (their import closure,
    :func:`lowspike.imports.closure`), by path inside the package: the code part of a resume
    fingerprint."""
    src = Path(__file__).resolve().parents[1]
    files = package_modules(src)
    return {files[module].relative_to(src).as_posix(): sha256_file(files[module]) for module in closure(roots, src)}


def run_fingerprint(run: Any, params: dict[str, Any], data: Any, code_roots: list[str]) -> dict[str, Any]:
    """What defines a training, as a resume checkpoint records it: the run itself (its point or
    method, setting and seed), the values of every params key its stage reads
    (:mod:`lowspike.stage_params`), the sha256 of its prepared data, and the code it runs
    (:func:`code_hashes`). A checkpoint whose fingerprint differs is not resumed."""
    return json.loads(json.dumps({"run": run, "params": params, "data": data, "code": code_hashes(code_roots)},
                                 sort_keys=True, default=str))


def fingerprint_change(saved: Any, current: dict[str, Any]) -> str:
    """What differs between a checkpoint's fingerprint and the run's: the parts, and for the code
    the files (``the code of lowspike/snn/leaky.py``)."""
    if not isinstance(saved, dict) or not isinstance(current, dict) or set(saved) != set(current):
        return "the run (a checkpoint of another run or another version of lowspike)"
    changes = []
    for part in ("run", "params", "data"):
        if saved[part] != current[part]:
            keys = sorted(k for k in set(saved[part]) | set(current[part]) if saved[part].get(k) != current[part].get(k)) \
                if isinstance(current[part], dict) and isinstance(saved[part], dict) else []
            changes.append(f"its {part}" + (f" ({', '.join(keys)})" if keys else ""))
    files = sorted(f for f in set(saved["code"]) | set(current["code"]) if saved["code"].get(f) != current["code"].get(f))
    if files:
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        changes.append(f"the code of {shown}")
    return " and ".join(changes)


def checkpoint_path(run_id: str) -> Path:
    """Where an interrupted run's resume checkpoint lives (outside DVC outputs)."""
    return CHECKPOINT_ROOT / f"{run_id.replace('/', '__')}.pt"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_bfloat16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (avx512_bf16 / AMX; without them bf16
    is emulated and slower than float32)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


_warned_no_bfloat16 = False


def effective_precision(precision: str, device: torch.device | str) -> str:
    """``precision``, except ``bfloat16`` on a CPU without bf16 instructions (a laptop): float32,
    said once per process on stderr."""
    global _warned_no_bfloat16
    if precision != "bfloat16" or torch.device(device).type != "cpu" or cpu_has_bfloat16():
        return precision
    if not _warned_no_bfloat16:
        _warned_no_bfloat16 = True
        print("warning: precision bfloat16 falls back to float32: this CPU has no bf16 instructions",
              file=sys.stderr, flush=True)
    return "float32"


def autocast(precision: str, device: torch.device | str):
    """The autocast context of ``precision`` (``float32``: none; ``bfloat16``: matrix products and
    convolutions in bfloat16, accumulated in float32 by oneDNN / cuDNN; float32 where
    :func:`effective_precision` says the CPU cannot)."""
    device_type = torch.device(device).type
    enabled = effective_precision(precision, device) == "bfloat16"
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=enabled)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    if labels.numel() == 0:
        return 0.0
    return float((logits.argmax(dim=1) == labels).float().mean())


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
    for batch in data.batches(batch_size):
        y = batch[1]
        out = loss_fn(model, *batch)
        n = int(y.shape[0])
        total += n
        loss_sum += float(out.loss) * n
        correct += int((out.logits.argmax(dim=1) == y).sum())
        for key, value in out.extras.items():
            extras[key] = extras.get(key, 0.0) + float(value) * n
    total = max(total, 1)
    return {"loss": loss_sum / total, "accuracy": correct / total, **{k: v / total for k, v in extras.items()}}


@dataclass
class _Loop:
    """What one :func:`fit` call carries from epoch to epoch (and through a checkpoint)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    best_state: dict
    best_loss: float = math.inf
    best_epoch: int = 0
    epoch: int = 0
    stale: int = 0
    status: str = "ok"
    history: list[dict] = field(default_factory=list)

    def checkpoint(self, fingerprint: str) -> dict:
        return {"fingerprint": fingerprint, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "best_state": self.best_state, "best_loss": self.best_loss, "best_epoch": self.best_epoch,
                "epoch": self.epoch, "stale": self.stale, "history": self.history, "status": self.status,
                "rng": _rng_state(self.generator)}

    def resume(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None and saved["scheduler"] is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        self.best_state, self.best_loss, self.best_epoch = saved["best_state"], saved["best_loss"], saved["best_epoch"]
        self.epoch, self.stale, self.history, self.status = saved["epoch"], saved["stale"], saved["history"], saved["status"]
        _set_rng_state(saved["rng"], self.generator)


def _train_epoch(loop: _Loop, loss_fn: LossFn, data: SplitTensors, batch_size: int) -> dict[str, float] | None:
    """One pass over the shuffled training split; the mean loss, accuracy and extras, or None
    when the loss stopped being finite (the loop's status becomes ``diverged``)."""
    loop.model.train()
    seen, correct, loss_sum = 0, 0, 0.0
    extras: dict[str, float] = {}
    for batch in data.batches(batch_size, shuffle=True, generator=loop.generator):
        y = batch[1]
        out = loss_fn(loop.model, *batch)
        if not torch.isfinite(out.loss):
            loop.status = "diverged"
            return None
        loop.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        loop.optimizer.step()
        n = int(y.shape[0])
        seen += n
        loss_sum += float(out.loss.detach()) * n
        correct += int((out.logits.detach().argmax(dim=1) == y).sum())
        for key, value in out.extras.items():
            extras[key] = extras.get(key, 0.0) + float(value) * n
    seen = max(seen, 1)
    return {"train_loss": loss_sum / seen, "train_accuracy": correct / seen,
            **{f"train_{k}": v / seen for k, v in extras.items()}}


def _epoch(loop: _Loop, loss_fn: LossFn, train_data: SplitTensors, val_data: SplitTensors,
           cfg: TrainConfig) -> dict:
    """Train one epoch, step the schedule, validate, update early stopping; the epoch's record."""
    loop.epoch += 1
    train = _train_epoch(loop, loss_fn, train_data, cfg.batch_size)
    if loop.scheduler is not None:
        loop.scheduler.step()
    if loop.status == "ok":
        val = evaluate_loss(loop.model, loss_fn, val_data, cfg.batch_size)
        if not math.isfinite(val["loss"]):
            loop.status = "diverged"
    if loop.status == "diverged":
        return {"epoch": loop.epoch, "status": "diverged"}
    if val["loss"] < loop.best_loss:
        loop.best_loss, loop.best_epoch, loop.stale = val["loss"], loop.epoch, 0
        loop.best_state = copy.deepcopy(loop.model.state_dict())
    else:
        loop.stale += 1
    return {"epoch": loop.epoch, **train, **{f"val_{k}": v for k, v in val.items()},
            "lr": loop.optimizer.param_groups[0]["lr"]}


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: SplitTensors,
    val_data: SplitTensors,
    cfg: TrainConfig,
    checkpoint_path: str | Path | None = None,
    fingerprint: Any = "",
    on_epoch: EpochCallback | None = None,
    progress: bool | None = None,
    description: str = "train",
) -> FitResult:
    """Train ``model`` with early stopping on the validation loss; restore the best weights.

    ``checkpoint_path``: written after every epoch; if it exists with the same
    ``fingerprint`` (everything that defines the run, :func:`run_fingerprint`), training resumes
    from it and ends bit-identical on CPU to an uninterrupted run; with another fingerprint it
    starts afresh and says why in one line. Ctrl-C raises :class:`TrainingInterrupted`.
    """
    started = time.perf_counter()
    optimizer = make_optimizer(model.parameters(), cfg)
    loop = _Loop(model, optimizer, make_scheduler(optimizer, cfg), torch.Generator().manual_seed(cfg.seed),
                 copy.deepcopy(model.state_dict()))
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    if checkpoint_path is not None and checkpoint_path.exists():
        saved = _read_checkpoint(checkpoint_path)
        if saved.get("fingerprint") == fingerprint:
            loop.resume(saved)
            print(f"resuming {description} from its checkpoint after epoch {loop.epoch} ({checkpoint_path})",
                  file=sys.stderr, flush=True)
        elif saved:
            print(f"warning: not resuming {description} from {checkpoint_path}: "
                  f"{fingerprint_change(saved.get('fingerprint'), fingerprint)} changed since it was written; "
                  "training from scratch", file=sys.stderr, flush=True)
    resumed_from = saved_epoch = loop.epoch
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=cfg.max_epochs, initial=loop.epoch, desc=description, disable=not show, leave=False)
    try:
        while loop.status == "ok" and loop.epoch < cfg.max_epochs and loop.stale < cfg.patience:
            record = _epoch(loop, loss_fn, train_data, val_data, cfg)
            loop.history.append(record)
            if checkpoint_path is not None:
                save_torch(checkpoint_path, loop.checkpoint(fingerprint))
                saved_epoch = loop.epoch
            if on_epoch is not None:
                on_epoch(record)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", "val_loss", "val_accuracy")})
    except KeyboardInterrupt:
        raise TrainingInterrupted(description, saved_epoch, cfg.max_epochs, checkpoint_path) from None
    finally:
        bar.close()
    model.load_state_dict(loop.best_state)
    best_loss = math.nan if loop.best_epoch == 0 and loop.status == "diverged" else loop.best_loss
    return FitResult(status=loop.status, best_epoch=loop.best_epoch, epochs_run=loop.epoch, best_val_loss=best_loss,
                     history=loop.history, seconds=time.perf_counter() - started, resumed_from_epoch=resumed_from)
