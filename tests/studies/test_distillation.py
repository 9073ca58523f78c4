"""Direct-training study bookkeeping: run names, grid expansion, Eq. 11/13 deltas."""

import pytest

from lowspike.artifacts import write_json
from lowspike.config import validate_params
from lowspike.studies import distillation


def test_grid_expansion_and_names():
    params = validate_params({"distillation": {
        "datasets": ["mnist5k"], "seeds": [0, 1],
        "grids": {"mse": {"alphas": [0.5]}, "soft_targets": {"taus": [4.0]},
                  "heterogeneous": {"tau_s": [1.0], "tau_t": [4.0, 8.0]},
                  "activation": {"norms": ["l1"], "lambdas": [0.1]},
                  "logits": {"norms": ["l2sq"], "lambdas": [0.01]}}}})
    runs = distillation.student_runs(params, "mnist5k")
    names = [r.name for r in runs if r.seed == 0]
    assert names == ["baseline", "mse-a0.5", "st-t4.0", "het-s1.0-t4.0", "het-s1.0-t8.0",
                     "act-l1-0.1", "log-l2sq-0.01"]
    assert len(runs) == 14
    assert str(runs[3].folder()) == "runs/student/mnist5k/het-s1.0-t4.0/seed0"
    assert [r.uses_teacher for r in runs[:7]] == [False, True, True, True, True, False, False]


def test_relative_delta_eq_11_13():
    assert distillation.relative_delta(0.5, 2.0) == pytest.approx(-0.75)
    assert distillation.relative_delta(0.5, 0.0) is None
    assert distillation.relative_delta(None, 1.0) is None


def test_aggregate_deltas_against_same_seed_baseline_and_seed_statistics(tmp_path):
    params = validate_params({"distillation": {
        "datasets": ["mnist5k"], "seeds": [0, 1],
        "grids": {"mse": {"alphas": []}, "soft_targets": {"taus": []},
                  "heterogeneous": {"tau_s": [], "tau_t": []},
                  "activation": {"norms": ["l1"], "lambdas": [0.1]}, "logits": {"norms": [], "lambdas": []}}}})
    root = tmp_path / "student_eval" / "mnist5k"
    values = {("baseline", 0): (0.98, 2.0), ("baseline", 1): (0.96, 4.0),
              ("act-l1-0.1", 0): (0.98 * 0.99, 1.0), ("act-l1-0.1", 1): (0.96 * 0.97, 1.0)}
    for (run, seed), (acc, rate) in values.items():
        write_json(root / run / f"seed{seed}" / "evaluate.json", {
            "dataset": "mnist5k", "run": run, "seed": seed, "method": "baseline" if run == "baseline" else "activation",
            "accuracy": acc, "spikerate": rate, "total_spikes": rate * 100, "status": "ok",
            "spikerate_per_layer": {"conv1": rate, "conv2": 0.0}})
    result = distillation.aggregate(params, eval_root=tmp_path / "student_eval", teacher_root=tmp_path / "teacher")
    act = next(c for c in result["configurations"] if c["run"] == "act-l1-0.1")
    # spikerate deltas: seed 0 (1-2)/2 = -0.5, seed 1 (1-4)/4 = -0.75 -> mean -0.625
    assert act["delta_spikerate_mean"] == pytest.approx(-0.625)
    assert act["delta_accuracy_mean"] == pytest.approx(-0.02)
    assert act["delta_spikerate_per_layer_mean"]["conv2"] is None
    best = distillation.best_per_method(result["configurations"], "mnist5k", max_accuracy_loss=0.05)
    assert best["ActReg"]["run"] == "act-l1-0.1"
