"""Conversion-study orchestration: per-point training, selection rule, AUC curves."""

import pytest

from lowspike.artifacts import read_json
from lowspike.config import validate_params
from lowspike.data import load_raw, write_prepared
from lowspike.studies import conversion


def test_train_point_writes_model_and_summary_on_digits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = validate_params({
        "data": {"datasets": ["digits"]},
        "regularization": {"datasets": ["digits"], "archs": ["mlp"], "regularizers": ["l1"], "lambdas": [1.0e-3],
                           "train": {"lr": 1.0e-2, "batch_size": 64, "max_epochs": 3, "patience": 3}},
    })
    write_prepared(load_raw("digits", params.data), tmp_path / "data/prepared/digits")
    point = conversion.Point("digits", "mlp", "l1", 1.0e-3)
    summary = conversion.train_point(params, point)
    assert summary["status"] == "ok"
    assert summary["epochs_run"] == 3
    assert summary["val_accuracy"] > 0.8
    assert (tmp_path / "runs/dnn/digits/mlp/l1-0.001/model.pt").exists()
    assert read_json(tmp_path / "runs/dnn/digits/mlp/l1-0.001/train.json")["history"][0]["train_penalty"] > 0
    assert conversion.load_dnn(point)(__import__("torch").rand(2, 1, 8, 8)).shape == (2, 10)


def test_grid_starts_with_the_baseline_and_names_points_like_dvc():
    params = validate_params({"regularization": {"regularizers": ["l1", "lp0.5"], "lambdas": [1.0e-5, 0.01]}})
    names = [p.name for p in conversion.grid(params, "mnist5k", "mlp")]
    assert names == ["baseline", "l1-1e-05", "l1-0.01", "lp0.5-1e-05", "lp0.5-0.01"]


def test_selection_rule_takes_fewest_synops_within_the_accuracy_drop():
    baseline = {"snn_accuracy": 0.980, "synops": 100.0, "status": "ok"}
    rows = [
        {"point": "a", "snn_accuracy": 0.979, "synops": 50.0, "status": "ok"},   # drop 0.1 pts
        {"point": "b", "snn_accuracy": 0.976, "synops": 20.0, "status": "ok"},   # drop 0.4 pts
        {"point": "c", "snn_accuracy": 0.970, "synops": 5.0, "status": "ok"},    # drop 1.0 pts: excluded
        {"point": "d", "snn_accuracy": None, "synops": 1.0, "status": "diverged"},
    ]
    assert conversion.select_best(rows, baseline, max_drop=0.5)["point"] == "b"
    assert conversion.select_best(rows, baseline, max_drop=0.05) is None


def test_accuracy_synops_curve_auc_by_hand():
    rows = [{"synops": 100.0, "snn_accuracy": 0.9, "status": "ok"},
            {"synops": 50.0, "snn_accuracy": 0.9, "status": "ok"}]
    curve = conversion.accuracy_synops_curve(rows, max_synops=100.0, chance=0.1)
    # points (0, .1), (.5, .9), (1, .9): area = .5*(.1+.9)/2 + .5*.9 = .25 + .45 = .70
    assert curve["x"] == [0.0, 0.5, 1.0]
    assert curve["auc"] == pytest.approx(0.70)
    assert curve["auc_smoothed"] == pytest.approx(0.70)


def test_smoothing_makes_the_curve_monotone():
    rows = [{"synops": 20.0, "snn_accuracy": 0.95, "status": "ok"},
            {"synops": 60.0, "snn_accuracy": 0.85, "status": "ok"},
            {"synops": 100.0, "snn_accuracy": 0.97, "status": "ok"}]
    curve = conversion.accuracy_synops_curve(rows, max_synops=100.0, chance=0.1)
    ys = curve["y_smoothed"]
    assert all(a <= b + 1e-12 for a, b in zip(ys, ys[1:]))
    # isotonic pools (.2, .95) and (.6, .85) into their mean .90
    assert ys == pytest.approx([0.1, 0.9, 0.9, 0.97])


def test_percent_change_is_undefined_for_a_zero_baseline():
    assert conversion.percent_change(25.0, 100.0) == pytest.approx(-75.0)
    assert conversion.percent_change(5.0, 0.0) is None


def test_a_diverged_baseline_selects_nothing():
    rows = [{"point": "a", "snn_accuracy": 0.9, "synops": 5.0, "status": "ok"}]
    assert conversion.select_best(rows, {"status": "diverged"}, max_drop=0.5) is None
