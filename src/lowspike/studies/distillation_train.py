"""Training the distillation study (distillation paper): the FNN teacher of each dataset
(Table I) and every spiking student of the grids, with the loss its method declares
(:data:`lowspike.distillation.METHODS`).

Artifacts: ``runs/teacher/<dataset>/model.pt`` and ``train.json`` (accuracy, parameter count);
``runs/student/<dataset>/<run>/seed<seed>/model.pt`` and ``train.json``, where ``<run>`` is the
method's run name with its setting (``baseline``, ``mse-a<alpha>``, ``het-s<tau_s>-t<tau_t>``, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..artifacts import write_json
from ..checkpoints import load_model_payload, load_torch, save_model, save_torch
from ..config import Params, StudentSetup
from ..data.loading import SplitTensors, load_split
from ..data.prepared import load_prepared
from ..distillation import RUNS, StudentRun, total_loss
from ..hints import HintedStudent, HintProjections, build_hint_projections
from ..metrics import spikerate
from ..models import build_student, build_teacher, builder_modules, count_parameters
from ..penalties import PENALTIES
from ..stage_params import key_values, stage_keys
from ..training import (StepOutput, accuracy, autocast, checkpoint_path, fit, pick_device, run_fingerprint,
                        seed_everything)


def setup_for(params: Params, dataset: str) -> StudentSetup:
    return params.distillation.setups[dataset]


def teacher_folder(dataset: str) -> Path:
    return RUNS / "teacher" / dataset


def _splits(params: Params, dataset: str, device) -> tuple[Any, SplitTensors, SplitTensors]:
    prepared = load_prepared(Path(params.data.prepared_dir) / dataset)
    train_data = load_split(prepared, "train", params.data, device, train=True)
    val_data = load_split(prepared, "val", params.data, device)
    return prepared, train_data, val_data


def _cross_entropy_loss(precision: str):
    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        with autocast(precision, x.device):
            logits = model(x).float()
        return StepOutput(F.cross_entropy(logits, y), logits)

    return loss_fn


@torch.inference_mode()
def _predict(model: nn.Module, data: SplitTensors, batch_size: int, precision: str = "float32"
             ) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    logits, labels = [], []
    for x, y in data.batches(batch_size):
        with autocast(precision, x.device):
            out = model(x)
        logits.append(getattr(out, "logits", out).float())
        labels.append(y)
    return torch.cat(logits), torch.cat(labels)


def teacher_logits(model: nn.Module, data: SplitTensors, batch_size: int, precision: str) -> torch.Tensor:
    """The teacher's logits ``[N, classes]`` of every sample of ``data`` in its order, as a KD
    student's step computes them (eval mode, under the setup's precision, cast to float32)."""
    return _predict(model, data, batch_size, precision)[0]


def logits_path(dataset: str) -> Path:
    """``runs/teacher/<dataset>/logits.pt``: ``{"train": [N, C], "val": [M, C]}`` of the teacher."""
    return teacher_folder(dataset) / "logits.pt"


def train_teacher(params: Params, dataset: str, on_epoch=None, progress: bool = False) -> dict[str, Any]:
    """Train the FNN teacher of ``dataset`` (Table I) with cross-entropy; write ``model.pt``,
    ``train.json`` (parameter count, validation and test accuracy) and ``logits.pt``
    (:func:`teacher_logits` of the unaugmented training and validation splits: a KD student of a
    dataset without augmentation reads them instead of running the teacher at every step)."""
    setup = setup_for(params, dataset)
    cfg = setup.teacher_train
    device = pick_device()
    seed_everything(cfg.seed)
    prepared, train_data, val_data = _splits(params, dataset, device)
    model = build_teacher(setup.teacher, input_shape=train_data.sample_shape, num_classes=prepared.num_classes,
                          width=setup.teacher_width).to(device)
    run_id = f"teacher/{dataset}"
    result = fit(model, _cross_entropy_loss(setup.precision), train_data, val_data, cfg,
                 checkpoint_path=checkpoint_path(run_id),
                 fingerprint=run_fingerprint({"teacher": dataset}, key_values(params, stage_keys("train_teacher", dataset)),
                                             prepared.meta["sha256"], [__name__, *builder_modules("teacher")]),
                 on_epoch=on_epoch, progress=progress, description=f"teacher {setup.teacher}")
    test_data = load_split(prepared, "test", params.data, device)
    logits, labels = _predict(model, test_data, cfg.batch_size, setup.precision)
    folder = teacher_folder(dataset)
    save_model(folder / "model.pt", model, architecture=setup.teacher, width=setup.teacher_width,
               input_shape=list(train_data.sample_shape), num_classes=prepared.num_classes)
    plain_train = load_split(prepared, "train", params.data, device)
    save_torch(logits_path(dataset), {split: teacher_logits(model, data, cfg.batch_size, setup.precision).cpu()
                                      for split, data in (("train", plain_train), ("val", val_data))})
    best = next((h for h in result.history if h.get("epoch") == result.best_epoch), {})
    summary = {
        "dataset": dataset, "model": setup.teacher, "width": setup.teacher_width,
        "parameters": count_parameters(model), "status": result.status, "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
        "val_accuracy": best.get("val_accuracy"), "accuracy": accuracy(logits, labels),
        "history": result.history,
    }
    write_json(folder / "train.json", summary)  # no wall-clock field: the bytes must repeat
    checkpoint_path(run_id).unlink(missing_ok=True)
    return {**summary, "train_seconds": result.seconds, "resumed_from_epoch": result.resumed_from_epoch}


def load_teacher(dataset: str, device) -> nn.Module:
    payload = load_model_payload(teacher_folder(dataset) / "model.pt")
    model = build_teacher(payload["architecture"], input_shape=tuple(payload["input_shape"]),
                          num_classes=payload["num_classes"], width=payload["width"])
    model.load_state_dict(payload["state_dict"])
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()


def make_student(params: Params, dataset: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    setup = setup_for(params, dataset)
    student = build_student(setup.student, input_shape=tuple(input_shape), num_classes=num_classes,
                            neuron=setup.neuron, beta=setup.beta if setup.neuron == "lif" else 1.0,
                            timesteps=setup.timesteps, width=setup.student_width,
                            surrogate=params.distillation.surrogate)
    student.bfloat16 = setup.precision == "bfloat16"
    return student


def make_student_loss(run: StudentRun, alpha: float | None, teacher: nn.Module | None = None,
                      precision: str = "float32", hints: HintProjections | None = None):
    """The training loss of ``run``, the terms its method declares: cross-entropy; its KD term
    (Eq. 1 with Eq. 2, 4 or 5: the setting's ``alpha`` where it has one, as MSE KD, else
    ``distillation.alpha``), from the teacher's logits of the batch (given beside it by a split
    that carries them, :func:`teacher_logits`, else the teacher's forward); ``w L_hint`` with the teacher's maps (:meth:`forward_with_features`)
    and the projections ``hints`` (FitNets, :func:`lowspike.hints.hint_loss`); and ``lambda``
    times its penalty (activation or logits regularization, Eqs. 9-10,
    :data:`lowspike.penalties.PENALTIES`). Every step reports the batch spikerate (Eq. 12) so
    training curves show activity.
    """
    method, setting = run.spec, run.setting
    if method.uses_teacher and teacher is None:
        raise ValueError(f"{run.name} needs a teacher")
    if method.hints and hints is None:
        raise ValueError(f"{run.name} needs its hint projections")

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                teacher_logits: torch.Tensor | None = None) -> StepOutput:
        out = model(x)
        ce = F.cross_entropy(out.logits, y)
        loss = ce
        extras = {"ce": float(ce.detach())}
        if method.kd is not None:
            if teacher_logits is None:
                with torch.no_grad(), autocast(precision, x.device):
                    teacher_logits = teacher(x).float()
            kd = method.kd(out.logits, teacher_logits, **{k: setting[k] for k in method.kd_args})
            loss = total_loss(ce, kd, setting.get("alpha", alpha))
            extras["kd"] = float(kd.detach())
        if method.hints:
            with torch.no_grad(), autocast(precision, x.device):
                _, features = teacher.forward_with_features(x)
            hint = hints(out.spikes, features)
            loss = loss + setting["weight"] * hint
            extras["hint"] = float(hint.detach())
        if method.penalty is not None:
            penalty = PENALTIES[method.penalty](out, setting["norm"])
            loss = loss + setting["lam"] * penalty
            extras["penalty"] = float(penalty.detach())
        with torch.no_grad():
            spikes = sum(float(s.sum()) for s in out.spikes)
            extras["spikerate"] = spikerate(spikes / x.shape[0], sum(model.neuron_counts()))
        return StepOutput(loss, out.logits, extras)

    return loss_fn


def _run_fingerprint(params: Params, run: StudentRun, prepared_sha: dict) -> dict:
    keys = stage_keys("train_student", run.dataset, study_alpha=run.spec.uses_study_alpha)
    return run_fingerprint({"dataset": run.dataset, "run": run.name, "seed": run.seed}, key_values(params, keys),
                           prepared_sha, [__name__, *builder_modules("student", "teacher")])


def train_student(params: Params, run: StudentRun, on_epoch=None, progress: bool = False) -> dict[str, Any]:
    """Train the student of ``run``; write ``model.pt`` and ``train.json`` in its folder."""
    setup = setup_for(params, run.dataset)
    cfg = setup.student_train.model_copy(update={"seed": run.seed})
    device = pick_device()
    seed_everything(run.seed)
    prepared, train_data, val_data = _splits(params, run.dataset, device)
    model = make_student(params, run.dataset, train_data.sample_shape, prepared.num_classes).to(device)
    teacher = load_teacher(run.dataset, device) if run.uses_teacher else None
    if run.spec.kd is not None and not run.uses_hints and train_data.augment is None:
        if logits_path(run.dataset).exists():
            cached = load_torch(logits_path(run.dataset), map_location=device)
            train_data, val_data = train_data.with_targets(cached["train"]), val_data.with_targets(cached["val"])
        else:
            print(f"warning: {logits_path(run.dataset)} is missing (a teacher trained before it was written): "
                 "the teacher runs forward at every step (same logits, slower)", file=sys.stderr, flush=True)
    hints, trained = None, model
    if run.uses_hints:
        hints = build_hint_projections(setup.student, setup.teacher, model, teacher, train_data.sample_shape)
        hints = hints.to(device)
        trained = HintedStudent(model, hints)
    run_id = f"student/{run.dataset}/{run.name}/seed{run.seed}"
    alpha = params.distillation.alpha if run.spec.uses_study_alpha else None
    loss_fn = make_student_loss(run, alpha, teacher, setup.precision, hints)
    result = fit(trained, loss_fn, train_data, val_data, cfg, checkpoint_path=checkpoint_path(run_id),
                 fingerprint=_run_fingerprint(params, run, prepared.meta["sha256"]),
                 on_epoch=on_epoch, progress=progress, description=f"{setup.student} {run.name} s{run.seed}")
    folder = run.folder()
    save_model(folder / "model.pt", model, input_shape=list(train_data.sample_shape),
               num_classes=prepared.num_classes)
    best = next((h for h in result.history if h.get("epoch") == result.best_epoch), {})
    summary = {
        "dataset": run.dataset, "run": run.name, "method": run.method, "setting": run.setting, "seed": run.seed,
        "model": setup.student, "status": result.status, "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
        "val_accuracy": best.get("val_accuracy"), "val_spikerate": best.get("val_spikerate"),
        "history": result.history,
    }
    if hints is not None:
        summary["hints"] = [list(pair) for pair in hints.pairs]
        summary["hint_parameters"] = sum(p.numel() for p in hints.parameters())
    write_json(folder / "train.json", summary)  # no wall-clock field: the bytes must repeat
    checkpoint_path(run_id).unlink(missing_ok=True)
    return {**summary, "train_seconds": result.seconds, "resumed_from_epoch": result.resumed_from_epoch}
