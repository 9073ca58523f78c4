"""Conversion-study orchestration: per-point training, selection rule, AUC curves."""

import pytest

from lowspike.artifacts import read_json
from lowspike.params import validate_params
from lowspike.data import load_raw
from lowspike.data.prepared import write_prepared
from lowspike.studies import common
from lowspike.studies import conversion_points
from lowspike.studies import conversion_results
from lowspike.studies import conversion_snn
from lowspike.studies import conversion_train


def test_train_point_writes_model_and_summary_on_digits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = validate_params({
        "data": {"datasets": ["digits"]},
        "regularization": {"datasets": ["digits"], "archs": ["mlp"], "points": {"mlp": ["l1-0.001"], "lenet5": []},
                           "train": {"lr": 1.0e-2, "batch_size": 64, "max_epochs": 3, "patience": 3}},
    })
    write_prepared(load_raw("digits", params.data), tmp_path / "data/prepared/digits")
    point = conversion_points.Point("digits", "mlp", "l1", 1.0e-3)
    summary = conversion_train.train_point(params, point)
    assert summary["status"] == "ok"
    assert summary["epochs_run"] == 3
    assert summary["val_accuracy"] > 0.8
    assert (tmp_path / "runs/dnn/digits/mlp/l1-0.001/model.pt").exists()
    assert read_json(tmp_path / "runs/dnn/digits/mlp/l1-0.001/train.json")["history"][0]["train_penalty"] > 0
    assert conversion_train.load_dnn(point)(__import__("torch").rand(2, 1, 8, 8)).shape == (2, 10)


def test_grid_starts_with_the_baseline_and_names_points_like_dvc():
    params = validate_params({"regularization": {"points": {
        "mlp": ["l1-1e-5", "l1-0.01", "lp0.5-1e-5", "lp0.5-0.01", "l1+wl1-3e-4"], "lenet5": ["l1-1e-5"]}}})
    points = conversion_points.grid(params, "mnist5k", "mlp")
    assert [p.name for p in points] == ["baseline", "l1-1e-5", "l1-0.01", "lp0.5-1e-5", "lp0.5-0.01", "l1+wl1-3e-4"]
    assert [(p.regularizer, p.lam) for p in points[1:3]] == [("l1", 1.0e-5), ("l1", 0.01)]
    assert params.regularization.regularizers == ["l1", "lp0.5", "l1+wl1"]
    assert params.regularization.lambdas("mlp", "lp0.5") == [1.0e-5, 0.01]


def test_selection_rule_takes_fewest_synops_within_the_accuracy_drop():
    baseline = {"snn_accuracy": 0.980, "synops": 100.0, "status": "ok"}
    rows = [
        {"point": "a", "snn_accuracy": 0.979, "synops": 50.0, "status": "ok"},   # drop 0.1 pts
        {"point": "b", "snn_accuracy": 0.976, "synops": 20.0, "status": "ok"},   # drop 0.4 pts
        {"point": "c", "snn_accuracy": 0.970, "synops": 5.0, "status": "ok"},    # drop 1.0 pts: excluded
        {"point": "d", "snn_accuracy": None, "synops": 1.0, "status": "diverged"},
    ]
    assert conversion_results.select_best(rows, baseline, max_drop=0.5)["point"] == "b"
    assert conversion_results.select_best(rows, baseline, max_drop=0.05) is None


def test_accuracy_synops_curve_auc_by_hand():
    rows = [{"synops": 100.0, "snn_accuracy": 0.9, "status": "ok"},
            {"synops": 50.0, "snn_accuracy": 0.9, "status": "ok"}]
    curve = conversion_results.accuracy_synops_curve(rows, max_synops=100.0, chance=0.1)
    # points (0, .1), (.5, .9), (1, .9): area = .5*(.1+.9)/2 + .5*.9 = .25 + .45 = .70
    assert curve["x"] == [0.0, 0.5, 1.0]
    assert curve["auc"] == pytest.approx(0.70)
    assert curve["auc_smoothed"] == pytest.approx(0.70)


def test_smoothing_makes_the_curve_monotone():
    rows = [{"synops": 20.0, "snn_accuracy": 0.95, "status": "ok"},
            {"synops": 60.0, "snn_accuracy": 0.85, "status": "ok"},
            {"synops": 100.0, "snn_accuracy": 0.97, "status": "ok"}]
    curve = conversion_results.accuracy_synops_curve(rows, max_synops=100.0, chance=0.1)
    ys = curve["y_smoothed"]
    assert all(a <= b + 1e-12 for a, b in zip(ys, ys[1:]))
    # isotonic pools (.2, .95) and (.6, .85) into their mean .90
    assert ys == pytest.approx([0.1, 0.9, 0.9, 0.97])


def test_percent_change_is_undefined_for_a_zero_baseline():
    assert common.percent_change(25.0, 100.0) == pytest.approx(-75.0)
    assert common.percent_change(5.0, 0.0) is None


def test_a_diverged_baseline_selects_nothing():
    rows = [{"point": "a", "snn_accuracy": 0.9, "synops": 5.0, "status": "ok"}]
    assert conversion_results.select_best(rows, {"status": "diverged"}, max_drop=0.5) is None


def test_a_diverged_baseline_gives_no_change_and_marks_every_row():
    baseline = {"point": "baseline", "regularizer": "none", "status": "diverged", "spikes": None,
                "snn_accuracy": None}
    point = {"point": "l1-0.1", "regularizer": "l1", "status": "ok", "spikes": 50.0, "synops": 10.0,
             "snn_accuracy": 0.9, "dnn_accuracy": 0.9, "num_classes": 10}
    conversion_results._with_changes([baseline, point], baseline)
    assert point["baseline_diverged"] is True and baseline["baseline_diverged"] is True
    assert point["spikes_change_pct"] is None and point["snn_accuracy_delta_pts"] is None


def test_evaluate_writes_energy_per_point_and_aggregate_compares_it(tmp_path, monkeypatch):
    """digits MLP, baseline and one L1 point, T = 6, Bernoulli input: energy per point (both
    models, SNN and DNN, per layer), the ops SNN energy rebuilt from the record by hand, and
    the aggregate's changes vs the baseline, ratios, break-even and DVC metrics."""
    import torch

    from lowspike.energy import NetworkActivity

    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    params = validate_params({
        "data": {"datasets": ["digits"]},
        "regularization": {"datasets": ["digits"], "archs": ["mlp"], "points": {"mlp": ["l1-0.001"], "lenet5": []},
                           "train": {"lr": 1.0e-2, "batch_size": 64, "max_epochs": 2, "patience": 2}},
        "simulation": {"timesteps": 6, "input_coding": "bernoulli"},
        "tracking": {"enabled": False},
    })
    write_prepared(load_raw("digits", params.data), tmp_path / "data/prepared/digits")
    for point in conversion_points.grid(params, "digits", "mlp"):
        conversion_train.train_point(params, point)
    conversion_snn.convert_all(params, "digits", "mlp")
    conversion_snn.simulate_all(params, "digits", "mlp")
    seen = {}
    conversion_snn.evaluate_all(params, "digits", "mlp", on_point=lambda name, record: seen.setdefault(name, record))

    sim = read_json(tmp_path / "runs/sim/digits/mlp/baseline/simulation.json")
    assert sum(sim["synops_per_layer"].values()) == pytest.approx(sim["synops"], rel=1e-12)
    assert sim["synops_per_layer"]["input"] > 0 and sim["synops_per_layer"]["if3"] == 0.0
    record = read_json(tmp_path / "runs/eval/digits/mlp/baseline/evaluate.json")
    assert set(seen) == {"baseline", "l1-0.001"} and set(conversion_results.UNTRACKED_RECORD_KEYS) <= set(record)
    activity = NetworkActivity.from_dict(record["activity"])
    assert [layer.input_binary for layer in activity.layers] == [True, True, True]
    assert activity.layers[0].input_events == pytest.approx(sim["input_events"])
    # ops, fp32: every SynOp 0.9 pJ, every non-zero bias 0.9 pJ per step; no MAC (binary input)
    biases = sum(layer.bias_outputs for layer in activity.layers) * 6
    assert record["energy"]["ops"]["snn_j"] == pytest.approx(0.9e-12 * (record["synops"] + biases), rel=1e-9)
    dense_macs = sum(layer.dense_macs for layer in activity.layers)
    assert record["energy"]["ops"]["dnn_dense_j"] == pytest.approx(
        4.6e-12 * dense_macs + 0.9e-12 * biases / 6, rel=1e-12)
    # zero-skipping DNN: EFLOPS = effective MACs + non-zero biases
    assert record["energy"]["ops"]["dnn_effective_j"] == pytest.approx(
        4.6e-12 * (record["eflops"] - biases / 6) + 0.9e-12 * biases / 6, rel=1e-9)
    for model in ("ops", "lemaire"):
        figures = record["energy"][model]
        assert figures["snn_j"] == pytest.approx(sum(figures["per_layer_j"]["snn"].values()))
        assert list(figures["per_layer_j"]["snn"]) == list(record["eflops_per_layer"])
        assert figures["snn_over_dnn_dense"] == pytest.approx(figures["snn_j"] / figures["dnn_dense_j"])

    conversion_results.write_aggregate(params, tmp_path / "results/conversion")
    result = read_json(tmp_path / "results/conversion/results.json")
    baseline, other = sorted(result["rows"], key=lambda r: r["point"] != "baseline")
    assert baseline["energy_ops_snn_change_pct"] == 0.0 and baseline["energy_lemaire_snn_change_pct"] == 0.0
    assert "activity" not in baseline and baseline["energy_terms"]["lemaire"]["snn"]["memory_params"] > 0
    assert other["energy_ops_snn_change_pct"] == pytest.approx(
        100 * (other["energy_ops_snn_j"] / baseline["energy_ops_snn_j"] - 1))
    assert other["energy_ops_snn_cheaper_than_dnn_dense"] == (
        other["energy_ops_snn_j"] < other["energy_ops_dnn_dense_j"])
    assert {(b["model"], b["reference"]) for b in result["break_even"]} == {
        ("ops", "dnn_dense"), ("ops", "dnn_effective"), ("lemaire", "dnn_dense")}
    metrics = read_json(tmp_path / "results/conversion/metrics/digits-mlp-baseline.json")
    assert metrics["lemaire_uj"] == pytest.approx(baseline["energy_lemaire_snn_j"] * 1e6)
    assert metrics["ops_snn_over_dnn"] == baseline["energy_ops_snn_over_dnn_dense"]
    csv_header = (tmp_path / "results/conversion/results.csv").read_text().splitlines()[0]
    assert "energy_lemaire_snn_over_dnn_dense" in csv_header


def test_aggregate_rows_keep_energy_term_totals_but_not_the_bulky_records():
    record = {"point": "baseline", "activity": {"timesteps": 1, "layers": []},
              "energy_breakdown": {"ops": {"snn": {"terms_j": {"mac": 1.0, "ac": 2.0},
                                                   "layers": {"fc": {"mac": 1.0, "ac": 2.0}}}}}}
    assert conversion_results.slim_point_record(record) == {"point": "baseline",
                                              "energy_terms": {"ops": {"snn": {"mac": 1.0, "ac": 2.0}}}}
