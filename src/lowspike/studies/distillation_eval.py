"""Evaluating the distillation study on the test split: every student's accuracy, spikes,
spikerate (Eq. 12 of the distillation paper), per-layer activity, energy per inference and
NeuroBench's metrics; the teacher's per-layer MACs and energy.

Artifacts: ``runs/student_eval/<dataset>/<run>/seed<seed>/evaluate.json`` per student and
``runs/student_eval/<dataset>/teacher/evaluate.json`` for the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..artifacts import read_json, write_json
from ..checkpoints import load_model_payload
from ..config import EnergyConfig, Params
from ..data.loading import SplitTensors, load_split
from ..data.prepared import load_prepared
from ..distillation import StudentRun, student_runs
from ..energy import evaluate_dnn_energy, evaluate_energy, network_activity
from ..metrics import StudentActivityMeter, per_sample_counts, spikerate, teacher_layer_activity
from ..models import count_parameters
from ..training import pick_device
from .distillation_results import student_energy_columns, teacher_eval_path
from .distillation_train import load_teacher, make_student, setup_for, teacher_folder

EVAL_BATCH_SIZE = 500
"""Test-set inference runs in batches of at least this size (no graph, membranes not kept)."""
NEUROBENCH_BATCH_SIZE = 64
"""Samples per NeuroBench call (a student run one timestep per call, through snntorch)."""


FLOAT32_EXACT_COUNT = 2 ** 24
"""float32 holds every integer up to 2^24: sums of 0/1 spikes below it are exact in any order."""


def spike_counts(spikes: torch.Tensor) -> torch.Tensor:
    """Each sample's spike count (float64 ``[B]``) of a 0/1 tensor ``[T, B, ...]``: summed in
    float32 when a sample's T x neurons stays below :data:`FLOAT32_EXACT_COUNT` (exact, and
    without the float64 copy of the whole tensor), else in float64."""
    dims = tuple(d for d in range(spikes.dim()) if d != 1)
    if spikes.numel() // max(spikes.shape[1], 1) < FLOAT32_EXACT_COUNT:
        return spikes.float().sum(dim=dims).double()
    return spikes.double().sum(dim=dims)


@torch.inference_mode()
def measure_student(model: nn.Module, data: SplitTensors, batch_size: int) -> dict[str, Any]:
    """Accuracy, spikes per inference (all layers and per layer) and spikerate (Eq. 12, in
    [0, T]) over ``data``. A silent network gives 0 spikes and spikerate 0.

    ``spikerate_per_timestep`` is Eq. 12 divided by T: the paper's Table II values (SCNN 41,201
    spikes at "0.22" with 18,560 neurons and T = 10) match this reading, not Eq. 12 as written.

    ``layers``: the per-layer activity records (:class:`~lowspike.metrics.StudentActivityMeter`,
    fed by the same forward passes: no second pass), when the model declares ``projections()``
    (every student of :data:`lowspike.models.MODELS` does); ``per_sample``, each sample's
    correctness and spikes (integer counts), for the bootstrap (:mod:`lowspike.stats`)."""
    model.eval()
    names = list(model.spiking_layer_names)
    neurons = list(model.neuron_counts())
    meter = StudentActivityMeter(model) if hasattr(model, "projections") else None
    layer_spikes = torch.zeros(len(names), dtype=torch.float64)
    correct, total, sample_correct, sample_spikes = 0, 0, [], []
    for x, y in data.batches(batch_size):
        out = model(x)
        per_layer = torch.stack([spike_counts(s) for s in out.spikes])
        layer_spikes += per_layer.sum(dim=1).cpu()
        sample_spikes.append(per_layer.sum(dim=0).cpu())
        if meter is not None:
            meter.add(x, out)
        right = out.logits.argmax(dim=1) == y
        sample_correct.append(right.cpu())
        correct += int(right.sum())
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
        "per_sample": {"correct": per_sample_counts(torch.cat(sample_correct)) if total else [],
                       "spikes": per_sample_counts(torch.cat(sample_spikes)) if total else []},
    }
    if meter is not None and total:
        metrics["layers"] = meter.records()
    return metrics


def neurobench_subset(model: nn.Module, data: SplitTensors, samples: int) -> dict[str, Any] | None:
    """:func:`lowspike.neurobench_metrics.neurobench_report` of a student on the first
    ``samples`` test samples (``distillation.neurobench_samples``; the whole split when it has
    fewer), or None when ``samples`` is 0. (NeuroBench is imported here, only when asked for:
    with its dependencies it adds seconds to a process's start.)"""
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


def evaluate_teacher(params: Params, dataset: str, device=None) -> dict[str, Any]:
    """Per-layer records (:func:`lowspike.metrics.teacher_layer_activity`: dense and effective
    MACs per convolution and linear layer, batch norm folded, the residual additions) of the FNN
    teacher of ``dataset`` on the test split, and its energy per inference under every model
    (:func:`lowspike.energy.evaluate_dnn_energy`: ``dnn_dense`` and, for ``ops``,
    ``dnn_effective``), written to :func:`~.distillation_results.teacher_eval_path` with its
    accuracy from ``train.json``.

    Evaluated here, in the ``evaluate_students`` stage, rather than in the aggregate: the stage
    already loads the test split on the device, and the aggregate stays a cheap join of JSON
    files. The teacher runs in float32 (its zero pattern, not its precision, is what is counted).
    """
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
    teacher = (evaluate_teacher(params, dataset) if (teacher_folder(dataset) / "model.pt").exists() else None)
    runs = student_runs(params, dataset)
    students = [evaluate_student(params, run) for run in tqdm(runs, desc=f"evaluate {dataset}", disable=not progress)]
    return DatasetEvaluation(teacher, students)


def evaluation_metrics(evaluation: DatasetEvaluation) -> dict[str, Any]:
    """The MLflow metrics of an ``evaluate_students`` run (nested; the tracker flattens them with
    dots): per student ``<run>.seed<s>`` its ``accuracy``, ``spikerate``, ``total_spikes``, its
    :func:`~.distillation_results.student_energy_columns` and ``neurobench`` (NeuroBench's own
    results); ``teacher`` its energy columns."""
    metrics: dict[str, Any] = {}
    if evaluation.teacher is not None:
        metrics["teacher"] = student_energy_columns(evaluation.teacher)
    for record in evaluation.students:
        figures = {k: record[k] for k in ("accuracy", "spikerate", "total_spikes")}
        figures.update(student_energy_columns(record))
        if record.get("neurobench"):
            figures["neurobench"] = record["neurobench"]["neurobench"]
        metrics[f"{record['run']}.seed{record['seed']}"] = figures
    return metrics
