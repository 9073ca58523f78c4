"""The headline files (a dozen numbers per study) and the experiments view built from them."""

import json

import pytest

from lowspike.report import experiments, headline


def test_conversion_headline_names_the_largest_selected_synops_cut(conversion_results):
    data = headline.conversion_headline(conversion_results, ["ops", "lemaire"])
    assert data["schema_version"] == headline.SCHEMA_VERSION
    # mlp: l1-1e-4 is the only model within 0.5 pt (SynOps 20000 -> 8000, SNN 97.5% -> 97.3%)
    assert data["mlp_best_cut"] == "l1-0.0001"
    assert data["mlp_best_cut_synops_pct"] == -60.0
    assert data["mlp_best_cut_snn_accuracy_pts"] == pytest.approx(-0.2)
    assert data["mlp_baseline_snn_accuracy_pct"] == 97.5
    # lenet5: its only regularized model is silent (at chance): no cut, the baseline's energy
    assert data["lenet5_best_cut"] == "none" and data["lenet5_best_cut_synops_pct"] is None
    assert "lenet5_best_cut_ops_uj" in data and "lenet5_best_cut_lemaire_uj" in data
    assert len(data) == 2 + 2 * 6  # schema, findings; per architecture 6 keys
    marks = dict(part.split(" ", 1) for part in data["findings"].split(", "))
    assert set(marks) == {f["key"] for f in conversion_results["findings"]}
    assert set(marks.values()) <= {"holds", "no", "undecided", "not run"}


def test_distillation_headline_takes_the_lowest_spikerate_of_table_iii(distillation_results):
    data = headline.distillation_headline(distillation_results, ["ops", "lemaire"])
    for dataset, chosen in distillation_results["best"].items():
        prefix = f"{dataset.replace('-', '_')}_"
        picks = [c for c in chosen.values() if c.get("delta_spikerate_mean") is not None]
        if picks:
            best = min(picks, key=lambda c: c["delta_spikerate_mean"])
            assert data[f"{prefix}best_cut"] == best["run"]
            assert data[f"{prefix}best_cut_spikerate_pct"] == round(100 * best["delta_spikerate_mean"], 1)
    assert all(isinstance(v, (int, float, str)) or v is None for v in data.values())
    assert len(data) <= 16


def test_energies_are_the_cuts_or_else_the_baselines_in_microjoules():
    result = {"findings": [{"key": "a", "mark": "undecided"}],
              "rows": [{"dataset": "mnist5k", "arch": "mlp", "point": "baseline", "snn_accuracy": 0.9,
                        "energy_ops_snn_j": 2.0e-6},
                       {"dataset": "mnist5k", "arch": "lenet5", "point": "baseline", "snn_accuracy": 0.95,
                        "energy_ops_snn_j": 5.0e-6}],
              "selections": [{"dataset": "mnist5k", "arch": "mlp", "regularizer": "l1", "selected": "l1-1e-3",
                              "synops_change_pct": -50.0, "snn_accuracy_delta_pts": 0.25, "energy_ops_snn_j": 1.0e-6},
                             {"dataset": "mnist5k", "arch": "mlp", "regularizer": "hoyer", "selected": "hoyer-1e-2",
                              "synops_change_pct": -75.0, "snn_accuracy_delta_pts": -0.5,
                              "energy_ops_snn_j": 0.5e-6},
                             {"dataset": "mnist5k", "arch": "lenet5", "regularizer": "l1", "selected": None}]}
    data = headline.conversion_headline(result, ["ops"])
    assert data == {"schema_version": 1, "findings": "a undecided",
                    "mlp_baseline_snn_accuracy_pct": 90.0, "mlp_best_cut": "hoyer-1e-2", "mlp_best_cut_synops_pct": -75.0,
                    "mlp_best_cut_snn_accuracy_pts": -0.5, "mlp_best_cut_ops_uj": 0.5,
                    "lenet5_baseline_snn_accuracy_pct": 95.0, "lenet5_best_cut": "none",
                    "lenet5_best_cut_synops_pct": None, "lenet5_best_cut_snn_accuracy_pts": None,
                    "lenet5_best_cut_ops_uj": 5.0}


def _exp_show(timesteps_main: int, timesteps_exp: int) -> list[dict]:
    def data(timesteps, cut):
        return {"params": {"params.yaml": {"data": {"simulation": {"timesteps": timesteps}, "seed": 0}}},
                "metrics": {"results/conversion/headline.json": {"data": {
                    "schema_version": 1, "findings": "a holds, b no", "mlp_best_cut_synops_pct": cut}},
                    "results/conversion/metrics/mnist5k-mlp-baseline.json": {"data": {"snn_accuracy": 0.9}}}}

    return [{"rev": "workspace", "name": None, "data": data(timesteps_main, -90.0), "experiments": None},
            {"rev": "abc", "name": "main", "data": data(timesteps_main, -90.0),
             "experiments": [{"revs": [{"rev": "def", "name": "t50", "data": data(timesteps_exp, -80.5)}]}]}]


def test_exp_view_keeps_changed_params_and_headline_only():
    found = experiments.parse_exp_show(_exp_show(100, 50))
    assert [e.label for e in found] == ["workspace", "main", "t50"]
    assert experiments.changed_params(found) == ["simulation.timesteps"]
    rows = experiments.csv_rows(found)
    assert rows[0] == ["Experiment", "rev", "simulation.timesteps", "conversion findings",
                       "conversion mlp_best_cut_synops_pct"]
    assert rows[3] == ["t50", "def", "50", "a holds, b no", "-80.5"]
    text = experiments.transposed(found)
    assert "param simulation.timesteps" in text and "snn_accuracy" not in text
    assert max(len(line) for line in text.splitlines()) <= 160


def test_diff_lists_what_changed_and_refuses_other_schema_versions():
    old = {"conversion": {"schema_version": 1, "findings": "a holds, b no", "mlp_best_cut_synops_pct": -90.0},
           "distillation": {"schema_version": 1, "findings": "e holds", "baseline_accuracy_pct": 97.0}}
    new = {"conversion": {"schema_version": 1, "findings": "a holds, b holds", "mlp_best_cut_synops_pct": -80.5},
           "distillation": {"schema_version": 2, "findings": "e holds"}}
    lines = experiments.diff_lines(old, new, "main")
    assert "conversion finding b: no -> holds" in lines
    assert "conversion mlp_best_cut_synops_pct: -90 -> -80.5  (+9.5)" in lines
    assert "conversion: 2 of 3 headline values changed" in lines
    assert lines[-1] == ("distillation: headline schema 1 in main, 2 in the workspace: not comparable key by key")


def test_diff_says_in_one_line_when_the_results_schemas_differ():
    old = {"conversion": {"rows": []}, "distillation": {"schema_version": 2, "rows": []}}
    new = {"conversion": {"schema_version": 2, "rows": []}, "distillation": {"schema_version": 2, "rows": []}}
    assert experiments.results_schema_lines(old, new, "main") == [
        "conversion: results.json schema 1 in main, 2 in the workspace (keys renamed or redefined between them)"]
    assert experiments.results_schema_lines(new, new, "main") == []
