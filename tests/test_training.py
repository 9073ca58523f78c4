"""The shared training loop: early stopping, best-weight restore, resume, divergence."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lowspike.config import TrainConfig
from lowspike.data.loading import SplitTensors
from lowspike.training import StepOutput, fit


def _data(n: int, seed: int) -> SplitTensors:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return SplitTensors(x, y)


def _ce(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
    logits = model(x)
    return StepOutput(F.cross_entropy(logits, y), logits)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_learns_a_separable_problem_and_restores_the_best_epoch():
    model = _model()
    cfg = TrainConfig(lr=1.0e-2, batch_size=32, max_epochs=15, patience=15)
    result = fit(model, _ce, _data(256, 1), _data(128, 2), cfg, progress=False)
    assert result.status == "ok"
    assert result.epochs_run == 15
    best = min(h["val_loss"] for h in result.history)
    assert result.best_val_loss == best
    assert result.history[result.best_epoch - 1]["val_loss"] == best
    with torch.no_grad():
        x, y = _data(128, 2).inputs, _data(128, 2).labels
        restored = F.cross_entropy(model(x), y).item()
    assert restored == pytest.approx(best, rel=1e-5)
    assert result.history[-1]["val_accuracy"] > 0.9


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    model = _model()
    cfg = TrainConfig(lr=1.0e-9, batch_size=64, max_epochs=50, patience=3)
    result = fit(model, _ce, _data(128, 1), _data(64, 2), cfg, progress=False)
    # lr ~ 0: the loss stays (numerically) flat, so it never improves by more than noise
    assert result.epochs_run <= result.best_epoch + 3
    assert result.epochs_run < 50


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
    cfg = TrainConfig(lr=1.0e-2, batch_size=16, max_epochs=6, patience=6)
    straight = _model()
    fit(straight, _ce, _data(96, 1), _data(32, 2), cfg, progress=False)

    ckpt = tmp_path / "ckpt.pt"
    first = _model()
    fit(first, _ce, _data(96, 1), _data(32, 2), cfg.model_copy(update={"max_epochs": 3}),
        checkpoint_path=ckpt, fingerprint="run", progress=False)
    resumed = _model()
    result = fit(resumed, _ce, _data(96, 1), _data(32, 2), cfg, checkpoint_path=ckpt, fingerprint="run",
                 progress=False)
    assert result.epochs_run == 6
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_with_other_fingerprint_is_ignored(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    cfg = TrainConfig(lr=1.0e-2, batch_size=16, max_epochs=2, patience=2)
    fit(_model(), _ce, _data(64, 1), _data(32, 2), cfg, checkpoint_path=ckpt, fingerprint="a", progress=False)
    result = fit(_model(), _ce, _data(64, 1), _data(32, 2), cfg, checkpoint_path=ckpt, fingerprint="b",
                 progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_nan_loss_ends_with_status_diverged():
    def exploding(model, x, y):
        logits = model(x)
        return StepOutput(F.cross_entropy(logits, y) * torch.tensor(math.inf), logits)

    result = fit(_model(), exploding, _data(64, 1), _data(32, 2), TrainConfig(max_epochs=5), progress=False)
    assert result.status == "diverged"
    assert result.history == [{"epoch": 1, "status": "diverged"}]
    assert math.isnan(result.best_val_loss)


def test_bfloat16_falls_back_to_float32_with_one_line_on_a_cpu_without_bf16(monkeypatch, capsys):
    from lowspike import training

    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    monkeypatch.setattr(training, "_warned_no_bfloat16", False)
    monkeypatch.setattr(training, "cpu_has_bfloat16", lambda: False)
    for _ in range(2):
        with training.autocast("bfloat16", "cpu"):
            out = layer(x)
        assert out.dtype == torch.float32 and torch.equal(out, layer(x))
    err = capsys.readouterr().err
    assert err.count("falls back to float32") == 1
    monkeypatch.setattr(training, "cpu_has_bfloat16", lambda: True)
    with training.autocast("bfloat16", "cpu"):
        assert layer(x).dtype == torch.bfloat16
    assert training.effective_precision("float32", "cpu") == "float32"
