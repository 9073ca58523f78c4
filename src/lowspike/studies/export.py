"""The ``export_*`` stages: each study's baseline and the models its tables select, written as NIR
files and run back in sinabs and snntorch on the first ``deploy.samples`` test samples against
lowspike's own spikes (docs/deploy.md, :mod:`lowspike.deploy`).

- conversion (per dataset and architecture): the baseline and every Table 1 selection
  (``selections`` of ``results/conversion/results.json``), converted IF networks run for
  ``simulation.timesteps`` steps on the analog input;
- distillation (per dataset): the seed-0 baseline student and every Table III choice (``best``
  of ``results/distillation/results.json``), seed 0, for the setup's T.

Artifacts: ``runs/export/conversion/<dataset>/<arch>/`` and
``runs/export/distillation/<dataset>/``, each with one ``<model>.nir`` per model and
``deploy.json``: per model its file, size and the agreement of each library
(:func:`lowspike.deploy.spike_agreement`: spikes per layer, events that differ, per-neuron
totals that differ, same predictions).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from .. import deploy
from ..artifacts import read_json, write_json
from ..checkpoints import load_model_payload
from ..config import Params
from ..distillation import run_from_args
from ..snn.convert import load_converted
from . import DEPLOY_LIBRARIES, DEPLOY_RECORD, EXPORTS
from .conversion_points import BASELINE, Point
from .conversion_snn import split_inputs
from .distillation_train import make_student, setup_for


def conversion_folder(dataset: str, arch: str) -> Path:
    return EXPORTS / "conversion" / dataset / arch


def distillation_folder(dataset: str) -> Path:
    return EXPORTS / "distillation" / dataset


def deploy_inputs(params: Params, dataset: str) -> torch.Tensor | None:
    """The first ``deploy.samples`` model-ready test inputs of ``dataset`` (features computed);
    None when ``deploy.samples`` is 0 (export only)."""
    if not params.deploy.samples:
        return None
    return split_inputs(params, dataset, "test", "cpu").materialize()[: params.deploy.samples]


def _file_entry(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}


def conversion_models(results: dict, dataset: str, arch: str) -> list[tuple[str, str]]:
    """``(point, label)`` of the models to export: the baseline, then each Table 1 selection."""
    models = [(BASELINE, "baseline")]
    for row in results.get("selections", []):
        if row["dataset"] == dataset and row["arch"] == arch and row.get("selected"):
            models.append((row["selected"], f"Table 1: {row['regularizer']}"))
    return models


def export_conversion(params: Params, dataset: str, arch: str,
                      results_file: str | Path = "results/conversion/results.json") -> dict[str, Any]:
    """Write the NIR file of every model of :func:`conversion_models` and its agreement record."""
    folder = conversion_folder(dataset, arch)
    folder.mkdir(parents=True, exist_ok=True)
    timesteps = params.simulation.timesteps
    inputs = deploy_inputs(params, dataset)
    entries = []
    for point, role in conversion_models(read_json(results_file), dataset, arch):
        snn = load_converted(Point.parse(dataset, arch, point).folder("snn") / "snn.pt")
        path = folder / f"{point}.nir"
        deploy.write_nir(path, snn)
        entry = {"model": point, "role": role, **_file_entry(path)}
        if inputs is not None:
            entry.update(deploy.agreement_summary(snn, path, inputs, timesteps))
        entries.append(entry)
    record = {"study": "conversion", "dataset": dataset, "arch": arch, "timesteps": timesteps,
              "samples": params.deploy.samples, "input": "analog, constant over T", "models": entries}
    write_json(folder / DEPLOY_RECORD, record)
    return record


def distillation_models(results: dict, dataset: str) -> list[tuple[str, dict, str]]:
    """``(method, setting, label)`` of the students to export: the baseline, then each Table III
    choice."""
    models = [("baseline", {}, "baseline")]
    for family, best in sorted((results.get("best") or {}).get(dataset, {}).items()):
        if best:
            models.append((best["method"], dict(best["setting"]), f"Table III: {family}"))
    return models


def export_distillation(params: Params, dataset: str,
                        results_file: str | Path = "results/distillation/results.json") -> dict[str, Any]:
    """Write the NIR file of the seed-0 student of every model of :func:`distillation_models` and
    its agreement record."""
    folder = distillation_folder(dataset)
    folder.mkdir(parents=True, exist_ok=True)
    inputs = deploy_inputs(params, dataset)
    entries = []
    for method, setting, role in distillation_models(read_json(results_file), dataset):
        run = run_from_args(dataset, method, 0, **setting)
        payload = load_model_payload(run.folder() / "model.pt")
        model = make_student(params, dataset, tuple(payload["input_shape"]), payload["num_classes"])
        model.load_state_dict(payload["state_dict"])
        model.bfloat16 = False
        model.eval()
        path = folder / f"{run.name}.nir"
        deploy.write_student_nir(path, model, tuple(payload["input_shape"]))
        entry = {"model": run.name, "role": role, **_file_entry(path)}
        if inputs is not None:
            entry.update(deploy.student_agreement(model, path, inputs))
        entries.append(entry)
    setup = setup_for(params, dataset)
    record = {"study": "distillation", "dataset": dataset, "student": setup.student, "neuron": setup.neuron,
              "timesteps": setup.timesteps, "samples": params.deploy.samples, "models": entries}
    write_json(folder / DEPLOY_RECORD, record)
    return record


def metrics(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model, the numbers MLflow gets: the file's size and each library's agreement."""
    figures = {}
    for entry in record["models"]:
        values: dict[str, Any] = {"bytes": entry["bytes"]}
        for library in DEPLOY_LIBRARIES:
            if library in entry:
                values[library] = {key: entry[library][key] for key in
                                   ("spikes", "events_differing", "totals_differing", "same_prediction")}
        figures[entry["model"]] = values
    return figures


def summary(record: dict[str, Any]) -> str:
    """One line: the files written and how far each library is from lowspike's spikes."""
    entries = record["models"]
    line = f"{len(entries)} NIR files ({sum(e['bytes'] for e in entries) / 1e6:.2f} MB)"
    for library in DEPLOY_LIBRARIES:
        runs = [e[library] for e in entries if library in e]
        if runs:
            line += (f"; {library}: {sum(r['events_differing'] for r in runs)} of "
                     f"{sum(r['spikes'] for r in runs)} spike events differ, "
                     f"{sum(r['totals_differing'] for r in runs)} per-neuron totals differ, predictions "
                     f"{100 * min(r['same_prediction'] for r in runs):.1f}%+ equal")
    return line
