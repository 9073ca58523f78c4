"""The direct-training study (distillation paper): teachers, students, evaluation, aggregation.

Artifacts:

- ``runs/teacher/<dataset>/model.pt`` and ``train.json`` (accuracy, parameter count)
- ``runs/student/<dataset>/<run>/seed<seed>/model.pt`` and ``train.json``, where ``<run>``
  names the method and its setting: ``baseline``, ``mse-a<alpha>``, ``st-t<tau>``,
  ``het-s<tau_s>-t<tau_t>``, ``act-<norm>-<lambda>``, ``log-<norm>-<lambda>``, and beyond the
  paper ``het-s<tau_s>-t<tau_t>+act-<norm>-<lambda>`` (``combined``), ``feat-w<weight>``
  (``feature``: FitNets hints, :mod:`lowspike.hints`) and ``feat-w<weight>+act-<norm>-<lambda>``
  (``feature_act``)
- ``runs/student_eval/<dataset>/<run>/seed<seed>/evaluate.json`` accuracy, spikes, spikerate,
  per-layer spikerate on the test split, per-layer activity, energy per inference (SNN and its
  non-spiking counterpart, both energy models) and NeuroBench's metrics
- ``runs/student_eval/<dataset>/teacher/evaluate.json`` the teacher's per-layer MACs and energy
- ``results/distillation/results.json`` (and ``.csv``) every run with its relative deltas
  against the baseline of the same dataset, model and seed (Eqs. 11 and 13), and the
  mean/std over seeds per configuration; the teachers; the break-even spikerates.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..artifacts import read_json, write_json
from ..config import EnergyConfig, Params, ParamsError, StudentSetup
from ..data import load_prepared
from ..data.loading import SplitTensors, load_split
from ..distillation import kd_loss, total_loss
from ..hints import HINT_LAYERS, HintedStudent, HintProjections, build_hint_projections
from ..metrics import spikerate
from ..models import build_student, build_teacher, count_parameters
from ..regularizers import logits_penalty, spike_activity_penalty
from ..training import StepOutput, autocast, fit, pick_device, seed_everything
from .common import accuracy, checkpoint_path, fingerprint, format_value, load_model_payload, save_model

RUNS = Path("runs")
METHODS = ("baseline", "mse", "soft_targets", "heterogeneous", "activation", "logits", "combined", "feature",
           "feature_act")
KD_METHODS = ("mse", "soft_targets", "heterogeneous", "combined")
"""Methods with a response-based KD term (Eqs. 1-5)."""
HINT_METHODS = ("feature", "feature_act")
"""Methods with the feature-based hint term (FitNets, :mod:`lowspike.hints`)."""
ACTIVATION_METHODS = ("activation", "combined", "feature_act")
"""Methods with the activation regularizer (Eqs. 9-10)."""
BEYOND_PAPER_METHODS = ("combined", "feature", "feature_act")
"""The paper's future work (Sec. VI), not in its tables."""
SETTING_KEYS: dict[str, tuple[str, ...]] = {
    "baseline": (), "mse": ("alpha",), "soft_targets": ("tau",), "heterogeneous": ("tau_s", "tau_t"),
    "activation": ("norm", "lam"), "logits": ("norm", "lam"), "combined": ("tau_s", "tau_t", "norm", "lam"),
    "feature": ("weight",), "feature_act": ("weight", "norm", "lam"),
}
"""The setting of each method, in the order of its run name and command line."""
EVAL_BATCH_SIZE = 500
"""Test-set inference runs in batches of at least this size (no graph, membranes not kept)."""


@dataclass(frozen=True)
class StudentRun:
    """One student training: a method with its setting, on a dataset, for a seed."""

    dataset: str
    method: str
    seed: int
    settings: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    @property
    def setting(self) -> dict[str, Any]:
        return dict(self.settings)

    @property
    def name(self) -> str:
        s = self.setting
        if self.method == "baseline":
            return "baseline"
        if self.method == "mse":
            return f"mse-a{format_value(s['alpha'])}"
        if self.method == "soft_targets":
            return f"st-t{format_value(s['tau'])}"
        if self.method == "heterogeneous":
            return f"het-s{format_value(s['tau_s'])}-t{format_value(s['tau_t'])}"
        if self.method == "combined":
            return (f"het-s{format_value(s['tau_s'])}-t{format_value(s['tau_t'])}"
                    f"+act-{s['norm']}-{format_value(s['lam'])}")
        if self.method == "feature":
            return f"feat-w{format_value(s['weight'])}"
        if self.method == "feature_act":
            return f"feat-w{format_value(s['weight'])}+act-{s['norm']}-{format_value(s['lam'])}"
        prefix = "act" if self.method == "activation" else "log"
        return f"{prefix}-{s['norm']}-{format_value(s['lam'])}"

    def folder(self, kind: str = "student") -> Path:
        return RUNS / kind / self.dataset / self.name / f"seed{self.seed}"

    @property
    def uses_teacher(self) -> bool:
        return self.method in KD_METHODS or self.method in HINT_METHODS

    @property
    def uses_hints(self) -> bool:
        return self.method in HINT_METHODS


def student_runs(params: Params, dataset: str) -> list[StudentRun]:
    """Every student of the grids in params.yaml for ``dataset``, the baselines first."""
    study = params.distillation
    grids = study.grids
    runs: list[StudentRun] = []
    for seed in study.seeds:
        runs.append(StudentRun(dataset, "baseline", seed))
        runs += [StudentRun(dataset, "mse", seed, (("alpha", a),)) for a in grids.mse.alphas]
        runs += [StudentRun(dataset, "soft_targets", seed, (("tau", t),)) for t in grids.soft_targets.taus]
        runs += [
            StudentRun(dataset, "heterogeneous", seed, (("tau_s", s), ("tau_t", t)))
            for s in grids.heterogeneous.tau_s
            for t in grids.heterogeneous.tau_t
        ]
        runs += [
            StudentRun(dataset, "activation", seed, (("norm", n), ("lam", lam)))
            for n in ("l1", "l2")
            for lam in getattr(grids.activation, n)
        ]
        runs += [
            StudentRun(dataset, "logits", seed, (("norm", n), ("lam", lam)))
            for n in ("l2", "l2sq")
            for lam in getattr(grids.logits, n)
        ]
        c = grids.combined
        runs += [
            StudentRun(dataset, "combined", seed, (("tau_s", s), ("tau_t", t), ("norm", n), ("lam", lam)))
            for s in c.tau_s
            for t in c.tau_t
            for n in c.norms
            for lam in c.lambdas
        ]
        runs += [StudentRun(dataset, "feature", seed, (("weight", w),)) for w in grids.feature.weights]
        f = grids.feature_act
        runs += [
            StudentRun(dataset, "feature_act", seed, (("weight", w), ("norm", n), ("lam", lam)))
            for w in f.weights
            for n in f.norms
            for lam in f.lambdas
        ]
    return runs


# ------------------------------------------------------------------ training


def setup_for(params: Params, dataset: str) -> StudentSetup:
    return params.distillation.setups[dataset]


def _splits(params: Params, dataset: str, device) -> tuple[Any, SplitTensors, SplitTensors]:
    prepared = load_prepared(Path(params.data.prepared_dir) / dataset)
    train_data = load_split(prepared, "train", params.data, device, train=True)
    val_data = load_split(prepared, "val", params.data, device)
    return prepared, train_data, val_data


def teacher_folder(dataset: str) -> Path:
    return RUNS / "teacher" / dataset


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


def train_teacher(params: Params, dataset: str, on_epoch=None, progress: bool = False) -> dict[str, Any]:
    """Train the FNN teacher of ``dataset`` (Table I) with cross-entropy; write ``model.pt`` and
    ``train.json`` (parameter count, validation and test accuracy)."""
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
                 fingerprint=fingerprint(setup.teacher, setup.teacher_width, cfg.model_dump(), prepared.meta["sha256"],
                                         params.data.mfcc.model_dump(), params.data.augment.model_dump()),
                 on_epoch=on_epoch, progress=progress, description=f"teacher {setup.teacher}")
    test_data = load_split(prepared, "test", params.data, device)
    logits, labels = _predict(model, test_data, cfg.batch_size, setup.precision)
    folder = teacher_folder(dataset)
    save_model(folder / "model.pt", model, architecture=setup.teacher, width=setup.teacher_width,
               input_shape=list(train_data.sample_shape), num_classes=prepared.num_classes)
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


def make_student_loss(run: StudentRun, alpha: float, teacher: nn.Module | None = None,
                      precision: str = "float32", hints: HintProjections | None = None):
    """The training loss of ``run``: cross-entropy, plus KD (Eq. 1 with Eq. 2, 4 or 5), the hint
    term, and/or ``lambda`` times the spike or logits regularizer (Eqs. 9-10).

    MSE KD uses its grid's ``alpha``; soft-target and heterogeneous KD use ``distillation.alpha``.
    Feature-based KD (FitNets hints, :func:`lowspike.hints.hint_loss`) adds ``w L_hint`` to the
    cross-entropy, with the teacher's maps (:meth:`forward_with_features`) and the projections
    ``hints``: ``feature`` is ``CE + w L_hint``, ``feature_act`` is ``CE + w L_hint + lambda Omega``
    with ``Omega`` the activation regularizer (Eq. 9 with the l1 or l2 norm, Eq. 10).
    Every step reports the batch spikerate (Eq. 12) so training curves show activity.
    """
    setting = run.setting
    if run.uses_teacher and teacher is None:
        raise ValueError(f"{run.name} needs a teacher")
    if run.uses_hints and hints is None:
        raise ValueError(f"{run.name} needs its hint projections")

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        out = model(x)
        ce = F.cross_entropy(out.logits, y)
        loss = ce
        extras = {"ce": float(ce.detach())}
        if run.method in KD_METHODS:
            with torch.no_grad():
                with autocast(precision, x.device):
                    teacher_logits = teacher(x).float()
            if run.method == "mse":
                kd = kd_loss("mse", out.logits, teacher_logits)
                loss = total_loss(ce, kd, setting["alpha"])
            elif run.method == "soft_targets":
                kd = kd_loss("soft_targets", out.logits, teacher_logits, tau=setting["tau"])
                loss = total_loss(ce, kd, alpha)
            else:
                kd = kd_loss("heterogeneous", out.logits, teacher_logits,
                             tau_s=setting["tau_s"], tau_t=setting["tau_t"])
                loss = total_loss(ce, kd, alpha)
            extras["kd"] = float(kd.detach())
        if run.uses_hints:
            with torch.no_grad():
                with autocast(precision, x.device):
                    _, features = teacher.forward_with_features(x)
            hint = hints(out.spikes, features)
            loss = loss + setting["weight"] * hint
            extras["hint"] = float(hint.detach())
        if run.method in ACTIVATION_METHODS:
            penalty = spike_activity_penalty(out.spikes, setting["norm"])
            loss = loss + setting["lam"] * penalty
            extras["penalty"] = float(penalty.detach())
        elif run.method == "logits":
            penalty = logits_penalty(out.readout, setting["norm"])
            loss = loss + setting["lam"] * penalty
            extras["penalty"] = float(penalty.detach())
        with torch.no_grad():
            spikes = sum(float(s.sum()) for s in out.spikes)
            extras["spikerate"] = spikerate(spikes / x.shape[0], sum(model.neuron_counts()))
        return StepOutput(loss, out.logits, extras)

    return loss_fn


def _run_fingerprint(params: Params, run: StudentRun, prepared_sha: dict) -> str:
    setup = setup_for(params, run.dataset)
    hints = (HINT_LAYERS[(setup.student, setup.teacher)],) if run.uses_hints else ()
    return fingerprint(run.name, run.seed, setup.model_dump(), params.distillation.alpha,
                       params.distillation.surrogate, prepared_sha, params.data.mfcc.model_dump(),
                       params.data.augment.model_dump(), *hints)


def train_student(params: Params, run: StudentRun, on_epoch=None, progress: bool = False) -> dict[str, Any]:
    """Train the student of ``run``; write ``model.pt`` and ``train.json`` in its folder."""
    setup = setup_for(params, run.dataset)
    cfg = setup.student_train.model_copy(update={"seed": run.seed})
    device = pick_device()
    seed_everything(run.seed)
    prepared, train_data, val_data = _splits(params, run.dataset, device)
    model = make_student(params, run.dataset, train_data.sample_shape, prepared.num_classes).to(device)
    teacher = load_teacher(run.dataset, device) if run.uses_teacher else None
    hints, trained = None, model
    if run.uses_hints:
        hints = build_hint_projections(setup.student, setup.teacher, model, teacher, train_data.sample_shape)
        hints = hints.to(device)
        trained = HintedStudent(model, hints)
    run_id = f"student/{run.dataset}/{run.name}/seed{run.seed}"
    loss_fn = make_student_loss(run, params.distillation.alpha, teacher, setup.precision, hints)
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


@torch.inference_mode()
def measure_student(model: nn.Module, data: SplitTensors, batch_size: int) -> dict[str, Any]:
    """Accuracy, spikes per inference (all layers and per layer) and spikerate (Eq. 12, in
    [0, T]) over ``data``. A silent network gives 0 spikes and spikerate 0.

    ``spikerate_per_timestep`` is Eq. 12 divided by T: the paper's Table II values (SCNN 41,201
    spikes at "0.22" with 18,560 neurons and T = 10) match this reading, not Eq. 12 as written.

    ``layers``: the per-layer activity records (:class:`~lowspike.metrics.StudentActivityMeter`,
    fed by the same forward passes: no second pass), when the model declares ``projections()``
    (every student of :data:`lowspike.models.STUDENTS` does)."""
    from ..metrics import StudentActivityMeter

    model.eval()
    names = list(model.spiking_layer_names)
    neurons = list(model.neuron_counts())
    meter = StudentActivityMeter(model) if hasattr(model, "projections") else None
    layer_spikes = torch.zeros(len(names), dtype=torch.float64)
    correct, total = 0, 0
    for x, y in data.batches(batch_size):
        out = model(x)
        layer_spikes += torch.stack([s.sum().double() for s in out.spikes]).cpu()
        if meter is not None:
            meter.add(x, out)
        correct += int((out.logits.argmax(dim=1) == y).sum())
        total += int(y.shape[0])
    per_sample = (layer_spikes / max(total, 1)).tolist()
    total_spikes = float(sum(per_sample))
    metrics = {
        "accuracy": correct / max(total, 1),
        "samples": total,
        "total_spikes": total_spikes,
        "spikerate": spikerate(total_spikes, sum(neurons)),
        "spikerate_per_timestep": spikerate(total_spikes, sum(neurons)) / int(model.timesteps),
        "spikes_per_layer": dict(zip(names, per_sample)),
        "neurons_per_layer": dict(zip(names, neurons)),
        "spikerate_per_layer": {n: spikerate(s, k) for n, s, k in zip(names, per_sample, neurons)},
        "timesteps": int(model.timesteps),
    }
    if meter is not None and total:
        metrics["layers"] = meter.records()
    return metrics


NEUROBENCH_BATCH_SIZE = 64
"""Samples per NeuroBench call (a student run one timestep per call, through snntorch)."""


def neurobench_subset(model: nn.Module, data: SplitTensors, samples: int) -> dict[str, Any] | None:
    """:func:`lowspike.neurobench_metrics.neurobench_report` of a student on the first
    ``samples`` test samples (``distillation.neurobench_samples``; the whole split when it has
    fewer), or None when ``samples`` is 0."""
    if samples == 0:
        return None
    from ..neurobench_metrics import neurobench_report

    inputs, labels = next(data.batches(samples))
    return neurobench_report(model, inputs, labels, batch_size=min(NEUROBENCH_BATCH_SIZE, samples))


def student_energy(layers: list[dict[str, Any]], cfg: EnergyConfig) -> dict[str, Any]:
    """``energy`` (:func:`lowspike.energy.evaluate_energy`'s summary: per model the SNN's joules
    per inference, total and per layer, those of its non-spiking counterpart with the same
    layers and ReLU, ``dnn_dense``, their ratio and the break-even spikerate) and
    ``energy_breakdown`` (every term per layer) of a student's activity records."""
    from ..energy import evaluate_energy, network_activity

    energy = evaluate_energy(network_activity(layers), cfg)
    return {"energy": energy["summary"], "energy_breakdown": energy["breakdown"]}


def evaluate_student(params: Params, run: StudentRun, device=None) -> dict[str, Any]:
    """Test-split metrics of the trained student of ``run``, written to its ``evaluate.json``:
    :func:`measure_student` (with the per-layer ``layers``), :func:`student_energy` and
    ``neurobench`` (:func:`neurobench_subset`); a diverged student (its weights are no trained
    model) gets neither energy nor NeuroBench."""
    device = device or pick_device()
    trained = read_json(run.folder() / "train.json")
    payload = load_model_payload(run.folder() / "model.pt")
    model = make_student(params, run.dataset, tuple(payload["input_shape"]), payload["num_classes"])
    model.load_state_dict(payload["state_dict"])
    model.to(device)
    prepared = load_prepared(Path(params.data.prepared_dir) / run.dataset)
    test_data = load_split(prepared, "test", params.data, device)
    batch_size = max(setup_for(params, run.dataset).student_train.batch_size, EVAL_BATCH_SIZE)
    metrics = measure_student(model, test_data, batch_size)
    record = {
        "dataset": run.dataset, "run": run.name, "method": run.method, "setting": run.setting, "seed": run.seed,
        "model": trained["model"], "parameters": count_parameters(model), "status": trained["status"],
        "epochs_run": trained["epochs_run"], "num_classes": prepared.num_classes, **metrics,
    }
    if trained["status"] != "diverged":
        record.update(student_energy(metrics["layers"], params.energy))
        report = neurobench_subset(model, test_data, params.distillation.neurobench_samples)
        if report is not None:
            record["neurobench"] = report
    write_json(run.folder("student_eval") / "evaluate.json", record)
    return record


TEACHER_EVAL = "teacher"
"""``runs/student_eval/<dataset>/teacher/evaluate.json``: the teacher's evaluation, beside the
students' (no student run has this name)."""


def teacher_eval_path(dataset: str, eval_root: Path = RUNS / "student_eval") -> Path:
    return eval_root / dataset / TEACHER_EVAL / "evaluate.json"


def evaluate_teacher(params: Params, dataset: str, device=None) -> dict[str, Any]:
    """Per-layer records (:func:`lowspike.metrics.teacher_layer_activity`: dense and effective
    MACs per convolution and linear layer, batch norm folded, the residual additions) of the FNN
    teacher of ``dataset`` on the test split, and its energy per inference under every model
    (:func:`lowspike.energy.evaluate_dnn_energy`: ``dnn_dense`` and, for ``ops``,
    ``dnn_effective``), written to :func:`teacher_eval_path` with its accuracy from ``train.json``.

    Evaluated here, in the ``evaluate_students`` stage, rather than in the aggregate: the stage
    already loads the test split on the device, and the aggregate stays a cheap join of JSON
    files. The teacher runs in float32 (its zero pattern, not its precision, is what is counted).
    """
    from ..energy import evaluate_dnn_energy, network_activity
    from ..metrics import teacher_layer_activity

    device = device or pick_device()
    trained = read_json(teacher_folder(dataset) / "train.json")
    model = load_teacher(dataset, device)
    prepared = load_prepared(Path(params.data.prepared_dir) / dataset)
    test_data = load_split(prepared, "test", params.data, device)
    batch_size = max(setup_for(params, dataset).teacher_train.batch_size, EVAL_BATCH_SIZE)
    layers = teacher_layer_activity(model, test_data.materialize(), batch_size)
    energy = evaluate_dnn_energy(network_activity(layers), params.energy)
    record = {
        "dataset": dataset, "model": trained["model"], "width": trained["width"],
        "parameters": trained["parameters"], "status": trained["status"], "accuracy": trained["accuracy"],
        "samples": len(test_data), "layers": layers, "energy": energy["summary"],
        "energy_breakdown": energy["breakdown"],
    }
    write_json(teacher_eval_path(dataset), record)
    return record


@dataclass
class DatasetEvaluation:
    """What :func:`evaluate_dataset` wrote: the teacher's record (None without a trained
    teacher) and every student's."""

    teacher: dict[str, Any] | None
    students: list[dict[str, Any]]


def evaluate_dataset(params: Params, dataset: str, progress: bool = False) -> DatasetEvaluation:
    """Evaluate the teacher of ``dataset`` when it is trained (``model.pt`` exists: always in the
    pipeline, whose ``evaluate_students`` stage depends on it) and every student of its grid."""
    from tqdm.auto import tqdm

    teacher = (evaluate_teacher(params, dataset) if (teacher_folder(dataset) / "model.pt").exists() else None)
    runs = student_runs(params, dataset)
    students = [evaluate_student(params, run) for run in tqdm(runs, desc=f"evaluate {dataset}", disable=not progress)]
    return DatasetEvaluation(teacher, students)


def evaluation_metrics(evaluation: DatasetEvaluation) -> dict[str, Any]:
    """The MLflow metrics of an ``evaluate_students`` run (nested; the tracker flattens them with
    dots): per student ``<run>.seed<s>`` its ``accuracy``, ``spikerate``, ``total_spikes``, its
    :func:`energy_columns` and ``neurobench`` (NeuroBench's own results); ``teacher`` its
    :func:`energy_columns`."""
    metrics: dict[str, Any] = {}
    if evaluation.teacher is not None:
        metrics["teacher"] = energy_columns(evaluation.teacher)
    for record in evaluation.students:
        figures = {k: record[k] for k in ("accuracy", "spikerate", "total_spikes")}
        figures.update(energy_columns(record))
        if record.get("neurobench"):
            figures["neurobench"] = record["neurobench"]["neurobench"]
        metrics[f"{record['run']}.seed{record['seed']}"] = figures
    return metrics


def run_from_args(dataset: str, method: str, seed: int, **setting: Any) -> StudentRun:
    """The :class:`StudentRun` a ``train_student_*`` stage names on its command line."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {METHODS}")
    order = SETTING_KEYS[method]
    missing = [k for k in order if setting.get(k) is None]
    if missing:
        raise ParamsError(f"--method {method}: needs {', '.join('--' + k.replace('_', '-') for k in missing)}")
    return StudentRun(dataset, method, seed, tuple((k, setting[k]) for k in order))


def check_run(params: Params, run: StudentRun) -> None:
    """Refuse a run that is not in the params grids (a stale matrix entry) before any work."""
    if run.dataset not in params.distillation.datasets:
        raise ParamsError(f"--dataset {run.dataset!r}: not in distillation.datasets {params.distillation.datasets}")
    if run not in student_runs(params, run.dataset):
        raise ParamsError(f"{run.name} seed {run.seed}: not in the distillation grids of params.yaml")


def relative_delta(value: float | None, baseline: float | None) -> float | None:
    """Eqs. 11 and 13 of the distillation paper: ``(value - baseline) / baseline``.

    None when the baseline is 0 or missing (a silent baseline has no relative delta).
    """
    if value is None or baseline is None or baseline == 0:
        return None
    return (value - baseline) / baseline


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


UNTRACKED_RECORD_KEYS = ("layers", "energy_breakdown")
"""The bulky parts of an ``evaluate.json`` record, kept out of results.json rows and MLflow."""
TEACHER_REFERENCES = ("dnn_dense", "dnn_effective")


def energy_columns(record: dict) -> dict[str, float]:
    """Flat energy figures of an ``evaluate.json`` record, student's or teacher's (none without
    ``energy``): per model ``m`` of ``energy.models``, ``energy_<m>_<figure>`` for every figure of
    ``record["energy"][m]`` that is a number: ``snn_j``, ``snn_silent_j``, ``dnn_dense_j``,
    ``dnn_effective_j``, ``snn_over_dnn_dense``, ``break_even_spikerate_dense``, ... (the names of
    :func:`lowspike.energy.evaluate_energy`; a network a model does not give is left out)."""
    columns: dict[str, float] = {}
    for model, figures in (record.get("energy") or {}).items():
        if not isinstance(figures, dict):
            continue
        for figure, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                columns[f"energy_{model}_{figure}"] = value
    return columns


def energy_models(record: dict) -> list[str]:
    return [m for m, figures in (record.get("energy") or {}).items() if isinstance(figures, dict)]


def slim_record(record: dict) -> dict:
    """An ``evaluate.json`` record for results.json: without the per-layer activity
    (``layers``), its energy breakdown reduced to each network's term totals in joules
    (``energy_terms``: ``{model: {net: {term: J}}}``), its flat :func:`energy_columns` added."""
    slim = {k: v for k, v in record.items() if k not in UNTRACKED_RECORD_KEYS}
    if "energy_breakdown" in record:
        slim["energy_terms"] = {model: {net: parts["terms_j"] for net, parts in nets.items()}
                                for model, nets in record["energy_breakdown"].items()}
    slim.update(energy_columns(record))
    return slim


def student_energy_deltas(row: dict, baseline: dict | None, teacher: dict | None) -> dict[str, float | None]:
    """Energy figures of a student row against its same-seed baseline and its teacher, per
    model ``m`` (rows and teacher with :func:`energy_columns`):

    - ``delta_energy_<m>_snn``: ``(E - E_base) / E_base`` of the SNN's energy per inference
      (Eq. 13 of the distillation paper applied to energy; None without a baseline energy);
    - ``energy_<m>_snn_over_teacher_<dense|effective>``: ``E / E_teacher`` with the teacher's
      dense or zero-skipping energy (:func:`lowspike.energy.evaluate_dnn_energy`);
    - ``energy_<m>_break_even_spikerate_teacher_<dense|effective>``: the spikerate at which the
      student would cost as much as its teacher
      (:func:`lowspike.energy.break_even_from_energies`).
    """
    from ..energy import break_even_from_energies

    figures: dict[str, float | None] = {}
    for model in energy_models(row):
        snn = row.get(f"energy_{model}_snn_j")
        figures[f"delta_energy_{model}_snn"] = relative_delta(snn, (baseline or {}).get(f"energy_{model}_snn_j"))
        for reference in TEACHER_REFERENCES:
            teacher_j = (teacher or {}).get(f"energy_{model}_{reference}_j")
            if teacher_j is None:
                continue
            suffix = reference.removeprefix("dnn_")
            figures[f"energy_{model}_snn_over_teacher_{suffix}"] = snn / teacher_j if teacher_j else None
            figures[f"energy_{model}_break_even_spikerate_teacher_{suffix}"] = break_even_from_energies(
                row["energy"]["spikerate"], snn, row[f"energy_{model}_snn_silent_j"], teacher_j)
    return figures


def _is_energy_figure(key: str, value: Any) -> bool:
    return (key.startswith(("energy_", "delta_energy_")) and isinstance(value, (int, float))
            and not isinstance(value, bool))


def energy_break_even(dataset: str, baselines: list[dict], teacher: dict | None) -> list[dict]:
    """Per energy model and reference, the break-even spikerate of a student architecture: the
    mean over the finished baseline seeds of :func:`lowspike.energy.break_even_spikerate`
    against the student's own non-spiking counterpart (``dnn_dense``) and of
    :func:`student_energy_deltas`'s against the teacher (``teacher_dense``,
    ``teacher_effective``), beside the baselines' spikerate and energies (``dnn_j``: the
    reference's joules). The keys of the conversion study's ``break_even`` rows, plus
    ``break_even_spikerate_std`` and ``seeds`` (baselines with a defined break-even)."""
    rows: list[dict] = []
    if not baselines:
        return rows
    references = [("dnn_dense", "break_even_spikerate_dense", lambda m, b: b.get(f"energy_{m}_dnn_dense_j"))]
    references += [(f"teacher_{ref.removeprefix('dnn_')}", f"break_even_spikerate_teacher_{ref.removeprefix('dnn_')}",
                    lambda m, b, ref=ref: (teacher or {}).get(f"energy_{m}_{ref}_j")) for ref in TEACHER_REFERENCES]
    for model in energy_models(baselines[0]):
        for reference, figure, reference_j in references:
            if all(reference_j(model, b) is None for b in baselines):
                continue
            rates = [b.get(f"energy_{model}_{figure}") for b in baselines]
            mean, std = _mean_std(rates)
            rows.append({
                "dataset": dataset, "arch": baselines[0].get("model"), "model": model, "reference": reference,
                "break_even_spikerate": mean, "break_even_spikerate_std": std,
                "seeds": sum(1 for r in rates if r is not None),
                "baseline_spikerate": _mean_std([b.get("spikerate") for b in baselines])[0],
                "timesteps": baselines[0].get("timesteps"),
                "baseline_snn_j": _mean_std([b.get(f"energy_{model}_snn_j") for b in baselines])[0],
                "dnn_j": _mean_std([reference_j(model, b) for b in baselines])[0],
            })
    return rows


def _teacher_entry(dataset: str, eval_root: Path, teacher_root: Path) -> dict | None:
    """The teacher's ``train.json`` with its evaluation (:func:`evaluate_teacher`), slimmed."""
    train_file = teacher_root / dataset / "train.json"
    if not train_file.exists():
        return None
    entry = read_json(train_file)
    eval_file = teacher_eval_path(dataset, eval_root)
    if eval_file.exists():
        evaluation = slim_record(read_json(eval_file))
        entry.update({k: v for k, v in evaluation.items()
                      if k in ("samples", "energy", "energy_terms") or k.startswith("energy_")})
    return entry


def aggregate(params: Params, eval_root: Path = RUNS / "student_eval", teacher_root: Path = RUNS / "teacher"
              ) -> dict[str, Any]:
    """Every evaluated student of the current grids with its deltas, and per-configuration
    mean and standard deviation over the seeds that did not diverge.

    Energy: each row is :func:`slim_record` with :func:`student_energy_deltas`; each
    configuration has ``<key>_mean`` and ``<key>_std`` of every numeric ``energy_*`` and
    ``delta_energy_*`` figure; ``teachers`` carry their energies (:func:`_teacher_entry`);
    ``break_even`` lists :func:`energy_break_even` per dataset."""
    rows: list[dict] = []
    teachers: list[dict] = []
    break_even: list[dict] = []
    for dataset in params.distillation.datasets:
        teacher = _teacher_entry(dataset, eval_root, teacher_root)
        if teacher is not None:
            teachers.append(teacher)
        baselines: dict[int, dict] = {}
        found: list[dict] = []
        for run in student_runs(params, dataset):
            path = eval_root / dataset / run.name / f"seed{run.seed}" / "evaluate.json"
            if not path.exists():
                continue
            row = slim_record(read_json(path))
            found.append(row)
            if run.method == "baseline":
                baselines[run.seed] = row
        for row in found:
            base = baselines.get(row["seed"])
            row["delta_accuracy"] = relative_delta(row.get("accuracy"), base and base.get("accuracy"))
            row["delta_spikerate"] = relative_delta(row.get("spikerate"), base and base.get("spikerate"))
            row["delta_spikerate_per_layer"] = {
                layer: relative_delta(rate, (base or {}).get("spikerate_per_layer", {}).get(layer))
                for layer, rate in row.get("spikerate_per_layer", {}).items()
            }
            row.update(student_energy_deltas(row, base, teacher))
        rows.extend(found)
        finished_baselines = [b for _, b in sorted(baselines.items()) if b.get("status") != "diverged"]
        break_even.extend(energy_break_even(dataset, finished_baselines, teacher))

    configurations: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        configurations.setdefault((row["dataset"], row["run"]), []).append(row)
    summary = []
    for (dataset, run_name), group in configurations.items():
        entry = {"dataset": dataset, "run": run_name, "method": group[0]["method"],
                 "setting": group[0].get("setting", {}), "seeds": len(group),
                 "diverged": sum(1 for r in group if r.get("status") == "diverged")}
        entry["parameters"] = group[0].get("parameters")
        entry["num_classes"] = group[0].get("num_classes")
        finished = [r for r in group if r.get("status") != "diverged"]
        energy_keys = dict.fromkeys(k for r in finished for k, v in r.items() if _is_energy_figure(k, v))
        for key in ("accuracy", "total_spikes", "spikerate", "spikerate_per_timestep", "delta_accuracy",
                    "delta_spikerate", *energy_keys):
            entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std([r.get(key) for r in finished])
        layers = group[0].get("spikerate_per_layer", {})
        entry["delta_spikerate_per_layer_mean"] = {
            layer: _mean_std([r["delta_spikerate_per_layer"].get(layer) for r in finished])[0] for layer in layers
        }
        summary.append(entry)
    return {"rows": rows, "configurations": summary, "teachers": teachers, "break_even": break_even}


BEST_MAX_ACCURACY_LOSS = 0.01
"""Table III keeps configurations whose mean relative accuracy delta is at least -1%."""


FAMILIES = {"KD": ("mse", "soft_targets", "heterogeneous"), "LogReg": ("logits",), "ActReg": ("activation",),
            "KD+ActReg": ("combined",), "Feature": ("feature",), "Feature+ActReg": ("feature_act",)}
"""Table III's families; the last three are beyond the paper (its Sec. VI, future work)."""
BEYOND_PAPER_FAMILIES = ("KD+ActReg", "Feature", "Feature+ActReg")


def best_per_method(configurations: list[dict], dataset: str,
                    max_accuracy_loss: float = BEST_MAX_ACCURACY_LOSS) -> dict[str, dict]:
    """Table III: per family (:data:`FAMILIES`) the configuration with the lowest spikerate delta
    that lowers the spikerate (delta < 0) with a relative accuracy delta of at least
    ``-max_accuracy_loss``. A configuration at chance accuracy (collapsed or silent) is never
    best, and nothing is when the baseline itself is at chance (every "gain" would be noise). The
    selected configurations carry every figure of :func:`aggregate`'s configurations, energies
    and their deltas included."""
    from .findings import at_chance

    base = next((c for c in configurations if c["dataset"] == dataset and c["method"] == "baseline"), None)
    if base is None or at_chance(base.get("accuracy_mean"), base.get("num_classes"), base.get("total_spikes_mean")):
        return {}
    best: dict[str, dict] = {}
    for family, methods in FAMILIES.items():
        candidates = [
            c for c in configurations
            if c["dataset"] == dataset and c["method"] in methods
            and c.get("delta_accuracy_mean") is not None and c["delta_accuracy_mean"] >= -max_accuracy_loss
            and c.get("delta_spikerate_mean") is not None and c["delta_spikerate_mean"] < 0
            and not at_chance(c.get("accuracy_mean"), c.get("num_classes"), c.get("total_spikes_mean"))
        ]
        if candidates:
            best[family] = min(candidates, key=lambda c: c["delta_spikerate_mean"])
    return best


SUMMARY_ENERGY_FIGURES = ("snn_j", "dnn_dense_j", "snn_over_dnn_dense", "break_even_spikerate_dense",
                          "snn_over_teacher_dense", "snn_over_teacher_effective")
"""Per model, the energy figures of baselines and selected configurations in summary.json."""


def summary_energy(config: dict, models: list[str], figures: tuple[str, ...]) -> dict[str, float]:
    """``energy_<m>_<figure>`` (and ``delta_energy_<m>_snn``) means of a configuration that are numbers."""
    wanted = [f"energy_{m}_{figure}" for m in models for figure in figures]
    wanted += [f"delta_energy_{m}_snn" for m in models]
    return {key: config[f"{key}_mean"] for key in wanted if _is_energy_figure(key, config.get(f"{key}_mean"))}


def metric_rows(result: dict, models: list[str]) -> dict[str, dict[str, Any]]:
    """What ``dvc metrics show`` lists for the distillation study, one file per row with the same
    few columns: per dataset the teacher and the baseline (absolute values; energies in uJ per
    inference), the best configuration of each Table III family (relative deltas in %, Eqs.
    11, 13), and the mark of each finding."""
    def pct(value):
        return None if value is None else 100.0 * value

    def uj(value):
        return None if value is None else value * 1.0e6

    rows: dict[str, dict[str, Any]] = {}
    for teacher in result["teachers"]:
        rows[f"{teacher['dataset']}-teacher"] = {
            "run": teacher.get("model"), "accuracy": teacher.get("accuracy"),
            **{f"{m}_uj": uj(teacher.get(f"energy_{m}_dnn_dense_j")) for m in models}}
    for config in result["configurations"]:
        if config["method"] == "baseline":
            rows[f"{config['dataset']}-baseline"] = {
                "run": "baseline", "accuracy": config.get("accuracy_mean"), "spikerate": config.get("spikerate_mean"),
                "total_spikes": config.get("total_spikes_mean"),
                **{f"{m}_uj": uj(config.get(f"energy_{m}_snn_j_mean")) for m in models},
                **{f"{m}_over_teacher": config.get(f"energy_{m}_snn_over_teacher_dense_mean") for m in models}}
    for dataset, families in result["best"].items():
        for family, config in families.items():
            rows[f"{dataset}-best-{family.replace('+', '_')}"] = {
                "run": config["run"], "delta_accuracy_pct": pct(config.get("delta_accuracy_mean")),
                "delta_spikerate_pct": pct(config.get("delta_spikerate_mean")),
                **{f"{m}_uj": uj(config.get(f"energy_{m}_snn_j_mean")) for m in models},
                **{f"{m}_over_teacher": config.get(f"energy_{m}_snn_over_teacher_dense_mean") for m in models},
                **{f"delta_{m}_pct": pct(config.get(f"delta_energy_{m}_snn_mean")) for m in models}}
    for finding in result.get("findings", []):
        rows[f"finding-{finding['key']}"] = {"finding": finding["mark"]}
    return rows


def write_aggregate(params: Params, out_dir: str | Path) -> str:
    """Write results.json (rows, configurations, teachers, Table III selections, break-even
    spikerates, findings), results.csv and the DVC metrics directory ``metrics/``
    (:func:`metric_rows`)."""
    from ..artifacts import write_csv
    from .conversion import write_metrics
    from .findings import distillation_findings

    out_dir = Path(out_dir)
    result = aggregate(params)
    result["best"] = {dataset: best_per_method(result["configurations"], dataset, BEST_MAX_ACCURACY_LOSS)
                      for dataset in params.distillation.datasets}
    result["best_max_accuracy_loss"] = BEST_MAX_ACCURACY_LOSS
    num_classes = {c["dataset"]: c.get("num_classes") for c in result["configurations"] if c["method"] == "baseline"}
    result["findings"] = [f.to_dict() for f in distillation_findings(result, params.distillation.datasets, num_classes)]
    write_json(out_dir / "results.json", result)
    models = list(params.energy.models)
    columns = ["dataset", "run", "method", "seed", "status", "accuracy", "total_spikes", "spikerate",
               "delta_accuracy", "delta_spikerate"]
    for model in models:
        columns += [f"energy_{model}_snn_j", f"energy_{model}_dnn_dense_j", f"delta_energy_{model}_snn",
                    f"energy_{model}_snn_over_dnn_dense", f"energy_{model}_snn_over_teacher_dense",
                    f"energy_{model}_break_even_spikerate_dense"]
    write_csv(out_dir / "results.csv", result["rows"], columns)
    write_metrics(out_dir / "metrics", metric_rows(result, models))
    return f"{len(result['rows'])} students, {len(result['teachers'])} teachers"
