"""Training the DNNs of the conversion study (regularization paper): Eq. 4's loss with an
activity regularizer, and beyond the paper the SynOps regularizer and joint L1 weight and
activity regularization with magnitude pruning. Artifacts: :mod:`.conversion_points`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..artifacts import write_json
from ..checkpoints import load_model_payload, save_model
from ..config import Params
from ..data.loading import load_split
from ..data.prepared import load_prepared
from ..models import build_dnn, builder_modules
from ..penalties import activity_penalty, connection_sparsity, prune_small_weights, synops_penalty, weight_l1
from ..regularizers import build_regularizer, entry, split_point_spec
from ..snn.activity import dnn_fanouts
from ..stage_params import key_values, stage_keys
from ..training import StepOutput, checkpoint_path, fit, pick_device, run_fingerprint, seed_everything
from .conversion_points import Point


def make_loss(model_regularizer, lam: float, *, fanout_weighted: bool = False, weight_lambda: float = 0.0):
    """Eq. 4 of the regularization paper, ``CE + lambda * sum_l psi(X_l)``, and beyond it:
    ``fanout_weighted``, the ``synops`` regularizer (:func:`~lowspike.penalties.synops_penalty`,
    fan-outs recomputed from the current weights at every step); ``weight_lambda``, the joint L1
    weight penalty ``+ weight_lambda * sum |W|`` of the ``<regularizer>+wl1`` points."""

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        logits, hidden = model.forward_with_activations(x)
        ce = F.cross_entropy(logits, y)
        loss, extras = ce, {"ce": float(ce.detach())}
        if model_regularizer is not None and lam != 0.0:
            if fanout_weighted:
                penalty = synops_penalty(hidden, dnn_fanouts(model, tuple(x.shape[1:])))
            else:
                penalty = activity_penalty(hidden, model_regularizer)
            loss = loss + lam * penalty
            extras["penalty"] = float(penalty.detach())
        if weight_lambda:
            weights = weight_l1(model)
            loss = loss + weight_lambda * weights
            extras["weight_penalty"] = float(weights.detach())
        return StepOutput(loss, logits, extras)

    return loss_fn


def point_loss(params: Params, point: Point):
    """The loss of ``point`` (:func:`make_loss`), its weight penalty (None without) and that
    penalty's strength (0 without)."""
    study = params.regularization
    if point.regularizer == "none":
        return make_loss(None, point.lam), None, 0.0
    activity, weight_penalty = split_point_spec(point.regularizer)
    weight_lambda = study.weight_lambda if weight_penalty else 0.0
    regularizer = build_regularizer(activity, l2_form=study.l2_form, lp_eps=study.lp_eps)
    return make_loss(regularizer, point.lam, fanout_weighted=entry(activity).fanout,
                     weight_lambda=weight_lambda), weight_penalty, weight_lambda


def train_point(params: Params, point: Point, on_epoch=None, progress: bool = False) -> dict[str, Any]:
    """Train the DNN of ``point``; write ``model.pt`` and ``train.json``; return the summary."""
    study = params.regularization
    cfg = study.train.model_copy(update={"seed": point.train_seed(params)})
    device = pick_device()
    seed_everything(cfg.seed)
    prepared = load_prepared(Path(params.data.prepared_dir) / point.dataset)
    train_data = load_split(prepared, "train", params.data, device, train=True)
    val_data = load_split(prepared, "val", params.data, device)
    model = build_dnn(point.arch, train_data.sample_shape, prepared.num_classes).to(device)
    loss_fn, weight_penalty, weight_lambda = point_loss(params, point)
    run_id = f"dnn/{point.dataset}/{point.arch}/{point.name}"
    resume_key = run_fingerprint({"dataset": point.dataset, "arch": point.arch, "point": point.name},
                                 key_values(params, stage_keys("train_dnn")), prepared.meta["sha256"],
                                 [__name__, *builder_modules("dnn")])
    result = fit(model, loss_fn, train_data, val_data, cfg, checkpoint_path=checkpoint_path(run_id),
                 fingerprint=resume_key, on_epoch=on_epoch, progress=progress,
                 description=f"{point.arch} {point.name}")
    pruned = prune_small_weights(model, study.prune_threshold) if weight_penalty else 0
    folder = point.folder("dnn")
    save_model(folder / "model.pt", model, arch=point.arch, input_shape=list(train_data.sample_shape),
               num_classes=prepared.num_classes)
    best = next((h for h in result.history if h.get("epoch") == result.best_epoch), {})
    summary = {
        "dataset": point.dataset, "arch": point.arch, "regularizer": point.regularizer, "lambda": point.lam,
        "point": point.name, "seed": cfg.seed, "status": result.status, "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
        "val_accuracy": best.get("val_accuracy"), "weight_lambda": weight_lambda, "pruned_weights": pruned,
        "connection_sparsity": connection_sparsity(model), "history": result.history,
    }
    write_json(folder / "train.json", summary)  # no wall-clock field: the bytes must repeat
    checkpoint_path(run_id).unlink(missing_ok=True)
    return {**summary, "train_seconds": result.seconds, "resumed_from_epoch": result.resumed_from_epoch}


def load_dnn(point: Point, device: torch.device | str = "cpu") -> nn.Module:
    payload = load_model_payload(point.folder("dnn") / "model.pt")
    model = build_dnn(payload["arch"], tuple(payload["input_shape"]), payload["num_classes"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()
