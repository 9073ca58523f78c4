"""The conversion study (regularization paper): train, convert, simulate, evaluate, aggregate.

Artifacts (one folder per point ``<point>`` = ``baseline`` or ``<regularizer>-<lambda>``):

- ``runs/dnn/<dataset>/<arch>/<point>/model.pt``  trained DNN (state dict + arch metadata)
- ``runs/dnn/<dataset>/<arch>/<point>/train.json`` status, epochs, validation metrics, history
- ``runs/snn/<dataset>/<arch>/<point>/snn.pt``  converted SNN; ``convert.json`` its lambdas
- ``runs/sim/<dataset>/<arch>/<point>/simulation.json`` spikes, SynOps, accuracy per timestep
- ``runs/eval/<dataset>/<arch>/<point>/evaluate.json`` all metrics of the point
- ``results/conversion/results.json`` (and ``.csv``) the aggregated table, selections, AUCs
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from ..artifacts import read_json, write_json
from ..config import Params, ParamsError, is_beyond_paper, split_point, split_point_spec
from ..data import load_prepared
from ..data.loading import SplitTensors, load_split
from ..metrics import dnn_fanouts
from ..models import build_dnn
from ..regularizers import (FANOUT_REGULARIZERS, activity_penalty, build_regularizer, connection_sparsity,
                            prune_small_weights, synops_penalty, weight_l1)
from ..training import StepOutput, fit, pick_device, seed_everything
from .common import accuracy, checkpoint_path, fingerprint, format_value, load_model_payload, save_model
from .findings import at_chance

BASELINE = "baseline"
UNTRACKED_RECORD_KEYS = ("energy_breakdown", "activity")
PointCallback = Callable[[str, dict], None]
RUNS = Path("runs")


@dataclass(frozen=True)
class Point:
    """One model of the sweep: a regularizer at a strength, or the unregularized baseline."""

    dataset: str
    arch: str
    regularizer: str  # "none" for the baseline
    lam: float
    label: str | None = field(default=None, compare=False)
    """The point as params.yaml writes it (``l1-1e-4``): its stage and folder name."""

    @classmethod
    def parse(cls, dataset: str, arch: str, point: str) -> "Point":
        """The point ``<regularizer>-<lambda>`` (:func:`~lowspike.config.split_point`), or ``baseline``."""
        if point == BASELINE:
            return cls(dataset, arch, "none", 0.0)
        try:
            regularizer, lam = split_point(point)
        except ValueError as exc:
            raise ParamsError(f"--point {point!r}: {exc}") from None
        return cls(dataset, arch, regularizer, lam, point)

    @property
    def name(self) -> str:
        if self.regularizer == "none":
            return BASELINE
        return self.label or f"{self.regularizer}-{format_value(self.lam)}"

    def folder(self, kind: str) -> Path:
        return RUNS / kind / self.dataset / self.arch / self.name


def grid(params: Params, dataset: str, arch: str) -> list[Point]:
    """The baseline followed by every point of ``regularization.points.<arch>``."""
    points = [Point(dataset, arch, "none", 0.0)]
    points += [Point.parse(dataset, arch, point) for point in params.regularization.points[arch]]
    return points


def make_loss(model_regularizer, lam: float, *, fanout_weighted: bool = False, weight_lambda: float = 0.0):
    """Eq. 4 of the regularization paper, ``CE + lambda * sum_l psi(X_l)``, and beyond it:
    ``fanout_weighted``, the ``synops`` regularizer (:func:`~lowspike.regularizers.synops_penalty`,
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


def train_point(params: Params, point: Point, on_epoch=None, progress: bool = False) -> dict[str, Any]:
    """Train the DNN of ``point``; write ``model.pt`` and ``train.json``; return the summary."""
    study = params.regularization
    cfg = study.train
    device = pick_device()
    seed_everything(cfg.seed)
    prepared = load_prepared(Path(params.data.prepared_dir) / point.dataset)
    train_data = load_split(prepared, "train", params.data, device, train=True)
    val_data = load_split(prepared, "val", params.data, device)
    model = build_dnn(point.arch, train_data.sample_shape, prepared.num_classes).to(device)
    regularizer, activity, weight_penalty = None, None, None
    if point.regularizer != "none":
        activity, weight_penalty = split_point_spec(point.regularizer)
        regularizer = build_regularizer(activity, l2_form=study.l2_form, lp_eps=study.lp_eps)
    weight_lambda = study.weight_lambda if weight_penalty else 0.0
    run_fingerprint = fingerprint(
        point.__dict__, cfg.model_dump(), study.l2_form, study.lp_eps, prepared.meta["sha256"],
        *([weight_lambda] if weight_penalty else [])
    )
    loss_fn = make_loss(regularizer, point.lam, fanout_weighted=activity in FANOUT_REGULARIZERS,
                        weight_lambda=weight_lambda)
    result = fit(
        model,
        loss_fn,
        train_data,
        val_data,
        cfg,
        checkpoint_path=checkpoint_path(f"dnn/{point.dataset}/{point.arch}/{point.name}"),
        fingerprint=run_fingerprint,
        on_epoch=on_epoch,
        progress=progress,
        description=f"{point.arch} {point.name}",
    )
    pruned = prune_small_weights(model, study.prune_threshold) if weight_penalty else 0
    folder = point.folder("dnn")
    save_model(
        folder / "model.pt",
        model,
        arch=point.arch,
        input_shape=list(train_data.sample_shape),
        num_classes=prepared.num_classes,
    )
    best = next((h for h in result.history if h.get("epoch") == result.best_epoch), {})
    summary = {
        "dataset": point.dataset,
        "arch": point.arch,
        "regularizer": point.regularizer,
        "lambda": point.lam,
        "point": point.name,
        "seed": cfg.seed,
        "status": result.status,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "val_accuracy": best.get("val_accuracy"),
        "weight_lambda": weight_lambda,
        "pruned_weights": pruned,
        "connection_sparsity": connection_sparsity(model),
        "history": result.history,
    }
    write_json(folder / "train.json", summary)  # no wall-clock field: the bytes must repeat
    checkpoint_path(f"dnn/{point.dataset}/{point.arch}/{point.name}").unlink(missing_ok=True)
    return {**summary, "train_seconds": result.seconds, "resumed_from_epoch": result.resumed_from_epoch}


def load_dnn(point: Point, device: torch.device | str = "cpu") -> nn.Module:
    payload = load_model_payload(point.folder("dnn") / "model.pt")
    model = build_dnn(payload["arch"], tuple(payload["input_shape"]), payload["num_classes"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def split_inputs(params: Params, dataset: str, split: str, device) -> SplitTensors:
    prepared = load_prepared(Path(params.data.prepared_dir) / dataset)
    return load_split(prepared, split, params.data, device)


# ---------------------------------------------------------------- aggregation


def percent_change(value: float | None, baseline: float | None) -> float | None:
    """``100 (value - baseline) / baseline``; None when the baseline is 0 or missing."""
    if value is None or baseline is None or baseline == 0:
        return None
    return 100.0 * (value - baseline) / baseline


def select_best(rows: list[dict], baseline: dict, max_drop: float) -> dict | None:
    """Selection rule of Tables 1-2: the model with the fewest SynOps whose SNN accuracy drop
    vs the baseline is below ``max_drop`` percentage points (diverged models and models at chance
    excluded; none when the baseline itself has no SNN accuracy, e.g. it diverged, or is at
    chance: then every "gain" would be noise)."""
    if baseline.get("snn_accuracy") is None or baseline.get("at_chance"):
        return None
    eligible = [
        r for r in rows
        if r.get("status") == "ok"
        and r.get("snn_accuracy") is not None
        and not r.get("at_chance")
        and (baseline["snn_accuracy"] - r["snn_accuracy"]) * 100.0 < max_drop
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda r: (r["synops"], -r["snn_accuracy"]))


def accuracy_synops_curve(
    rows: Iterable[dict], max_synops: float, chance: float
) -> dict[str, list[float] | float]:
    """Accuracy vs normalized SynOps (Fig. 3) with its AUC and the monotone smoothed AUC (Table 3).

    x = SynOps / max SynOps over the models of the (dataset, arch); y = SNN accuracy
    (fraction). The curve is anchored at (0, chance): a network that emits no spike
    classifies at chance. Smoothing is an isotonic (non-decreasing in x) regression.
    AUC is the trapezoidal area (``sklearn.metrics.auc``) over x in [0, max x].
    """
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import auc

    pairs = sorted(
        (r["synops"] / max_synops, r["snn_accuracy"])
        for r in rows
        if r.get("status") == "ok" and r.get("synops") is not None and max_synops > 0
    )
    xs = [0.0] + [p[0] for p in pairs]
    ys = [chance] + [p[1] for p in pairs]
    if len(xs) < 2:
        return {"x": xs, "y": ys, "y_smoothed": ys, "auc": math.nan, "auc_smoothed": math.nan}
    smoothed = IsotonicRegression(increasing=True).fit_transform(xs, ys).tolist()
    return {
        "x": xs,
        "y": ys,
        "y_smoothed": smoothed,
        "auc": float(auc(xs, ys)),
        "auc_smoothed": float(auc(xs, smoothed)),
    }


ENERGY_NETWORKS = ("snn", "dnn_dense", "dnn_effective")
ENERGY_REFERENCES = ("dnn_dense", "dnn_effective")


def energy_columns(record: dict) -> dict[str, Any]:
    """Flat energy fields of an ``evaluate.json`` record (none without ``energy``), per model
    ``m``: ``energy_<m>_<net>_j`` (joules per inference of snn, dnn_dense, dnn_effective),
    ``energy_<m>_snn_over_<ref>`` (SNN/DNN ratio), ``energy_<m>_snn_cheaper_than_<ref>``,
    ``energy_<m>_break_even_spikerate_<dense|effective>``; and ``energy_spikerate``."""
    energy = record.get("energy")
    if not energy:
        return {}
    columns: dict[str, Any] = {"energy_spikerate": energy.get("spikerate")}
    for model, figures in energy.items():
        if not isinstance(figures, dict):
            continue
        for net in ENERGY_NETWORKS:
            columns[f"energy_{model}_{net}_j"] = figures.get(f"{net}_j")
        for reference in ENERGY_REFERENCES:
            suffix = reference.removeprefix("dnn_")
            columns[f"energy_{model}_snn_over_{reference}"] = figures.get(f"snn_over_{reference}")
            dnn = figures.get(f"{reference}_j")
            columns[f"energy_{model}_snn_cheaper_than_{reference}"] = (
                figures["snn_j"] < dnn if dnn is not None and figures.get("snn_j") is not None else None)
            columns[f"energy_{model}_break_even_spikerate_{suffix}"] = figures.get(f"break_even_spikerate_{suffix}")
    return columns


def slim_record(record: dict) -> dict:
    """An ``evaluate.json`` record for the aggregate table: without the per-layer activity, and
    with the energy breakdown reduced to each network's term totals in joules (``energy_terms``:
    ``{model: {net: {term: J}}}``); per-layer totals stay in ``energy``."""
    slim = {k: v for k, v in record.items() if k not in UNTRACKED_RECORD_KEYS}
    if "energy_breakdown" in record:
        slim["energy_terms"] = {model: {net: parts["terms_j"] for net, parts in nets.items()}
                                  for model, nets in record["energy_breakdown"].items()}
    return slim


def energy_break_even(baseline: dict) -> list[dict]:
    """Per energy model and DNN reference, the break-even spikerate of an architecture: the
    baseline's (:func:`lowspike.energy.break_even_spikerate`, with the baseline's per-layer
    distribution of activity), beside the baseline's own spikerate and energies."""
    columns = energy_columns(baseline)
    models = [m for m, figures in (baseline.get("energy") or {}).items() if isinstance(figures, dict)]
    rows = []
    for model in models:
        for reference in ENERGY_REFERENCES:
            dnn = columns.get(f"energy_{model}_{reference}_j")
            if dnn is None:
                continue
            rows.append({
                "dataset": baseline["dataset"], "arch": baseline["arch"], "model": model, "reference": reference,
                "break_even_spikerate":
                    columns[f"energy_{model}_break_even_spikerate_{reference.removeprefix('dnn_')}"],
                "baseline_spikerate": columns["energy_spikerate"], "timesteps": baseline.get("timesteps"),
                "baseline_snn_j": columns[f"energy_{model}_snn_j"], "dnn_j": dnn,
            })
    return rows


def aggregate(params: Params, eval_root: Path = RUNS / "eval") -> dict[str, Any]:
    """Collect every evaluate.json of the current grid into one table with deltas,
    selections (Tables 1-2), accuracy-vs-SynOps AUCs (Table 3) and, per architecture, the
    break-even spikerates of the energy models (:func:`energy_break_even`). Energy columns:
    :func:`energy_columns`, plus ``energy_<m>_<net>_change_pct`` vs the baseline."""
    study = params.regularization
    table: list[dict] = []
    selections: list[dict] = []
    curves: list[dict] = []
    break_even: list[dict] = []
    for dataset in study.datasets:
        for arch in study.archs:
            points = grid(params, dataset, arch)
            rows = []
            for point in points:
                path = eval_root / dataset / arch / point.name / "evaluate.json"
                if path.exists():
                    rows.append(slim_record(read_json(path)))
            baseline = next((r for r in rows if r["point"] == BASELINE), None)
            if baseline is None:
                continue
            for row in rows:
                row.update(energy_columns(row))
                row["at_chance"] = row.get("status") == "ok" and at_chance(
                    row.get("snn_accuracy"), row.get("num_classes"), row.get("spikes"))
                row["beyond_paper"] = row["regularizer"] != "none" and is_beyond_paper(row["regularizer"])
            for row in rows:
                for key in ("spikes", "eflops", "synops"):
                    row[f"{key}_change_pct"] = percent_change(row.get(key), baseline.get(key))
                for key in [k for k, v in row.items() if k.startswith("energy_") and k.endswith("_j")
                            and not isinstance(v, dict)]:
                    row[f"{key[:-2]}_change_pct"] = percent_change(row[key], baseline.get(key))
                for key in ("dnn_accuracy", "snn_accuracy"):
                    if row.get(key) is not None and baseline.get(key) is not None:
                        row[f"{key}_delta_pts"] = 100.0 * (row[key] - baseline[key])
                    else:
                        row[f"{key}_delta_pts"] = None
            table.extend(rows)
            if baseline.get("status") == "ok":
                break_even.extend(energy_break_even(baseline))
            max_drop = study.max_accuracy_drop.get(dataset, 0.5)
            max_synops = max((r["synops"] for r in rows if r.get("status") == "ok"), default=0.0)
            chance = 1.0 / max(1, baseline.get("num_classes", 10))
            for reg in study.regularizers:
                reg_rows = [r for r in rows if r["regularizer"] == reg]
                if not reg_rows:
                    continue
                best = select_best(reg_rows, baseline, max_drop)
                selections.append({
                    "dataset": dataset, "arch": arch, "regularizer": reg, "max_drop_pts": max_drop,
                    "selected": best["point"] if best else None,
                    "lambda": best["lambda"] if best else None,
                    **({k: best.get(k) for k in (
                        "spikes_change_pct", "eflops_change_pct", "synops_change_pct",
                        "dnn_accuracy_delta_pts", "snn_accuracy_delta_pts")} if best else {}),
                    **({k: v for k, v in best.items() if k.startswith("energy_") and not isinstance(v, (bool, dict))}
                       if best else {}),
                })
                curve = accuracy_synops_curve([baseline, *reg_rows], max_synops, chance)
                curves.append({"dataset": dataset, "arch": arch, "regularizer": reg, **curve})
    return {"rows": table, "selections": selections, "curves": curves, "break_even": break_even}


def check_point(params: Params, point: Point) -> None:
    """Refuse (:class:`ParamsError`: one line, exit code 2 in a stage) a point that params.yaml
    does not define, e.g. a stale matrix entry or a mistyped command line."""

    study = params.regularization
    problems = []
    if point.dataset not in study.datasets:
        problems.append(f"dataset {point.dataset!r} not in regularization.datasets {study.datasets}")
    if point.arch not in study.archs:
        problems.append(f"arch {point.arch!r} not in regularization.archs {study.archs}")
    if point.regularizer != "none" and point.name not in [p.name for p in grid(params, point.dataset, point.arch)]:
        problems.append(f"point {point.name!r} not in regularization.points.{point.arch}")
    if problems:
        raise ParamsError(problems[0])


# ------------------------------------------------- convert, simulate, evaluate (per dataset x arch)


def _trained_points(params: Params, dataset: str, arch: str) -> list[tuple[Point, dict]]:
    found = []
    for point in grid(params, dataset, arch):
        train_file = point.folder("dnn") / "train.json"
        if train_file.exists():
            found.append((point, read_json(train_file)))
    return found


def convert_all(params: Params, dataset: str, arch: str, progress: bool = False,
                on_point: PointCallback | None = None) -> str:
    """Convert every trained DNN of the grid; write ``snn.pt`` and ``convert.json`` per point
    (``on_point(point_name, record)`` sees each record, e.g. to log it to MLflow)."""
    from ..snn.conversion import convert, save_converted

    cfg = params.conversion
    calibration = split_inputs(params, dataset, cfg.calibration_split, "cpu").materialize()
    if cfg.calibration_samples:
        calibration = calibration[: cfg.calibration_samples]
    converted = 0
    for point, summary in _trained_points(params, dataset, arch):
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


def simulate_all(params: Params, dataset: str, arch: str, progress: bool = False,
                 on_point: PointCallback | None = None) -> str:
    """Simulate every converted SNN on the test split; write ``simulation.json`` per point.

    Besides accuracy, spikes and SynOps, the record holds what the energy models need:
    ``synops_per_layer`` (SynOps caused by the input's spikes, ``input``, and by each IF
    layer's, ``if<l>``; they add up to ``synops``) and ``input_events`` (non-zero inputs of the
    first layer summed over T: input spikes, or the non-zero pixels x T with analog coding),
    all means per sample."""
    from ..metrics import spiking_fanouts
    from ..snn.conversion import load_converted
    from ..snn.simulation import simulate_batch

    cfg = params.simulation
    device = pick_device()
    test = split_inputs(params, dataset, "test", device)
    inputs, labels = test.materialize(), test.labels
    lines = []
    for point, summary in _trained_points(params, dataset, arch):
        folder = point.folder("sim")
        if summary["status"] != "ok":
            write_json(folder / "simulation.json", {"point": point.name, "status": summary["status"]})
            continue
        snn = load_converted(point.folder("snn") / "snn.pt")
        fanouts = spiking_fanouts(snn)
        generator = torch.Generator().manual_seed(cfg.seed)
        per_layer, spikes, synops, synops_by_source, input_spikes, correct = None, [], [], [], [], None
        for start in range(0, inputs.shape[0], cfg.batch_size):
            out = simulate_batch(snn, inputs[start:start + cfg.batch_size], cfg.timesteps, cfg.input_coding,
                                 generator, fanouts)
            per_layer = out.spikes_per_layer if per_layer is None else per_layer + out.spikes_per_layer
            spikes.append(out.spikes_per_sample.cpu())
            synops.append(out.synops_per_sample.cpu())
            synops_by_source.append(out.synops_per_layer.cpu())
            input_spikes.append(out.input_spikes_per_sample.double().cpu())
            hits = (out.predictions == labels[start:start + cfg.batch_size]).sum(dim=1).cpu()
            correct = hits if correct is None else correct + hits
        n = inputs.shape[0]
        accuracy_per_step = (correct.double() / n).tolist()
        layer_names = [f"if{i + 1}" for i in range(per_layer.shape[1])]
        if cfg.input_coding == "analog":
            input_events = (inputs != 0).flatten(1).sum(dim=1).double().mean().item() * cfg.timesteps
        else:
            input_events = float(torch.cat(input_spikes).mean())
        record = {
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
        }
        write_json(folder / "simulation.json", record)
        if on_point is not None:
            on_point(point.name, record)
        lines.append(f"{point.name} {100 * record['snn_accuracy']:.2f}%")
    return f"SNN accuracy at T={cfg.timesteps}: " + ", ".join(lines)


def evaluate_all(params: Params, dataset: str, arch: str, progress: bool = False,
                 on_point: PointCallback | None = None) -> str:
    """Join DNN accuracy and EFLOPS with the simulation into ``evaluate.json`` per point.

    Energy (:mod:`lowspike.energy`, params ``energy``): ``activity`` is the per-layer record of
    the converted SNN (:func:`~lowspike.energy.converted_snn_activity`), ``energy`` the totals
    per model of the SNN and of its DNN (dense and zero-skipping), per layer, the SNN/DNN ratios
    and the break-even spikerates, ``energy_breakdown`` every term per layer. The callback sees
    the whole record; :data:`UNTRACKED_RECORD_KEYS` are the bulky parts to keep out of MLflow.
    """
    from ..energy import converted_snn_activity, evaluate_energy
    from ..metrics import eflops_per_sample
    from ..snn.conversion import load_converted

    device = pick_device()
    test = split_inputs(params, dataset, "test", device)
    inputs, labels = test.materialize(), test.labels
    prepared = load_prepared(Path(params.data.prepared_dir) / dataset)
    for point, summary in _trained_points(params, dataset, arch):
        record = {"dataset": dataset, "arch": arch, "point": point.name, "regularizer": point.regularizer,
                  "lambda": point.lam, "status": summary["status"], "num_classes": prepared.num_classes,
                  "epochs_run": summary["epochs_run"]}
        if summary["status"] == "ok":
            model = load_dnn(point, device)
            with torch.inference_mode():
                logits = torch.cat([model(chunk) for chunk in inputs.split(1000)])
            eflops = eflops_per_sample(model, inputs)
            sim = read_json(point.folder("sim") / "simulation.json")
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
                "activity": activity.to_dict(),
            })
        write_json(point.folder("eval") / "evaluate.json", record)
        if on_point is not None:
            on_point(point.name, record)
    return f"{len(_trained_points(params, dataset, arch))} points evaluated"


def write_aggregate(params: Params, out_dir: str | Path) -> str:
    """Write results.json (with the findings, :mod:`.findings`), results.csv and the DVC metrics
    directory ``metrics/`` (:func:`metric_rows`)."""
    from ..artifacts import write_csv
    from .findings import conversion_findings

    out_dir = Path(out_dir)
    result = aggregate(params)
    specs = params.regularization.regularizers
    result["findings"] = [f.to_dict() for f in conversion_findings(
        result, [s for s in specs if not is_beyond_paper(s)], [s for s in specs if is_beyond_paper(s)],
        {"mlp": "MLP", "lenet5": "LeNet-5"})]
    write_json(out_dir / "results.json", result)
    columns = ["dataset", "arch", "point", "regularizer", "lambda", "status", "dnn_accuracy", "snn_accuracy",
               "spikes", "eflops", "synops", "spikes_change_pct", "eflops_change_pct", "synops_change_pct",
               "dnn_accuracy_delta_pts", "snn_accuracy_delta_pts", "energy_spikerate"]
    for model in params.energy.models:
        columns += [f"energy_{model}_{net}_j" for net in ENERGY_NETWORKS]
        columns += [f"energy_{model}_{net}_change_pct" for net in ("snn", "dnn_effective")]
        columns += [f"energy_{model}_snn_over_{reference}" for reference in ENERGY_REFERENCES]
        columns += [f"energy_{model}_break_even_spikerate_{reference.removeprefix('dnn_')}"
                    for reference in ENERGY_REFERENCES]
    write_csv(out_dir / "results.csv", result["rows"], columns)

    write_metrics(out_dir / "metrics", metric_rows(result, params))
    return f"{len(result['rows'])} points, {sum(1 for s in result['selections'] if s['selected'])} selections"


def metric_rows(result: dict, params: Params) -> dict[str, dict[str, Any]]:
    """What ``dvc metrics show`` lists for the conversion study, one file per row, the same few
    columns in every file: per dataset and architecture the baseline (absolute values) and the
    model each regularizer selects (Tables 1-2: its changes in % and pts, its AUC, Table 3), and
    the mark of each finding."""
    rows: dict[str, dict[str, Any]] = {}
    models = list(params.energy.models)
    for row in result["rows"]:
        if row["point"] == BASELINE and row.get("status") == "ok":
            entry = {"snn_accuracy": row.get("snn_accuracy"), "dnn_accuracy": row.get("dnn_accuracy"),
                     "spikes": row.get("spikes"), "synops": row.get("synops"), "eflops": row.get("eflops")}
            entry.update({f"{m}_uj": _microjoules(row.get(f"energy_{m}_snn_j")) for m in models})
            entry.update({f"{m}_snn_over_dnn": row.get(f"energy_{m}_snn_over_dnn_dense") for m in models})
            rows[f"{row['dataset']}-{row['arch']}-baseline"] = entry
    curves = {(c["dataset"], c["arch"], c["regularizer"]): c for c in result["curves"]}
    for selection in result["selections"]:
        key = (selection["dataset"], selection["arch"], selection["regularizer"])
        entry = {"lambda": selection.get("lambda"), "snn_accuracy_pts": selection.get("snn_accuracy_delta_pts"),
                 "spikes_pct": selection.get("spikes_change_pct"), "synops_pct": selection.get("synops_change_pct"),
                 "eflops_pct": selection.get("eflops_change_pct"),
                 "auc_smoothed": curves.get(key, {}).get("auc_smoothed")}
        entry.update({f"{m}_uj": _microjoules(selection.get(f"energy_{m}_snn_j")) for m in models})
        entry.update({f"{m}_pct": selection.get(f"energy_{m}_snn_change_pct") for m in models})
        rows["-".join(key).replace("+", "_")] = entry
    for finding in result.get("findings", []):
        rows[f"finding-{finding['key']}"] = {"finding": finding["mark"]}
    return rows


def _microjoules(joules: float | None) -> float | None:
    return None if joules is None else joules * 1.0e6


def write_metrics(folder: Path, rows: dict[str, dict[str, Any]]) -> None:
    """One small JSON file per row in ``folder`` (a DVC metrics directory), stale files removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, values in rows.items():
        write_json(folder / f"{name}.json", values)
    for stale in folder.glob("*.json"):
        if stale.stem not in rows:
            stale.unlink()



