"""Energy of the distillation study: per-layer records from the evaluation's own forward passes,
a silent student's defined energies, the aggregate's energy deltas, teacher ratios and
break-even spikerates on hand-made records, and the MLflow metrics of an evaluation."""

import csv
import math

import pytest
import torch
from torch import nn

from lowspike.artifacts import read_json, write_json
from lowspike.config import ParamsError
from lowspike.params import validate_params
from lowspike.data.loading import SplitTensors
from lowspike.energy import break_even_from_energies
from lowspike.metrics import student_layer_activity
from lowspike.models import build_student
from lowspike.studies import distillation_eval
from lowspike.studies import distillation_results

torch.set_num_threads(1)
NJ = 1.0e-9


def lively_sres8() -> nn.Module:
    """SRes-8 on 6 x 8 maps, width 0.25, LIF, T = 2, weights scaled up so that every layer spikes."""
    torch.manual_seed(0)
    model = build_student("sres8", input_shape=(1, 6, 8), num_classes=3, neuron="lif", beta=0.5, timesteps=2,
                          width=0.25)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv1d):
                module.weight.mul_(4.0)
    return model.eval()


def test_measure_student_records_each_layer_from_its_own_forward_passes():
    model = lively_sres8()
    x = torch.rand(7, 1, 6, 8)
    metrics = distillation_eval.measure_student(model, SplitTensors(x, torch.zeros(7, dtype=torch.long)), batch_size=3)
    assert metrics["layers"] == student_layer_activity(model, x, batch_size=7)
    assert [r["kind"] for r in metrics["layers"]].count("residual") == 3
    spikes = sum(r["output_spikes"] for r in metrics["layers"])
    assert spikes == pytest.approx(metrics["total_spikes"], rel=1e-12) and spikes > 0
    energy = distillation_eval.student_energy(metrics["layers"], validate_params({}).energy)
    assert energy["energy"]["spikerate"] == pytest.approx(metrics["spikerate"], rel=1e-12)
    for model_name in ("ops", "lemaire"):
        figures = energy["energy"][model_name]
        assert figures["snn_over_dnn_dense"] == pytest.approx(figures["snn_j"] / figures["dnn_dense_j"])
        assert set(figures["per_layer_j"]["snn"]) == {r["name"] for r in metrics["layers"]}
        assert energy["energy_breakdown"][model_name]["snn"]["layers"]["blocks.0.shortcut"]
    assert energy["energy"]["lemaire"]["per_layer_j"]["snn"]["blocks.0.shortcut"] > 0


def test_a_silent_student_has_defined_energies_and_the_same_dnn():
    """Zero input through a fresh batch norm (beta 0, running mean 0) and bias-free convolutions:
    no current, no spike anywhere."""
    model = lively_sres8()
    cfg = validate_params({}).energy
    labels = torch.zeros(4, dtype=torch.long)
    silent = distillation_eval.measure_student(model, SplitTensors(torch.zeros(4, 1, 6, 8), labels), batch_size=4)
    live = distillation_eval.measure_student(model, SplitTensors(torch.rand(4, 1, 6, 8), labels), batch_size=4)
    assert silent["total_spikes"] == 0.0 and live["total_spikes"] > 0
    quiet = distillation_eval.student_energy(silent["layers"], cfg)["energy"]
    loud = distillation_eval.student_energy(live["layers"], cfg)["energy"]
    assert quiet["spikerate"] == 0.0
    for model_name in ("ops", "lemaire"):
        figures = quiet[model_name]
        assert figures["snn_j"] == figures["snn_silent_j"] and 0 < figures["snn_j"] < loud[model_name]["snn_j"]
        assert math.isfinite(figures["snn_over_dnn_dense"]) and figures["break_even_spikerate_dense"] is None
        assert figures["dnn_dense_j"] == loud[model_name]["dnn_dense_j"]
        assert figures["per_layer_j"]["dnn_dense"] == loud[model_name]["per_layer_j"]["dnn_dense"]


# ------------------------------------------------------------------ aggregate, by hand

def energy_summary(spikerate: float, snn: float, silent: float, dnn: float) -> dict:
    """An ``energy`` summary as evaluate_energy writes it (ops only), energies in nJ."""
    return {"spikerate": spikerate, "ops": {
        "snn_j": snn * NJ, "dnn_dense_j": dnn * NJ, "dnn_effective_j": None, "snn_silent_j": silent * NJ,
        "snn_over_dnn_dense": snn / dnn, "break_even_spikerate_dense": break_even_from_energies(spikerate, snn, silent, dnn),
        "snn_over_dnn_effective": None, "break_even_spikerate_effective": None,
        "per_layer_j": {"snn": {"conv1": snn * NJ}, "dnn_dense": {"conv1": dnn * NJ}}}}


STUDENTS = {  # (run, seed): spikerate, SNN nJ, silent SNN nJ; the DNN counterpart costs 20 nJ
    ("baseline", 0): (2.0, 10.0, 6.0), ("baseline", 1): (2.0, 12.0, 6.0),
    ("act-l1-0.1", 0): (1.0, 8.0, 6.0), ("act-l1-0.1", 1): (1.5, 9.0, 6.0),
}


def write_study(root) -> None:
    """Two seeds of a baseline and an activation-regularized student (energies above), a third
    seed where the regularized student diverged (no energy), and a teacher of 100 nJ dense,
    40 nJ zero-skipping."""
    for (run, seed), (rate, snn, silent) in STUDENTS.items():
        write_json(root / "runs/student_eval/mnist5k" / run / f"seed{seed}" / "evaluate.json", {
            "dataset": "mnist5k", "run": run, "seed": seed, "model": "scnn", "status": "ok", "timesteps": 10,
            "method": "baseline" if run == "baseline" else "activation", "accuracy": 0.9, "spikerate": rate,
            "total_spikes": rate * 100, "layers": [{"name": "conv1"}],
            "energy": energy_summary(rate, snn, silent, 20.0),
            "energy_breakdown": {"ops": {"snn": {"terms_j": {"ac": snn * NJ}, "layers": {}}}}})
    write_json(root / "runs/student_eval/mnist5k/baseline/seed2/evaluate.json", {
        "dataset": "mnist5k", "run": "baseline", "seed": 2, "model": "scnn", "status": "ok", "timesteps": 10,
        "method": "baseline", "accuracy": 0.9, "spikerate": 2.0, "total_spikes": 200.0,
        "energy": energy_summary(2.0, 10.0, 6.0, 20.0)})
    write_json(root / "runs/student_eval/mnist5k/act-l1-0.1/seed2/evaluate.json", {
        "dataset": "mnist5k", "run": "act-l1-0.1", "seed": 2, "model": "scnn", "status": "diverged",
        "method": "activation", "accuracy": 0.1, "spikerate": 0.0, "total_spikes": 0.0, "timesteps": 10})
    write_json(root / "runs/teacher/mnist5k/train.json",
               {"dataset": "mnist5k", "model": "vgg13", "width": 0.25, "parameters": 1000, "status": "ok",
                "accuracy": 0.99, "history": []})
    write_json(root / "runs/student_eval/mnist5k/teacher/evaluate.json", {
        "dataset": "mnist5k", "model": "vgg13", "samples": 10, "layers": [{"name": "features.0"}],
        "energy": {"ops": {"dnn_dense_j": 100 * NJ, "dnn_effective_j": 40 * NJ, "per_layer_j": {}}},
        "energy_breakdown": {"ops": {"dnn_dense": {"terms_j": {"mac": 100 * NJ}, "layers": {}}}}})


def study_params():
    return validate_params({"energy": {"models": ["ops"]}, "distillation": {
        "datasets": ["mnist5k"], "seeds": [0, 1, 2],
        "grids": {"mnist5k": {"mse": {"alphas": []}, "soft_targets": {"taus": []}, "heterogeneous": {"tau_s": [], "tau_t": []},
                  "activation": {"l1": [0.1], "l2": []}, "logits": {"l2": [], "l2sq": []},
                  "combined": {"tau_s": [], "tau_t": [], "norms": [], "lambdas": []}}}}})


def test_aggregate_energy_deltas_teacher_ratios_and_break_even_by_hand(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_study(tmp_path)
    params = study_params()
    distillation_results.write_aggregate(params, "results/distillation")
    result = read_json(tmp_path / "results/distillation/results.json")

    row = next(r for r in result["rows"] if (r["run"], r["seed"]) == ("act-l1-0.1", 0))
    assert "layers" not in row and "energy_breakdown" not in row and row["energy_terms"] == {"ops": {"snn": {"ac": 8 * NJ}}}
    assert row["energy_ops_snn_j"] == 8 * NJ and "energy_ops_dnn_effective_j" not in row
    assert row["delta_energy_ops_snn"] == pytest.approx(-0.2)  # (8 - 10) / 10, Eq. 13 on energy
    assert row["energy_ops_snn_over_teacher_dense"] == pytest.approx(0.08)  # 8 / 100
    assert row["energy_ops_snn_over_teacher_effective"] == pytest.approx(0.2)  # 8 / 40
    # r* = r (E_teacher - E_0) / (E - E_0) = 1.0 * (100 - 6) / (8 - 6)
    assert row["energy_ops_break_even_spikerate_teacher_dense"] == pytest.approx(47.0)

    act = next(c for c in result["configurations"] if c["run"] == "act-l1-0.1")
    assert (act["seeds"], act["diverged"]) == (3, 1)
    # seeds 0 and 1 (seed 2 diverged): (8 - 10) / 10 = -0.2 and (9 - 12) / 12 = -0.25
    assert act["delta_energy_ops_snn_mean"] == pytest.approx(-0.225)
    assert act["delta_energy_ops_snn_std"] == pytest.approx(math.sqrt(2) * 0.025)
    assert act["energy_ops_snn_j_mean"] == pytest.approx(8.5 * NJ)
    assert act["energy_ops_snn_over_teacher_dense_mean"] == pytest.approx(0.085)
    assert act["energy_ops_snn_over_dnn_dense_mean"] == pytest.approx(8.5 / 20)
    baseline = next(c for c in result["configurations"] if c["run"] == "baseline")
    assert baseline["delta_energy_ops_snn_mean"] == 0.0 and baseline["energy_ops_snn_j_mean"] == pytest.approx(
        32 / 3 * NJ)
    assert result["best"]["mnist5k"]["ActReg"]["delta_energy_ops_snn_mean"] == pytest.approx(-0.225)

    teacher = result["teachers"][0]
    assert teacher["energy_ops_dnn_dense_j"] == 100 * NJ and teacher["energy_ops_dnn_effective_j"] == 40 * NJ
    assert teacher["energy_terms"] == {"ops": {"dnn_dense": {"mac": 100 * NJ}}} and "layers" not in teacher

    break_even = {b["reference"]: b for b in result["break_even"]}
    assert set(break_even) == {"dnn_dense", "teacher_dense", "teacher_effective"}
    # own DNN: 2 (20 - 6) / (10 - 6) = 7, 2 (14) / 6 and 7 again -> mean 6.2222
    assert break_even["dnn_dense"]["break_even_spikerate"] == pytest.approx((7 + 14 / 3 + 7) / 3)
    # teacher, dense: 2 (94) / 4 = 47, 2 (94) / 6 = 31.333, 47 -> mean
    assert break_even["teacher_dense"]["break_even_spikerate"] == pytest.approx((47 + 94 / 3 + 47) / 3)
    assert break_even["teacher_effective"]["break_even_spikerate"] == pytest.approx((17 + 34 / 3 + 17) / 3)
    assert break_even["teacher_dense"] | {"break_even_spikerate": 0, "break_even_spikerate_std": 0} == {
        "dataset": "mnist5k", "arch": "scnn", "model": "ops", "reference": "teacher_dense",
        "break_even_spikerate": 0, "break_even_spikerate_std": 0, "seeds": 3, "baseline_spikerate": 2.0,
        "timesteps": 10, "baseline_snn_j": pytest.approx(32 / 3 * NJ), "dnn_j": 100 * NJ}

    metrics = tmp_path / "results/distillation/metrics"
    teacher = read_json(metrics / "mnist5k-teacher.json")
    assert teacher["accuracy"] == 0.99 and teacher["ops_uj"] == pytest.approx(100 * NJ * 1e6)
    baseline_row = read_json(metrics / "mnist5k-baseline.json")
    assert baseline_row["ops_uj"] == pytest.approx(32 / 3 * NJ * 1e6)
    assert baseline_row["ops_over_teacher"] == pytest.approx(32 / 300)
    best = read_json(metrics / "mnist5k-best-ActReg.json")
    assert best["delta_ops_pct"] == pytest.approx(-22.5)
    assert best["ops_over_teacher"] == pytest.approx(0.085)
    with open(tmp_path / "results/distillation/results.csv") as handle:
        header = next(csv.reader(handle))
    assert {"energy_ops_snn_j", "delta_energy_ops_snn", "energy_ops_snn_over_teacher_dense"} <= set(header)


def test_a_silent_baseline_leaves_energy_deltas_defined(tmp_path, monkeypatch):
    """A silent SNN still pays its static terms: its energy is no zero to divide by."""
    monkeypatch.chdir(tmp_path)
    write_study(tmp_path)
    path = tmp_path / "runs/student_eval/mnist5k/baseline/seed0/evaluate.json"
    record = read_json(path)
    record.update({"spikerate": 0.0, "energy": energy_summary(0.0, 6.0, 6.0, 20.0)})
    write_json(path, record)
    result = distillation_results.aggregate(study_params())
    row = next(r for r in result["rows"] if (r["run"], r["seed"]) == ("act-l1-0.1", 0))
    assert row["delta_spikerate"] is None and row["delta_energy_ops_snn"] == pytest.approx(2 / 6)
    silent = next(r for r in result["rows"] if (r["run"], r["seed"]) == ("baseline", 0))
    assert silent["energy_ops_break_even_spikerate_teacher_dense"] is None  # no slope
    break_even = next(b for b in result["break_even"] if b["reference"] == "dnn_dense")
    assert break_even["seeds"] == 2 and break_even["break_even_spikerate"] == pytest.approx((14 / 3 + 7) / 2)


def test_evaluation_metrics_hold_the_energies_and_neurobench():
    record = {"run": "baseline", "seed": 0, "accuracy": 0.9, "spikerate": 2.0, "total_spikes": 200.0,
              "energy": energy_summary(2.0, 10.0, 6.0, 20.0),
              "neurobench": {"neurobench": {"ActivationSparsity": 0.8, "SynapticOperations": {"Effective_ACs": 5.0}}}}
    teacher = {"energy": {"ops": {"dnn_dense_j": 100 * NJ, "dnn_effective_j": 40 * NJ, "per_layer_j": {}}}}
    metrics = distillation_eval.evaluation_metrics(distillation_eval.DatasetEvaluation(teacher, [record]))
    assert metrics["teacher"] == {"energy_ops_dnn_dense_j": 100 * NJ, "energy_ops_dnn_effective_j": 40 * NJ}
    student = metrics["baseline.seed0"]
    assert student["energy_ops_snn_j"] == 10 * NJ and student["energy_ops_break_even_spikerate_dense"] == 7.0
    assert "energy_ops_dnn_effective_j" not in student and student["accuracy"] == 0.9
    assert student["neurobench"]["SynapticOperations"]["Effective_ACs"] == 5.0
    from lowspike.tracking import flatten

    assert flatten(metrics)["baseline.seed0.energy_ops_snn_over_dnn_dense"] == 0.5


def test_neurobench_runs_on_the_first_samples_or_not_at_all():
    with pytest.raises(ParamsError, match=r"distillation\.neurobench_samples: got -1"):
        validate_params({"distillation": {"neurobench_samples": -1}})
    model = lively_sres8()
    data = SplitTensors(torch.rand(5, 1, 6, 8), torch.tensor([0, 1, 2, 0, 1]))
    assert distillation_eval.neurobench_subset(model, data, 0) is None
    report = distillation_eval.neurobench_subset(model, data, 3)
    assert report["samples"] == 3
    first = student_layer_activity(model, data.inputs[:3])
    assert report["lowspike"]["SynOps"] == pytest.approx(sum(r["synops"] for r in first))
    assert distillation_eval.neurobench_subset(model, data, 256)["samples"] == 5  # the whole split
