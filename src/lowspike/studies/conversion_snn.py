"""The conversion study after training: convert every trained DNN to an IF SNN, simulate it for
T steps on the test split, and evaluate it (DNN accuracy and EFLOPS beside the SNN's spikes,
SynOps, accuracy and energy). Artifacts: :mod:`.conversion_points`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..artifacts import read_json, write_json
from ..config import Params
from ..data.loading import SplitTensors, load_split
from ..data.prepared import load_prepared
from ..energy import evaluate_energy
from ..metrics import per_sample_counts
from ..penalties import connection_sparsity
from ..snn.activity import converted_snn_activity, eflops_per_sample, spiking_fanouts
from ..snn.convert import convert, load_converted, save_converted
from ..snn.simulation import simulate_batch
from ..training import accuracy, pick_device
from .conversion_points import Point, trained_points
from .conversion_results import UNTRACKED_RECORD_KEYS
from .conversion_train import load_dnn

PointCallback = Callable[[str, dict], None]


def split_inputs(params: Params, dataset: str, split: str, device) -> SplitTensors:
    prepared = load_prepared(Path(params.data.prepared_dir) / dataset)
    return load_split(prepared, split, params.data, device)


def convert_all(params: Params, dataset: str, arch: str, progress: bool = False,
                on_point: PointCallback | None = None) -> str:
    """Convert every trained DNN of the grid; write ``snn.pt`` and ``convert.json`` per point
    (``on_point(point_name, record)`` sees each record, e.g. to log it to MLflow)."""
    cfg = params.conversion
    calibration = split_inputs(params, dataset, cfg.calibration_split, "cpu").materialize()
    if cfg.calibration_samples:
        calibration = calibration[: cfg.calibration_samples]
    converted = 0
    for point, summary in trained_points(params, dataset, arch):
        folder = point.folder("snn")
        record = {"point": point.name, "status": summary["status"], "percentile": cfg.percentile}
        if summary["status"] == "ok":
            snn = convert(load_dnn(point), calibration, percentile=cfg.percentile)
            save_converted(folder / "snn.pt", snn)
            record["lambdas"] = snn["lambdas"]
            converted += 1
        write_json(folder / "convert.json", record)
        if on_point is not None:
            on_point(point.name, record)
    return f"{converted} models converted (percentile {cfg.percentile})"


def simulate_point(params: Params, point: Point, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
    """The ``simulation.json`` record of one converted SNN on ``inputs``.

    Besides accuracy, spikes and SynOps, the record holds what the energy models need:
    ``synops_per_layer`` (SynOps caused by the input's spikes, ``input``, and by each IF
    layer's, ``if<l>``; they add up to ``synops``) and ``input_events`` (non-zero inputs of the
    first layer summed over T: input spikes, or the non-zero pixels x T with analog coding),
    all means per sample; and ``per_sample``, each test sample's correctness after T steps,
    spikes and SynOps (integer counts), for the bootstrap (:mod:`lowspike.stats`)."""
    cfg = params.simulation
    snn = load_converted(point.folder("snn") / "snn.pt")
    fanouts = spiking_fanouts(snn)
    generator = torch.Generator().manual_seed(cfg.seed)
    per_layer, spikes, synops, synops_by_source, input_spikes, correct = None, [], [], [], [], None
    final_correct = []
    for start in range(0, inputs.shape[0], cfg.batch_size):
        out = simulate_batch(snn, inputs[start:start + cfg.batch_size], cfg.timesteps, cfg.input_coding,
                             generator, fanouts)
        per_layer = out.spikes_per_layer if per_layer is None else per_layer + out.spikes_per_layer
        spikes.append(out.spikes_per_sample.cpu())
        synops.append(out.synops_per_sample.cpu())
        synops_by_source.append(out.synops_per_layer.cpu())
        input_spikes.append(out.input_spikes_per_sample.double().cpu())
        right = out.predictions == labels[start:start + cfg.batch_size]
        hits = right.sum(dim=1).cpu()
        correct = hits if correct is None else correct + hits
        final_correct.append(right[-1].cpu())
    n = inputs.shape[0]
    accuracy_per_step = (correct.double() / n).tolist()
    layer_names = [f"if{i + 1}" for i in range(per_layer.shape[1])]
    if cfg.input_coding == "analog":
        input_events = (inputs != 0).flatten(1).sum(dim=1).double().mean().item() * cfg.timesteps
    else:
        input_events = float(torch.cat(input_spikes).mean())
    return {
        "point": point.name, "status": "ok", "timesteps": cfg.timesteps, "input_coding": cfg.input_coding,
        "samples": n,
        "snn_accuracy": accuracy_per_step[-1],
        "accuracy_per_timestep": accuracy_per_step,
        "spikes": float(torch.cat(spikes).double().mean()),
        "synops": float(torch.cat(synops).mean()),
        "synops_per_layer": dict(zip(["input", *layer_names], torch.cat(synops_by_source).mean(dim=0).tolist())),
        "input_events": input_events,
        "spikes_per_layer": dict(zip(layer_names, (per_layer.sum(dim=0).double() / n).tolist())),
        "spikes_per_timestep_per_layer": (per_layer.double() / n).tolist(),
        "per_sample": {"correct": per_sample_counts(torch.cat(final_correct)),
                       "spikes": per_sample_counts(torch.cat(spikes)), "synops": per_sample_counts(torch.cat(synops))},
    }


def simulate_all(params: Params, dataset: str, arch: str, progress: bool = False,
                 on_point: PointCallback | None = None) -> str:
    """Simulate every converted SNN on the test split; write ``simulation.json`` per point
    (:func:`simulate_point`)."""
    test = split_inputs(params, dataset, "test", pick_device())
    inputs, labels = test.materialize(), test.labels
    lines = []
    for point, summary in trained_points(params, dataset, arch):
        folder = point.folder("sim")
        if summary["status"] != "ok":
            write_json(folder / "simulation.json", {"point": point.name, "status": summary["status"]})
            continue
        record = simulate_point(params, point, inputs, labels)
        write_json(folder / "simulation.json", record)
        if on_point is not None:
            on_point(point.name, record)
        lines.append(f"{point.name} {100 * record['snn_accuracy']:.2f}%")
    return f"SNN accuracy at T={params.simulation.timesteps}: " + ", ".join(lines)


def evaluate_all(params: Params, dataset: str, arch: str, progress: bool = False,
                 on_point: PointCallback | None = None) -> str:
    """Join DNN accuracy and EFLOPS with the simulation into ``evaluate.json`` per point.

    Energy (:mod:`lowspike.energy`, params ``energy``): ``activity`` is the per-layer record of
    the converted SNN (:func:`~lowspike.snn.activity.converted_snn_activity`), ``energy`` the
    totals per model of the SNN and of its DNN (dense and zero-skipping), per layer, the SNN/DNN
    ratios and the break-even spikerates, ``energy_breakdown`` every term per layer. The callback
    sees the whole record; :data:`UNTRACKED_RECORD_KEYS` are the bulky parts to keep out of MLflow.
    """
    device = pick_device()
    test = split_inputs(params, dataset, "test", device)
    inputs, labels = test.materialize(), test.labels
    prepared = load_prepared(Path(params.data.prepared_dir) / dataset)
    trained = trained_points(params, dataset, arch)
    for point, summary in trained:
        record = {"dataset": dataset, "arch": arch, "point": point.name, "regularizer": point.regularizer,
                  "lambda": point.lam, "status": summary["status"], "num_classes": prepared.num_classes,
                  "epochs_run": summary["epochs_run"]}
        if summary["status"] == "ok":
            model = load_dnn(point, device)
            with torch.inference_mode():
                logits = torch.cat([model(chunk) for chunk in inputs.split(1000)])
            eflops = eflops_per_sample(model, inputs)
            sim = read_json(point.folder("sim") / "simulation.json")
            per_sample = {"dnn_correct": per_sample_counts(logits.argmax(dim=1) == labels),
                          "eflops": per_sample_counts(eflops["samples"]),
                          **{key: sim["per_sample"][key] for key in ("spikes", "synops")},
                          "snn_correct": sim["per_sample"]["correct"]}
            activity = converted_snn_activity(load_converted(point.folder("snn") / "snn.pt"), sim,
                                              eflops["per_layer"])
            energy = evaluate_energy(activity, params.energy)
            record.update({
                "dnn_accuracy": accuracy(logits, labels),
                "eflops": eflops["total"], "eflops_per_layer": eflops["per_layer"],
                "connection_sparsity": connection_sparsity(model),
                **{k: sim[k] for k in ("snn_accuracy", "spikes", "synops", "spikes_per_layer", "samples",
                                      "accuracy_per_timestep", "timesteps")},
                "energy": energy["summary"], "energy_breakdown": energy["breakdown"],
                "activity": activity.to_dict(), "per_sample": per_sample,
            })
        write_json(point.folder("eval") / "evaluate.json", record)
        if on_point is not None:
            on_point(point.name, record)
    return f"{len(trained)} points evaluated"
