"""Direct-training study bookkeeping: run names, grid expansion, Eq. 11/13 deltas."""

import pytest
import torch

from lowspike.artifacts import read_json, write_json
from lowspike.config import ParamsError
from lowspike.params import validate_params
from lowspike.studies import common
from lowspike import distillation
from lowspike.studies import distillation_eval
from lowspike.studies import distillation_results
from lowspike.studies import distillation_train


def test_grid_expansion_and_names():
    params = validate_params({"distillation": {
        "datasets": ["mnist5k"], "seeds": [0, 1],
        "grids": {"mnist5k": {"mse": {"alphas": [0.5]}, "soft_targets": {"taus": [4.0]},
                  "heterogeneous": {"tau_s": [1.0], "tau_t": [4.0, 8.0]},
                  "activation": {"l1": [0.1], "l2": []},
                  "logits": {"l2": [], "l2sq": [0.01]},
                  "combined": {"tau_s": [2.0], "tau_t": [8.0], "norms": ["l1"], "lambdas": [0.5]},
                  "feature": {"weights": [0.5, 2.0]},
                  "feature_act": {"weights": [1.0], "norms": ["l1", "l2"], "lambdas": [2.0]}}}}})
    runs = distillation.student_runs(params, "mnist5k")
    first = [r for r in runs if r.seed == 0]
    assert [r.name for r in first] == ["baseline", "mse-a0.5", "st-t4.0", "het-s1.0-t4.0", "het-s1.0-t8.0",
                                       "act-l1-0.1", "log-l2sq-0.01", "het-s2.0-t8.0+act-l1-0.5", "feat-w0.5",
                                       "feat-w2.0", "feat-w1.0+act-l1-2.0", "feat-w1.0+act-l2-2.0"]
    # the baseline with each of distillation.baseline_seeds (0, 1, 2), the 11 settings with each of seeds
    assert len(runs) == 3 + 11 * 2
    assert [r.seed for r in runs if r.method == "baseline"] == [0, 1, 2]
    assert str(first[3].folder()) == "runs/student/mnist5k/het-s1.0-t4.0/seed0"
    assert [r.uses_teacher for r in first] == [False, True, True, True, True, False, False, True,
                                               True, True, True, True]
    assert [r.uses_hints for r in first] == [False] * 8 + [True] * 4


def test_a_grid_with_seeds_of_its_own_trains_its_configurations_with_them():
    params = validate_params({"distillation": {"datasets": ["mnist5k"], "seeds": [0], "baseline_seeds": [0, 1, 2],
                                               "grids": {"mnist5k": {"logits": {"l2": [0.1, 1.0], "l2sq": [],
                                                                                "seeds": [0, 2]},
                                                                     "mse": {"alphas": [0.5]}}}}})
    runs = distillation.student_runs(params, "mnist5k")
    assert [(r.name, r.seed) for r in runs] == [
        ("baseline", 0), ("baseline", 1), ("baseline", 2), ("mse-a0.5", 0),
        ("log-l2-0.1", 0), ("log-l2-1.0", 0), ("log-l2-0.1", 2), ("log-l2-1.0", 2)]
    distillation.check_run(params, distillation.run_from_args("mnist5k", "logits", 2, norm="l2", lam=1.0))
    with pytest.raises(ParamsError, match="mse-a0.5 seed 2: not in distillation.grids.mnist5k"):
        distillation.check_run(params, distillation.run_from_args("mnist5k", "mse", 2, alpha=0.5))


def test_run_from_command_line_matches_the_grid_entry():
    params = validate_params({"distillation": {"datasets": ["mnist5k"], "seeds": [3], "baseline_seeds": [3], "grids": {
        "mnist5k": {"mse": {"alphas": [0.1]}, "soft_targets": {"taus": [2.0]},
                    "heterogeneous": {"tau_s": [1.0], "tau_t": [8.0]}, "activation": {"l1": [2.0], "l2": [5.0]},
                    "logits": {"l2": [5.0], "l2sq": [0.1]},
                    "combined": {"tau_s": [1.0], "tau_t": [8.0], "norms": ["l1"], "lambdas": [1.0]},
                    "feature": {"weights": [1.0]}, "feature_act": {"weights": [1.0], "norms": ["l1"], "lambdas": [2.0]}}}}})
    grid = distillation.student_runs(params, "mnist5k")
    assert {r.method for r in grid} == set(distillation.METHODS)
    for run in grid:
        rebuilt = distillation.run_from_args(run.dataset, run.method, run.seed, **run.setting)
        assert rebuilt == run and rebuilt.name == run.name
        distillation.check_run(params, rebuilt)
    with pytest.raises(ParamsError, match="not in distillation.grids.mnist5k"):
        distillation.check_run(params, distillation.run_from_args("mnist5k", "soft_targets", 3, tau=123.0))
    with pytest.raises(ParamsError, match="--method heterogeneous: needs --tau-t"):
        distillation.run_from_args("mnist5k", "heterogeneous", 0, tau_s=1.0)
    with pytest.raises(ParamsError, match="--method feature_act: needs --norm, --lam"):
        distillation.run_from_args("mnist5k", "feature_act", 0, weight=1.0)


def test_relative_delta_eq_11_13():
    assert common.relative_delta(0.5, 2.0) == pytest.approx(-0.75)
    assert common.relative_delta(0.5, 0.0) is None
    assert common.relative_delta(None, 1.0) is None


def test_aggregate_deltas_against_same_seed_baseline_and_seed_statistics(tmp_path):
    params = validate_params({"distillation": {
        "datasets": ["mnist5k"], "seeds": [0, 1], "baseline_seeds": [0, 1],
        "grids": {"mnist5k": {"mse": {"alphas": []}, "soft_targets": {"taus": []},
                  "heterogeneous": {"tau_s": [], "tau_t": []},
                  "activation": {"l1": [0.1], "l2": []}, "logits": {"l2": [], "l2sq": []}}}}})
    root = tmp_path / "student_eval" / "mnist5k"
    values = {("baseline", 0): (0.98, 2.0), ("baseline", 1): (0.96, 4.0),
              ("act-l1-0.1", 0): (0.98 * 0.99, 1.0), ("act-l1-0.1", 1): (0.96 * 0.97, 1.0)}
    for (run, seed), (acc, rate) in values.items():
        write_json(root / run / f"seed{seed}" / "evaluate.json", {
            "dataset": "mnist5k", "run": run, "seed": seed, "method": "baseline" if run == "baseline" else "activation",
            "accuracy": acc, "spikerate": rate, "total_spikes": rate * 100, "status": "ok",
            "spikerate_per_layer": {"conv1": rate, "conv2": 0.0}})
    result = distillation_results.aggregate(params, eval_root=tmp_path / "student_eval", teacher_root=tmp_path / "teacher")
    act = next(c for c in result["configurations"] if c["run"] == "act-l1-0.1")
    # spikerate deltas: seed 0 (1-2)/2 = -0.5, seed 1 (1-4)/4 = -0.75 -> mean -0.625
    assert act["delta_spikerate_mean"] == pytest.approx(-0.625)
    assert act["delta_accuracy_mean"] == pytest.approx(-0.02)
    assert act["delta_spikerate_per_layer_mean"]["conv2"] is None
    best = distillation_results.best_per_family(result["configurations"], "mnist5k", max_accuracy_loss=0.05)
    assert best["ActReg"]["run"] == "act-l1-0.1"


# ------------------------------------------- spike counting and losses on a hand-built student

class _Out:
    def __init__(self, logits, spikes, readout):
        self.logits, self.spikes, self.readout = logits, spikes, readout


class HandBuiltStudent(torch.nn.Module):
    """Two IF layers (snntorch.Leaky, beta 1, threshold 1) fed constant currents, T = 4.

    Layer ``a`` (2 neurons) gets the input's two features as currents; layer ``b`` (1 neuron)
    gets 0.6 when its sample is of class 1, else 0. Readout: the layer-``a`` spikes as logits.
    """

    timesteps = 4
    spiking_layer_names = ["a", "b"]

    def __init__(self):
        super().__init__()
        import snntorch

        self.scale = torch.nn.Parameter(torch.ones(()))
        self.a, self.b = snntorch.Leaky(beta=1.0), snntorch.Leaky(beta=1.0)

    def neuron_counts(self):
        return [2, 1]

    def forward(self, x):
        mem_a = torch.zeros_like(x)
        mem_b = torch.zeros(x.shape[0], 1)
        spikes_a, spikes_b = [], []
        for _ in range(self.timesteps):
            s_a, mem_a = self.a(x * self.scale, mem_a)
            s_b, mem_b = self.b(0.6 * (x[:, 1:] > 0).float(), mem_b)
            spikes_a.append(s_a)
            spikes_b.append(s_b)
        spikes = [torch.stack(spikes_a), torch.stack(spikes_b)]
        readout = spikes[0]
        return _Out(readout.mean(0), spikes, readout)


def test_measure_student_counts_spikes_of_a_hand_built_network():
    from lowspike.data.loading import SplitTensors

    # snntorch subtracts the threshold one step after a spike; strict v > 1 fires.
    # current 0.6: v = .6, 1.2 (spike), .8, 1.4 (spike) -> 2 spikes; 1.5: v = 1.5, 2.0, 2.5, 3.0 -> 4; 0 -> 0
    x = torch.tensor([[1.5, 0.6], [0.6, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 0, 1])
    model = HandBuiltStudent()
    metrics = distillation_eval.measure_student(model, SplitTensors(x, y), batch_size=2)
    # layer a: sample0 4+2, sample1 2+0, sample2 0 -> 8 / 3 samples ; layer b: sample0 2 spikes -> 2 / 3
    assert metrics["spikes_per_layer"] == pytest.approx({"a": 8 / 3, "b": 2 / 3})
    assert metrics["total_spikes"] == pytest.approx(10 / 3)
    assert metrics["spikerate"] == pytest.approx(10 / 9)
    assert metrics["spikerate_per_timestep"] == pytest.approx(10 / 9 / 4)
    assert metrics["spikerate_per_layer"] == pytest.approx({"a": 4 / 3, "b": 2 / 3})
    # logits: sample0 (4/4, 2/4) -> class 0 right; sample1 (2/4, 0) -> 0 right; sample2 tie (0, 0) -> 0 wrong
    assert metrics["accuracy"] == pytest.approx(2 / 3)


def test_silent_student_has_zero_spikerate_and_chance_metrics():
    from lowspike.data.loading import SplitTensors

    x = torch.zeros(4, 2)
    metrics = distillation_eval.measure_student(HandBuiltStudent(), SplitTensors(x, torch.tensor([0, 1, 0, 1])), 4)
    assert metrics["total_spikes"] == 0.0 and metrics["spikerate"] == 0.0
    assert metrics["spikerate_per_layer"] == {"a": 0.0, "b": 0.0}
    assert metrics["accuracy"] == pytest.approx(0.5)


def test_student_loss_adds_kd_and_regularization_terms():
    import math

    x = torch.tensor([[1.5, 0.6], [0.6, 0.0]])
    y = torch.tensor([0, 1])
    model = HandBuiltStudent()
    teacher = torch.nn.Linear(2, 2)
    with torch.no_grad():
        teacher.weight.copy_(torch.eye(2))
        teacher.bias.zero_()
    out = model(x)
    ce = torch.nn.functional.cross_entropy(out.logits, y)

    base = distillation_train.make_student_loss(distillation.StudentRun("d", "baseline", 0), alpha=0.1)(model, x, y)
    assert base.loss.item() == pytest.approx(ce.item())
    assert base.extras["spikerate"] == pytest.approx((6 + 2 + 2) / 2 / 3)

    act = distillation.StudentRun("d", "activation", 0, (("norm", "l1"), ("lam", 2.0)))
    # Eq. 9, l1: layer a (6 + 2) / 2 / (2 * 4), layer b (2 + 0) / 2 / (1 * 4)
    penalty = ((8 / 2) / 8 + (2 / 2) / 4) / 2
    assert distillation_train.make_student_loss(act, 0.1)(model, x, y).loss.item() == pytest.approx(ce.item() + 2 * penalty)

    mse = distillation.StudentRun("d", "mse", 0, (("alpha", 0.25),))
    kd = ((out.logits - x) ** 2).sum(1).mean()
    got = distillation_train.make_student_loss(mse, 0.1, teacher)(model, x, y).loss.item()
    assert got == pytest.approx(0.25 * ce.item() + 0.75 * kd.item(), rel=1e-6)

    het = distillation.StudentRun("d", "combined", 0, (("tau_s", 1.0), ("tau_t", 2.0), ("norm", "l1"), ("lam", 2.0)))
    p_t = torch.softmax(x / 2.0, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(out.logits, 1))).sum(1).mean()
    got = distillation_train.make_student_loss(het, 0.1, teacher)(model, x, y).loss.item()
    assert got == pytest.approx(0.1 * ce.item() + 0.9 * 2.0 * kl.item() + 2 * penalty, rel=1e-5)
    assert math.isfinite(got)
    with pytest.raises(ValueError, match="needs a teacher"):
        distillation_train.make_student_loss(het, 0.1)


# ------------------------------------------------ the whole study on a tiny dataset (digits)

def test_teacher_students_evaluation_and_aggregate_end_to_end_on_digits(tmp_path, monkeypatch, capsys):
    """digits' 8x8 maps read as 8 features x 8 frames by the 1-D ResNet teacher and SRes-8 student."""
    from lowspike.data import load_raw
    from lowspike.data.prepared import write_prepared

    monkeypatch.chdir(tmp_path)
    train = {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 256, "max_epochs": 2, "patience": 2}
    params = validate_params({
        "data": {"datasets": ["digits"]},
        "distillation": {
            "datasets": ["digits"], "seeds": [0], "baseline_seeds": [0],
            "setups": {"digits": {"student": "sres8", "teacher": "resnet15", "neuron": "lif", "beta": 0.5,
                                  "timesteps": 2, "student_width": 0.25, "teacher_width": 0.25,
                                  "student_train": train, "teacher_train": train}},
            "grids": {"digits": {"mse": {"alphas": []}, "soft_targets": {"taus": []},
                      "heterogeneous": {"tau_s": [1.0], "tau_t": [4.0]},
                      "activation": {"l1": [5.0], "l2": []}, "logits": {"l2": [], "l2sq": []},
                      "combined": {"tau_s": [], "tau_t": [], "norms": [], "lambdas": []}}}},
        "tracking": {"enabled": False},
    })
    write_prepared(load_raw("digits", params.data), tmp_path / "data/prepared/digits")
    teacher = distillation_train.train_teacher(params, "digits")
    assert teacher["status"] == "ok" and teacher["model"] == "resnet15"
    assert teacher["parameters"] > 0 and 0.0 <= teacher["accuracy"] <= 1.0
    runs = distillation.student_runs(params, "digits")
    assert [r.name for r in runs] == ["baseline", "het-s1.0-t4.0", "act-l1-5.0"]
    for run in runs:
        summary = distillation_train.train_student(params, run)
        assert summary["status"] == "ok" and summary["epochs_run"] == 2
        assert len(summary["history"]) == 2 and "train_spikerate" in summary["history"][0]
        record = distillation_eval.evaluate_student(params, run)
        assert record["samples"] == 359 and record["timesteps"] == 2  # 20% of 1,797 digits
        assert 0.0 <= record["spikerate"] <= 2.0
        assert sum(r["output_spikes"] for r in record["layers"]) == pytest.approx(record["total_spikes"])
        assert record["energy"]["spikerate"] == pytest.approx(record["spikerate"])
        assert 0 < record["energy"]["lemaire"]["snn_j"] and 0 < record["energy"]["ops"]["dnn_dense_j"]
        assert record["neurobench"]["samples"] == 256  # distillation.neurobench_samples
    cached = read_json(runs[1].folder() / "train.json")
    distillation_train.logits_path("digits").unlink()
    uncached = distillation_train.train_student(params, runs[1])
    assert "logits.pt is missing" in capsys.readouterr().err
    # the teacher's forward at every step gives the cached logits (up to the batch's rounding)
    assert uncached["val_accuracy"] == pytest.approx(cached["val_accuracy"], abs=0.02)
    assert uncached["history"][0]["train_loss"] == pytest.approx(cached["history"][0]["train_loss"], rel=1e-3)
    teacher_eval = distillation_eval.evaluate_teacher(params, "digits")
    assert 0 < teacher_eval["energy"]["ops"]["dnn_effective_j"] < teacher_eval["energy"]["ops"]["dnn_dense_j"]
    assert [r["kind"] for r in teacher_eval["layers"]].count("residual") == 6  # ResNet-15's shortcuts
    distillation_results.write_aggregate(params, tmp_path / "results/distillation")
    result = read_json(tmp_path / "results/distillation/results.json")
    assert [c["run"] for c in result["configurations"]] == ["baseline", "het-s1.0-t4.0", "act-l1-5.0"]
    baseline = result["configurations"][0]
    assert baseline["delta_accuracy_mean"] == 0.0 and baseline["delta_spikerate_mean"] == 0.0
    assert baseline["delta_energy_ops_snn_mean"] == 0.0 and baseline["energy_lemaire_snn_over_teacher_dense_mean"] > 0
    assert result["teachers"][0]["dataset"] == "digits"
    assert result["teachers"][0]["energy_ops_dnn_dense_j"] == teacher_eval["energy"]["ops"]["dnn_dense_j"]
    assert {(b["model"], b["reference"]) for b in result["break_even"]} == {
        ("ops", "dnn_dense"), ("ops", "teacher_dense"), ("ops", "teacher_effective"), ("lemaire", "dnn_dense"),
        ("lemaire", "teacher_dense")}
    metrics = read_json(tmp_path / "results/distillation/metrics/digits-baseline.json")
    assert metrics["lemaire_uj"] == pytest.approx(baseline["energy_lemaire_snn_j_mean"] * 1e6)
    assert read_json(tmp_path / "results/distillation/metrics/digits-teacher.json")["ops_uj"] > 0


def test_diverged_seeds_are_counted_but_left_out_of_the_means(tmp_path):
    params = validate_params({"distillation": {
        "datasets": ["mnist5k"], "seeds": [0, 1], "baseline_seeds": [0, 1],
        "grids": {"mnist5k": {"mse": {"alphas": []}, "soft_targets": {"taus": []}, "heterogeneous": {"tau_s": [], "tau_t": []},
                  "activation": {"l1": [1.0e3], "l2": []}, "logits": {"l2": [], "l2sq": []},
                  "combined": {"tau_s": [], "tau_t": [], "norms": [], "lambdas": []}}}}})
    root = tmp_path / "student_eval" / "mnist5k"
    for run, seed, acc, rate, status in [("baseline", 0, 0.9, 2.0, "ok"), ("baseline", 1, 0.9, 2.0, "ok"),
                                         ("act-l1-1000.0", 0, 0.8, 1.0, "ok"),
                                         ("act-l1-1000.0", 1, 0.1, 0.0, "diverged")]:
        write_json(root / run / f"seed{seed}" / "evaluate.json", {
            "dataset": "mnist5k", "run": run, "seed": seed, "accuracy": acc, "spikerate": rate,
            "method": "baseline" if run == "baseline" else "activation", "status": status})
    result = distillation_results.aggregate(params, eval_root=tmp_path / "student_eval", teacher_root=tmp_path / "t")
    act = next(c for c in result["configurations"] if c["run"] == "act-l1-1000.0")
    assert act["seeds"] == 2 and act["diverged"] == 1
    assert act["accuracy_mean"] == pytest.approx(0.8) and act["spikerate_mean"] == pytest.approx(1.0)


def test_a_diverged_baseline_gives_its_seed_no_delta_and_marks_its_rows(tmp_path):
    params = validate_params({"distillation": {
        "datasets": ["mnist5k"], "seeds": [0, 1], "baseline_seeds": [0, 1],
        "grids": {"mnist5k": {"mse": {"alphas": []}, "soft_targets": {"taus": []}, "heterogeneous": {"tau_s": [], "tau_t": []},
                  "activation": {"l1": [0.1], "l2": []}, "logits": {"l2": [], "l2sq": []}}}}})
    root = tmp_path / "student_eval" / "mnist5k"
    for run, seed, acc, rate, status in [("baseline", 0, 0.9, 2.0, "ok"), ("baseline", 1, 0.1, 0.0, "diverged"),
                                         ("act-l1-0.1", 0, 0.9, 1.0, "ok"), ("act-l1-0.1", 1, 0.8, 1.0, "ok")]:
        write_json(root / run / f"seed{seed}" / "evaluate.json", {
            "dataset": "mnist5k", "run": run, "seed": seed, "accuracy": acc, "spikerate": rate, "status": status,
            "method": "baseline" if run == "baseline" else "activation", "spikerate_per_layer": {"conv1": rate}})
    result = distillation_results.aggregate(params, eval_root=tmp_path / "student_eval", teacher_root=tmp_path / "t")
    rows = {(r["run"], r["seed"]): r for r in result["rows"]}
    assert rows[("act-l1-0.1", 1)]["baseline_diverged"] is True
    assert rows[("act-l1-0.1", 1)]["delta_spikerate"] is None
    assert rows[("act-l1-0.1", 1)]["delta_spikerate_per_layer"] == {"conv1": None}
    assert rows[("act-l1-0.1", 0)]["baseline_diverged"] is False
    act = next(c for c in result["configurations"] if c["run"] == "act-l1-0.1")
    assert act["baseline_diverged"] == 1
    # the mean delta is seed 0's alone: (1 - 2) / 2
    assert act["delta_spikerate_mean"] == pytest.approx(-0.5)


class _Interrupted(Exception):
    pass


def test_feature_student_saves_only_the_student_and_resumes_its_projections(tmp_path, monkeypatch):
    """A hinted student on digits (SRes-8 guided by ResNet-15): model.pt holds the student alone
    (evaluation loads it into a plain student), the resume checkpoint holds the projections, and
    a run interrupted after epoch 1 ends bit-identical to an uninterrupted one."""
    from lowspike.checkpoints import load_torch
    from lowspike.data import load_raw
    from lowspike.data.prepared import write_prepared
    from lowspike.models import count_parameters

    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    train = {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 256, "max_epochs": 3, "patience": 3}
    params = validate_params({
        "data": {"datasets": ["digits"]},
        "distillation": {
            "datasets": ["digits"], "seeds": [0], "baseline_seeds": [0],
            "setups": {"digits": {"student": "sres8", "teacher": "resnet15", "neuron": "lif", "beta": 0.5,
                                  "timesteps": 2, "student_width": 0.25, "teacher_width": 0.25,
                                  "student_train": train, "teacher_train": {**train, "max_epochs": 1}}},
            "grids": {"digits": {"mse": {"alphas": []}, "soft_targets": {"taus": []},
                      "heterogeneous": {"tau_s": [], "tau_t": []}, "activation": {"l1": [], "l2": []},
                      "logits": {"l2": [], "l2sq": []},
                      "combined": {"tau_s": [], "tau_t": [], "norms": [], "lambdas": []},
                      "feature": {"weights": [1.0]}}}},
        "tracking": {"enabled": False},
    })
    write_prepared(load_raw("digits", params.data), tmp_path / "data/prepared/digits")
    distillation_train.train_teacher(params, "digits")
    run = distillation.student_runs(params, "digits")[1]
    assert run.name == "feat-w1.0" and run.uses_teacher and run.uses_hints

    straight = distillation_train.train_student(params, run)
    assert straight["status"] == "ok" and straight["epochs_run"] == 3
    assert straight["hints"] == [["stem_spike", "stem"], ["blocks.0.spike2", "blocks.1"],
                                 ["blocks.1.spike2", "blocks.3"], ["blocks.2.spike2", "blocks.5"]]
    assert straight["hint_parameters"] == 4 * (11 * 11 + 11)  # four 1x1 convolutions, 11 -> 11 channels
    assert "train_hint" in straight["history"][0] and "val_hint" in straight["history"][0]
    saved = load_torch(run.folder() / "model.pt")["state_dict"]
    student = distillation_train.make_student(params, "digits", (1, 8, 8), 10)
    assert saved.keys() == student.state_dict().keys()
    record = distillation_eval.evaluate_student(params, run)
    assert record["parameters"] == count_parameters(student)

    def stop_at_epoch_2(entry):
        if entry["epoch"] == 2:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        distillation_train.train_student(params, run, on_epoch=stop_at_epoch_2)
    checkpoint = load_torch(tmp_path / ".cache/checkpoints/student__digits__feat-w1.0__seed0.pt")
    assert checkpoint["epoch"] == 2  # kept before the callback that stopped it ran
    assert {k for k in checkpoint["model"] if k.startswith("hints.")} == {
        f"hints.maps.{i}.{p}" for i in range(4) for p in ("weight", "bias")}
    resumed = distillation_train.train_student(params, run)
    assert resumed["resumed_from_epoch"] == 2
    assert resumed["history"] == straight["history"]
    again = load_torch(run.folder() / "model.pt")["state_dict"]
    assert all(torch.equal(again[k], saved[k]) for k in saved)


def test_spike_counts_are_the_float64_sums_exactly_in_float32_and_past_its_exact_range(monkeypatch):
    spikes = (torch.rand(10, 3, 16, 24, 24, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    reference = spikes.double().sum(dim=(0, 2, 3, 4))
    assert torch.equal(distillation_eval.spike_counts(spikes), reference)
    assert distillation_eval.spike_counts(spikes).dtype == torch.float64
    assert torch.equal(distillation_eval.spike_counts(spikes.bfloat16()), reference)
    assert distillation_eval.spike_counts(torch.ones(4, 2, 5))[0].item() == 20.0
    full = torch.ones(2 ** 12 + 1, 1, 2 ** 12)  # 2^24 + 2^12 spikes in one sample: past float32's exact range
    assert distillation_eval.spike_counts(full).item() == 2 ** 24 + 2 ** 12
    monkeypatch.setattr(distillation_eval, "FLOAT32_EXACT_COUNT", 8)  # the float64 path on a small layer
    assert torch.equal(distillation_eval.spike_counts(spikes), reference)
