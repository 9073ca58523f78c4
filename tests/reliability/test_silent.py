"""Silent networks (no spike, all-zero activations) give defined metrics everywhere: 0 spikes,
0 SynOps, 0 EFLOPS, spikerate 0, accuracy at chance (every logit 0, so every sample is called
class 0), no division by zero in the deltas against a silent baseline, no NaN in any result or
report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from lowspike.artifacts import read_json
from lowspike.checkpoints import save_torch
from lowspike.params import validate_params
from lowspike.data.prepared import load_prepared
from lowspike.studies import conversion_points
from lowspike.studies import conversion_train
from lowspike import distillation
from lowspike.studies import distillation_train
from lowspike.checkpoints import load_model_payload

from .conftest import EMPTY_GRIDS, tiny_params, write_params

ONE_EPOCH = {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 32, "max_epochs": 1, "patience": 1, "seed": 0}


def _silence(model_file: Path) -> None:
    """Zero every weight, bias and normalization statistic of a saved model."""
    payload = load_model_payload(model_file)
    payload["state_dict"] = {k: torch.zeros_like(v) for k, v in payload["state_dict"].items()}
    save_torch(model_file, payload)


def _strict_json(path: Path):
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_silent_networks_have_defined_metrics_through_both_studies_and_the_reports(workdir, stage_main):
    raw = tiny_params({
        "regularization": {"points": {"mlp": ["l1-0.001", "l1-0.01"], "lenet5": []}, "train": ONE_EPOCH},
        "distillation": {"grids": {"digits": {**EMPTY_GRIDS, "activation": {"l1": [1.0e-3], "l2": []}}}},
    })
    write_params(workdir / "params.yaml", raw)
    params = validate_params(raw)
    test_labels = load_prepared("data/prepared/digits").split("test")[1]
    chance = float((test_labels == 0).double().mean())
    assert 0.05 < chance < 0.15

    for point in conversion_points.grid(params, "digits", "mlp"):
        conversion_train.train_point(params, point)
    _silence(Path("runs/dnn/digits/mlp/baseline/model.pt"))
    _silence(Path("runs/dnn/digits/mlp/l1-0.001/model.pt"))
    for script in ("convert.py", "simulate.py", "evaluate.py"):
        assert stage_main(script, "--dataset", "digits", "--arch", "mlp") == 0, script

    for name in ("baseline", "l1-0.001"):
        record = read_json(f"runs/eval/digits/mlp/{name}/evaluate.json")
        assert (record["spikes"], record["synops"], record["eflops"]) == (0.0, 0.0, 0.0)
        assert set(record["spikes_per_layer"].values()) == {0.0}
        assert record["dnn_accuracy"] == pytest.approx(chance) and record["snn_accuracy"] == pytest.approx(chance)
        assert record["accuracy_per_timestep"] == [pytest.approx(chance)] * 10
    live = read_json("runs/eval/digits/mlp/l1-0.01/evaluate.json")
    assert live["synops"] > 0 and live["snn_accuracy"] > 2 * chance

    assert stage_main("aggregate_conversion.py") == 0
    results = _strict_json(Path("results/conversion/results.json"))
    for row in results["rows"]:  # every relative change against a silent baseline is undefined
        assert row["spikes_change_pct"] is None and row["synops_change_pct"] is None
        assert row["eflops_change_pct"] is None
    silent = next(r for r in results["rows"] if r["point"] == "l1-0.001")
    assert silent["snn_accuracy_delta_pts"] == 0.0
    [curve] = results["curves"]
    assert curve["x"][:3] == [0.0, 0.0, 0.0] and curve["x"][-1] == 1.0
    assert curve["y"][0] == 0.1 and all(y == pytest.approx(chance) for y in curve["y"][1:3])
    assert 0.0 < curve["auc"] <= 1.0 and 0.0 < curve["auc_smoothed"] <= 1.0
    for metrics in sorted(Path("results/conversion/metrics").glob("*.json")):
        _strict_json(metrics)

    for run in distillation.student_runs(params, "digits"):
        distillation_train.train_student(params, run)
    _silence(Path("runs/student/digits/baseline/seed0/model.pt"))
    assert stage_main("evaluate_students.py", "--dataset", "digits") == 0
    student = read_json("runs/student_eval/digits/baseline/seed0/evaluate.json")
    assert (student["total_spikes"], student["spikerate"], student["spikerate_per_timestep"]) == (0.0, 0.0, 0.0)
    assert set(student["spikerate_per_layer"].values()) == {0.0}
    assert student["accuracy"] == pytest.approx(chance)
    assert stage_main("aggregate_distillation.py") == 0
    distilled = _strict_json(Path("results/distillation/results.json"))
    regularized = next(r for r in distilled["rows"] if r["run"] == "act-l1-0.001")
    assert regularized["delta_spikerate"] is None and regularized["spikerate"] > 0
    assert set(regularized["delta_spikerate_per_layer"].values()) == {None}
    baseline = next(c for c in distilled["configurations"] if c["run"] == "baseline")
    assert (baseline["spikerate_mean"], baseline["delta_spikerate_mean"]) == (0.0, None)

    assert stage_main("report.py") == 0
    reports = {p: p.read_text() for p in Path("reports").rglob("*") if p.suffix in (".md", ".html", ".csv")}
    assert reports and not [p for p, text in reports.items() if re.search(r"\bnan\b|\binf\b", text, re.IGNORECASE)]
