"""The papers' findings computed from hand-made aggregates: each mark (holds / does not hold / not
run), the numbers quoted, and models at chance never counting."""

import pytest

from lowspike.studies.findings import FAILS, HOLDS, NOT_RUN, at_chance, conversion_findings, distillation_findings


def _row(arch, point, regularizer, snn, dnn=None, synops=1000.0, status="ok"):
    return {"dataset": "mnist5k", "arch": arch, "point": point, "regularizer": regularizer, "status": status,
            "snn_accuracy": snn, "dnn_accuracy": dnn if dnn is not None else snn, "spikes": 10.0, "synops": synops,
            "num_classes": 10}


def _selection(arch, reg, synops_pct, eflops_pct, lam=1e-3, delta=0.1):
    return {"dataset": "mnist5k", "arch": arch, "regularizer": reg, "selected": f"{reg}-{lam}", "lambda": lam,
            "synops_change_pct": synops_pct, "eflops_change_pct": eflops_pct, "snn_accuracy_delta_pts": delta}


def _curve(arch, reg, auc):
    return {"dataset": "mnist5k", "arch": arch, "regularizer": reg, "auc": auc, "auc_smoothed": auc}


CONVERSION = {
    "rows": [_row("mlp", "baseline", "none", 0.95, 0.955), _row("lenet5", "baseline", "none", 0.97, 0.99)],
    "selections": [_selection("mlp", "l1", -92.0, -30.0), _selection("mlp", "hoyer", -70.0, -75.0),
                   _selection("lenet5", "l1", -60.0, -50.0), _selection("mlp", "synops", -95.0, -31.0),
                   _selection("lenet5", "synops", -40.0, -20.0),
                   {"dataset": "mnist5k", "arch": "lenet5", "regularizer": "hoyer", "selected": None, "lambda": None}],
    "curves": [_curve("mlp", "l1", 0.95), _curve("mlp", "hoyer", 0.90), _curve("lenet5", "l1", 0.80),
               _curve("lenet5", "hoyer", 0.85)],
}


def test_conversion_findings_marks_and_numbers():
    found = {f.key: f for f in conversion_findings(CONVERSION, ["l1", "hoyer"], ["synops"], {"mlp": "MLP"})}
    # (a): MLP L1 -92% holds, LeNet-5's best is -60%: not everywhere
    assert found["a"].mark == FAILS
    assert found["a"].numbers["mnist5k/mlp"]["synops_change_pct"] == -92.0
    # (b): MLP 0.95 > 0.90 but LeNet-5 0.80 < 0.85
    assert found["b"].mark == FAILS and found["b"].numbers["mnist5k/lenet5"]["lp_family_mean_auc"] == 0.80
    # (c): hoyer on the MLP lost more EFLOPS (-75%) than SynOps (-70%): 2 of 3
    assert found["c"].mark == FAILS and found["c"].numbers == {"selected": 3, "synops_fell_more": 2}
    # (d): the MLP's SNN is 0.5 pt below its DNN, LeNet-5's 2 pts
    assert found["d"].mark == FAILS
    assert "(-0.50 pts)" in found["d"].evidence and "(-2.00 pts)" in found["d"].evidence
    # (i): synops beats the MLP's best (-95% < -92%) but not LeNet-5's (-40% vs -60%)
    assert found["i"].mark == FAILS and found["i"].beyond_paper
    assert found["i"].numbers["mnist5k/mlp"]["synops_ratio"] == pytest.approx(5 / 8)
    # (j): no joint configuration in the grid
    assert found["j"].mark == NOT_RUN


def test_conversion_findings_hold_when_every_architecture_passes():
    results = {**CONVERSION, "rows": [_row("mlp", "baseline", "none", 0.95, 0.955)],
               "selections": [_selection("mlp", "l1", -92.0, -30.0), _selection("mlp", "hoyer", -85.0, -20.0)],
               "curves": [_curve("mlp", "l1", 0.95), _curve("mlp", "hoyer", 0.90)]}
    found = {f.key: f for f in conversion_findings(results, ["l1", "hoyer"], [])}
    assert [found[k].mark for k in "abcd"] == [HOLDS] * 4


def test_a_baseline_at_chance_selects_nothing():
    results = {"rows": [_row("mlp", "baseline", "none", 0.11)], "selections": [_selection("mlp", "l1", -99.0, -5.0)],
               "curves": []}
    found = {f.key: f for f in conversion_findings(results, ["l1"], [])}
    assert found["a"].mark == FAILS and "no regularizer" in found["a"].evidence


def _config(dataset, run, method, setting=None, acc=0.96, dacc=0.0, dsr=0.0, spikes=1000.0):
    return {"dataset": dataset, "run": run, "method": method, "setting": setting or {}, "accuracy_mean": acc,
            "delta_accuracy_mean": dacc, "delta_spikerate_mean": dsr, "total_spikes_mean": spikes}


def test_distillation_findings_marks():
    configs = [
        _config("mnist5k", "baseline", "baseline"),
        _config("mnist5k", "act-l1-2.0", "activation", {"norm": "l1", "lam": 2.0}, dsr=-0.66, dacc=0.004),
        _config("mnist5k", "act-l1-9.0", "activation", {"norm": "l1", "lam": 9.0}, acc=0.10, dacc=-0.9, dsr=-1.0,
                spikes=0.0),  # collapsed: never counts
        _config("mnist5k", "het-1-4", "heterogeneous", {"tau_s": 1.0, "tau_t": 4.0}, dsr=-0.16),
        _config("mnist5k", "het-1-8", "heterogeneous", {"tau_s": 1.0, "tau_t": 8.0}, dsr=-0.37),
        _config("mnist5k", "mse", "mse", {"alpha": 0.5}, dsr=0.15),
        _config("mnist5k", "log", "logits", {"norm": "l2", "lam": 5.0}, dsr=-0.2, dacc=0.01),
        _config("mnist5k", "comb", "combined", {"tau_s": 1.0, "tau_t": 8.0, "norm": "l1", "lam": 2.0}, dsr=-0.74),
        _config("spoken-commands", "baseline", "baseline"),
        _config("spoken-commands", "act", "activation", {"norm": "l1", "lam": 1.0}, dsr=-0.30, dacc=-0.005),
    ]
    found = {f.key: f for f in distillation_findings({"configurations": configs}, ["mnist5k", "spoken-commands"],
                                                     {"mnist5k": 10, "spoken-commands": 10})}
    # (e): -66% on mnist5k (needs 50%); the collapsed -100% is ignored; (e2): -30% on spoken-commands (15%)
    assert found["e"].mark == HOLDS and "act-l1-2.0" in found["e"].evidence and "act-l1-9.0" not in found["e"].evidence
    assert "spoken" not in found["e"].evidence
    assert found["e2"].mark == HOLDS and "spoken-commands (needs <= -15%)" in found["e2"].evidence
    assert found["f"].mark == HOLDS  # -16% at tau_t 4, -37% at 8 (spoken-commands has no heterogeneous run)
    assert found["g"].mark == HOLDS  # MSE raised the spikerate
    assert found["h"].mark == HOLDS
    assert found["k"].mark == HOLDS and found["k"].beyond_paper  # -74% < -66%
    assert found["l"].mark == NOT_RUN


def test_at_chance():
    assert at_chance(0.12, 10) and not at_chance(0.16, 10) and at_chance(0.9, 10, spikes=0.0)
    assert not at_chance(None, 10)
