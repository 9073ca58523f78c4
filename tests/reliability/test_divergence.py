"""A loss that becomes infinite (a huge lambda) ends that training with status ``diverged``; the
stage succeeds, and every later stage, both aggregates and both reports carry the point as
diverged: no crash, no NaN, no metric made up for it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lowspike import tracking
from lowspike.artifacts import read_json
from lowspike.config import TrackingConfig

from .conftest import EMPTY_GRIDS, tiny_params, write_params

HUGE = 1.0e+300  # finite in params.yaml, infinite once it scales a float32 loss
DIVERGED_POINT = Path("runs/dnn/digits/mlp/l1-1e+300")
DIVERGED_STUDENT = Path("runs/student/digits/log-l2sq-1e+300/seed0")


def _strict_json(path: Path):
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_diverging_point_flows_through_both_studies_and_the_reports(workdir, stage_main):
    write_params(workdir / "params.yaml", tiny_params({
        "regularization": {"points": {"mlp": [f"l1-{HUGE}"], "lenet5": []}},
        "distillation": {"grids": {"digits": {**EMPTY_GRIDS, "logits": {"l2": [], "l2sq": [HUGE]}}}},
    }))
    train = ("train_dnn.py", "--dataset", "digits", "--arch", "mlp")
    assert stage_main(*train, "--point", "baseline") == 0
    assert stage_main(*train, "--point", f"l1-{HUGE}") == 0
    trained = read_json(DIVERGED_POINT / "train.json")
    assert (trained["status"], trained["epochs_run"], trained["best_epoch"]) == ("diverged", 1, 0)
    assert trained["history"] == [{"epoch": 1, "status": "diverged"}]
    assert trained["best_val_loss"] is None and trained["val_accuracy"] is None
    assert not Path(".cache/checkpoints/dnn__digits__mlp__l1-1e+300.pt").exists()

    for script in ("convert.py", "simulate.py", "evaluate.py"):
        assert stage_main(script, "--dataset", "digits", "--arch", "mlp") == 0, script
    assert read_json("runs/snn/digits/mlp/l1-1e+300/convert.json") == {
        "point": "l1-1e+300", "status": "diverged", "percentile": 99.9}
    assert not Path("runs/snn/digits/mlp/l1-1e+300/snn.pt").exists()
    assert read_json("runs/sim/digits/mlp/l1-1e+300/simulation.json") == {"point": "l1-1e+300",
                                                                          "status": "diverged"}
    evaluated = read_json("runs/eval/digits/mlp/l1-1e+300/evaluate.json")
    assert evaluated["status"] == "diverged"
    assert not {"dnn_accuracy", "snn_accuracy", "spikes", "synops", "eflops"} & evaluated.keys()

    assert stage_main("aggregate_conversion.py") == 0
    results = _strict_json(Path("results/conversion/results.json"))
    row = next(r for r in results["rows"] if r["point"] == "l1-1e+300")
    assert row["status"] == "diverged"
    assert row["synops_change_pct"] is None and row["snn_accuracy_delta_pts"] is None
    [selection] = results["selections"]
    assert selection["selected"] is None
    [curve] = results["curves"]
    baseline = next(r for r in results["rows"] if r["point"] == "baseline")
    assert curve["x"] == [0.0, 1.0] and curve["y"] == [0.1, baseline["snn_accuracy"]]
    for metrics in sorted(Path("results/conversion/metrics").glob("*.json")):
        _strict_json(metrics)
    lines = Path("results/conversion/results.csv").read_text().splitlines()
    [diverged] = [line for line in lines if line.startswith("digits,mlp,l1-1e+300,")]
    assert diverged.startswith("digits,mlp,l1-1e+300,l1,1e+300,diverged,") and set(diverged.split(",")[6:]) == {""}

    student = ("train_student.py", "--dataset", "digits", "--seed", "0")
    assert stage_main(*student, "--method", "baseline") == 0
    assert stage_main(*student, "--method", "logits", "--norm", "l2sq", "--lam", str(HUGE)) == 0
    assert read_json(DIVERGED_STUDENT / "train.json")["status"] == "diverged"
    assert stage_main("evaluate_students.py", "--dataset", "digits") == 0
    assert stage_main("aggregate_distillation.py") == 0
    distilled = _strict_json(Path("results/distillation/results.json"))
    config = next(c for c in distilled["configurations"] if c["run"] == "log-l2sq-1e+300")
    assert (config["seeds"], config["diverged"]) == (1, 1)
    assert config["accuracy_mean"] is None and config["delta_spikerate_mean"] is None

    assert stage_main("report.py") == 0
    reports = {p: p.read_text() for p in Path("reports").rglob("*") if p.suffix in (".md", ".html", ".csv")}
    assert reports and not [p for p, text in reports.items() if re.search(r"\bnan\b", text, re.IGNORECASE)]
    regularization = reports[Path("reports/regularization.md")]
    assert "| MLP | L1 | 1e+300 | diverged | n/a | n/a | n/a | n/a | n/a | n/a |" in regularization
    assert "2 points (1 diverged)" in regularization
    seeds_diverged_metrics = "| digits | log-l2sq-1e+300 | logits | 1 | 1 | n/a | n/a | n/a | n/a | n/a |"
    assert seeds_diverged_metrics in reports[Path("reports/distillation.md")]


def test_the_tracked_run_records_the_divergence():
    """The training stages log ``diverged`` (a bool) with their summary metrics."""
    logged = []

    class Client:
        def log_batch(self, run_id, metrics=(), params=()):
            logged.extend(metrics)

    run = tracking.Run(TrackingConfig(), "regularization", "train", {})
    run.client, run.run_id = Client(), "r1"
    run.log_metrics({"epochs_run": 1, "diverged": True, "best_val_loss": float("nan")})
    assert {m.key: m.value for m in logged} == {"epochs_run": 1.0, "diverged": 1.0}
