"""The papers' findings computed from hand-made aggregates and per-sample records: each mark
(holds / does not hold / undecided / not run) decided on the paired bootstrap resamples against
the baseline's seed spread, the numbers quoted, and models at chance never counting."""

import pytest

from lowspike.stats import Evidence
from lowspike.studies.common import at_chance
from lowspike.studies.curves import accuracy_synops_curve
from lowspike.studies.findings import FAILS, HOLDS, NOT_RUN, UNDECIDED, conversion_findings, distillation_findings

N = 1000


def _correct(right: int, wrong_first: int = 0) -> list[int]:
    """``right`` correct samples of N, after ``wrong_first`` wrong ones."""
    return [0] * wrong_first + [1] * right + [0] * (N - right - wrong_first)


def _counts(mean: float) -> list[int]:
    total = round(mean * N)
    return [total // N + (1 if i < total % N else 0) for i in range(N)]


class Conversion:
    """Rows, selections, curves and per-sample records of one dataset, built consistently."""

    def __init__(self):
        self.rows, self.samples, self.spread = [], {}, {}

    def point(self, arch, point, reg, snn_right, synops, eflops=500.0, dnn_right=None, lam=1e-3, snn_wrong_first=0):
        snn, dnn = snn_right / N, (dnn_right if dnn_right is not None else snn_right) / N
        self.rows.append({"dataset": "mnist5k", "arch": arch, "point": point, "regularizer": reg, "lambda": lam,
                          "status": "ok", "snn_accuracy": snn, "dnn_accuracy": dnn, "spikes": synops / 10,
                          "synops": synops, "eflops": eflops, "num_classes": 10})
        self.samples[("mnist5k", arch, point)] = {
            "snn_correct": _correct(snn_right, snn_wrong_first), "dnn_correct": _correct(round(dnn * N)),
            "spikes": _counts(synops / 10), "synops": _counts(synops), "eflops": _counts(eflops)}

    def select(self, arch, reg, point):
        row = next(r for r in self.rows if r["arch"] == arch and r["point"] == point)
        base = next(r for r in self.rows if r["arch"] == arch and r["point"] == "baseline")
        return {"dataset": "mnist5k", "arch": arch, "regularizer": reg, "selected": point, "lambda": row["lambda"],
                "synops_change_pct": 100 * (row["synops"] / base["synops"] - 1),
                "eflops_change_pct": 100 * (row["eflops"] / base["eflops"] - 1),
                "snn_accuracy_delta_pts": 100 * (row["snn_accuracy"] - base["snn_accuracy"])}

    def result(self, selections, spread=(1.0, 0.1, 0.1)):
        curves = []
        for arch in {r["arch"] for r in self.rows}:
            rows = [r for r in self.rows if r["arch"] == arch]
            base = next(r for r in rows if r["point"] == "baseline")
            for reg in {r["regularizer"] for r in rows} - {"none"}:
                curve = accuracy_synops_curve([base, *[r for r in rows if r["regularizer"] == reg]],
                                              max(r["synops"] for r in rows), 0.1)
                curves.append({"dataset": "mnist5k", "arch": arch, "regularizer": reg, **curve})
        synops, accuracy, gap = spread
        seed_spread = [{"dataset": "mnist5k", "arch": arch, "synops_pct": synops, "snn_accuracy_pts": accuracy,
                        "snn_dnn_gap_pts": gap} for arch in {r["arch"] for r in self.rows}]
        return {"rows": self.rows, "selections": selections, "curves": curves, "seed_spread": seed_spread}

    def evidence(self):
        return Evidence(self.samples, resamples=400, seed=0, level=0.95)


def _two_architectures() -> tuple[Conversion, list[dict]]:
    study = Conversion()
    study.point("mlp", "baseline", "none", 950, 20000, dnn_right=955)
    study.point("mlp", "l1-0.001", "l1", 948, 1600, eflops=350.0)  # -92% SynOps, -0.2 pt
    study.point("mlp", "hoyer-0.001", "hoyer", 948, 6000, eflops=125.0)  # -70%, EFLOPS -75%
    study.point("mlp", "synops-0.001", "synops", 948, 1000, eflops=345.0)  # -95%
    study.point("lenet5", "baseline", "none", 970, 20000, dnn_right=990)
    study.point("lenet5", "l1-0.001", "l1", 968, 8000, eflops=250.0)  # -60%
    study.point("lenet5", "hoyer-0.001", "hoyer", 969, 6000, eflops=400.0)
    study.point("lenet5", "synops-0.001", "synops", 968, 12000, eflops=400.0)  # -40%
    selections = [study.select("mlp", "l1", "l1-0.001"), study.select("mlp", "hoyer", "hoyer-0.001"),
                  study.select("mlp", "synops", "synops-0.001"), study.select("lenet5", "l1", "l1-0.001"),
                  study.select("lenet5", "hoyer", "hoyer-0.001"), study.select("lenet5", "synops", "synops-0.001")]
    return study, selections


def test_conversion_findings_marks_and_numbers():
    study, selections = _two_architectures()
    found = {f.key: f for f in conversion_findings(study.result(selections), study.evidence(), ["l1", "hoyer"],
                                                   ["synops"], {"mlp": "MLP"})}
    # (a): the MLP's L1 (-92%, -0.2 pt: wrong on 2 samples) holds unless a resample draws those 2
    # samples 5 times or more (about 5%); LeNet-5's best, Hoyer, is -70% in every resample
    assert found["a"].mark == FAILS
    assert found["a"].numbers["mnist5k/mlp"]["decision"]["mark"] == HOLDS
    assert found["a"].numbers["mnist5k/mlp"]["decision"]["support"] >= 0.95
    assert found["a"].numbers["mnist5k/lenet5"]["decision"] == {
        "mark": FAILS, "support": 0.0, "margins": [{"value": pytest.approx(-10.0), "spread": 1.0},
                                                   {"value": pytest.approx(0.4), "spread": 0.1}]}
    assert found["a"].numbers["mnist5k/mlp"]["synops_change_pct"] == pytest.approx(-92.0)
    # (c): hoyer on the MLP lost more EFLOPS (-75%) than SynOps (-70%): no resample has all three falling more
    assert found["c"].mark == FAILS and found["c"].numbers["synops_fell_more"] == 3
    # (d): the MLP's SNN is 0.5 pt below its DNN (within 1 pt, beyond the spread), LeNet-5's 2 pts
    assert found["d"].numbers["mnist5k/mlp"]["decision"]["mark"] == HOLDS
    assert found["d"].mark == FAILS and "(-0.50 pts" in found["d"].evidence and "(-2.00 pts" in found["d"].evidence
    # (i): synops beats the MLP's best (-95% < -92%) but not LeNet-5's (-40% vs -70%)
    assert found["i"].mark == FAILS and found["i"].beyond_paper
    assert found["i"].numbers["mnist5k/mlp"]["decision"]["mark"] == HOLDS
    assert found["i"].numbers["mnist5k/mlp"]["synops_ratio"] == pytest.approx(5 / 8)
    # (j): no joint configuration in the grid
    assert found["j"].mark == NOT_RUN


def test_conversion_findings_hold_when_every_architecture_passes():
    study = Conversion()
    study.point("mlp", "baseline", "none", 950, 20000, dnn_right=955)
    study.point("mlp", "l1-0.001", "l1", 948, 1600, eflops=350.0)
    study.point("mlp", "hoyer-0.001", "hoyer", 900, 3000, eflops=400.0)
    selections = [study.select("mlp", "l1", "l1-0.001")]
    found = {f.key: f for f in conversion_findings(study.result(selections), study.evidence(), ["l1", "hoyer"], [])}
    assert [found[k].mark for k in "acd"] == [HOLDS] * 3
    # (b): L1's curve reaches 0.948 at x = 0.08, Hoyer's only 0.90 at 0.15: L1 beats it in every resample
    assert found["b"].mark == HOLDS
    assert found["b"].numbers["mnist5k/mlp"]["lp_family_mean_auc"] > found["b"].numbers["mnist5k/mlp"][
        "hoyer_family_mean_auc"]


def test_a_margin_within_the_seed_spread_leaves_the_claim_undecided():
    study = Conversion()
    study.point("mlp", "baseline", "none", 950, 20000)
    study.point("mlp", "l1-0.001", "l1", 948, 1600)  # -0.2 pt: 0.3 pt inside the 0.5 pt limit
    selections = [study.select("mlp", "l1", "l1-0.001")]
    calm = {f.key: f for f in conversion_findings(study.result(selections, spread=(1.0, 0.05, 0.1)),
                                                  study.evidence(), ["l1"], [])}
    noisy = {f.key: f for f in conversion_findings(study.result(selections, spread=(1.0, 0.35, 0.1)),
                                                   study.evidence(), ["l1"], [])}
    assert calm["a"].mark == HOLDS
    assert noisy["a"].mark == UNDECIDED  # >= 95% of the resamples satisfy it, but 0.3 pt < the 0.35 pt spread
    assert noisy["a"].numbers["mnist5k/mlp"]["decision"]["support"] >= 0.95
    unknown = {f.key: f for f in conversion_findings(study.result(selections, spread=(None, None, None)),
                                                     study.evidence(), ["l1"], [])}
    assert unknown["a"].mark == UNDECIDED  # one baseline seed: the training noise is unknown


def test_a_claim_the_resamples_split_on_is_undecided():
    """The point estimate drops 0.4 pt; the model is wrong on 14 samples the baseline gets right
    and right on 10 it gets wrong, so resamples drop it by more or less than 0.5 pt."""
    study = Conversion()
    study.point("mlp", "baseline", "none", 950, 20000)
    study.point("mlp", "l1-0.001", "l1", 946, 1600, snn_wrong_first=14)
    selections = [study.select("mlp", "l1", "l1-0.001")]
    found = {f.key: f for f in conversion_findings(study.result(selections, spread=(1.0, 0.01, 0.1)),
                                                   study.evidence(), ["l1"], [])}
    support = found["a"].numbers["mnist5k/mlp"]["decision"]["support"]
    assert found["a"].mark == UNDECIDED and 0.05 < support < 0.95


def test_a_baseline_at_chance_selects_nothing():
    study = Conversion()
    study.point("mlp", "baseline", "none", 110, 20000)
    study.point("mlp", "l1-0.001", "l1", 105, 200)
    selections = [study.select("mlp", "l1", "l1-0.001")]
    found = {f.key: f for f in conversion_findings(study.result(selections), study.evidence(), ["l1"], [])}
    assert found["a"].mark == FAILS and "no regularizer" in found["a"].evidence


class Distillation:
    """Configurations (one seed, 0) with per-sample records against a baseline (seeds 0, 1)."""

    def __init__(self, spread=(0.005, 0.02)):
        self.configs, self.samples = [], {}
        self.spread = {"dataset": "mnist5k", "seeds": 2, "accuracy": spread[0], "spikerate": spread[1]}
        self.add("baseline", "baseline", {}, 960, 1000.0)

    def add(self, run, method, setting, right, spikes, dataset="mnist5k", wrong_first=0):
        base = self.samples.get((dataset, "baseline", 0))
        accuracy = right / N
        config = {"dataset": dataset, "run": run, "method": method, "setting": setting, "accuracy_mean": accuracy,
                  "total_spikes_mean": spikes, "seeds": 1, "num_classes": 10}
        record = {"correct": _correct(right, wrong_first), "spikes": _counts(spikes)}
        if base is None:
            config.update(delta_accuracy_mean=0.0, delta_spikerate_mean=0.0)
        else:
            config.update(delta_accuracy_mean=accuracy / (sum(base["correct"]) / N) - 1,
                          delta_spikerate_mean=spikes / (sum(base["spikes"]) / N) - 1, resampled_seeds=[0])
        self.configs.append(config)
        self.samples[(dataset, run, 0)] = record

    def findings(self, datasets=("mnist5k",)):
        result = {"configurations": self.configs, "baseline_spread": [self.spread]}
        evidence = Evidence(self.samples, resamples=400, seed=0, level=0.95)
        return {f.key: f for f in distillation_findings(result, evidence, list(datasets), {d: 10 for d in datasets})}


def test_distillation_findings_marks():
    study = Distillation()
    study.add("act-l1-2.0", "activation", {"norm": "l1", "lam": 2.0}, 962, 340.0)  # -66%, +0.2%
    study.add("act-l1-9.0", "activation", {"norm": "l1", "lam": 9.0}, 100, 0.0)  # collapsed: never counts
    study.add("het-1-4", "heterogeneous", {"tau_s": 1.0, "tau_t": 4.0}, 960, 840.0)  # -16%
    study.add("het-1-8", "heterogeneous", {"tau_s": 1.0, "tau_t": 8.0}, 960, 630.0)  # -37%
    study.add("mse", "mse", {"alpha": 0.5}, 960, 1150.0)  # +15%
    study.add("log", "logits", {"norm": "l2", "lam": 5.0}, 965, 800.0)  # -20%
    study.add("comb", "combined", {"tau_s": 1.0, "tau_t": 8.0, "norm": "l1", "lam": 2.0}, 960, 260.0)  # -74%
    found = study.findings()
    assert found["e"].mark == HOLDS and "act-l1-2.0" in found["e"].evidence and "act-l1-9.0" not in found["e"].evidence
    assert found["e2"].mark == NOT_RUN  # no dataset stands in for GSC or CIFAR-10
    assert found["f"].mark == HOLDS  # -16% at tau_t 4, -37% at 8, steps far beyond the 2% spread
    assert found["g"].mark == HOLDS  # MSE raised the spikerate by 15%
    assert found["h"].mark == HOLDS
    assert found["k"].mark == HOLDS and found["k"].beyond_paper  # -74% < -66%
    assert found["l"].mark == NOT_RUN
    assert "[-66.0, -66.0]%" in found["e"].evidence or "spikerate -66.0%" in found["e"].evidence


def test_a_spikerate_change_within_the_baseline_spread_is_undecided():
    study = Distillation(spread=(0.005, 0.05))
    study.add("mse", "mse", {"alpha": 0.5}, 960, 1030.0)  # +3%: in every resample, but inside a 5% seed spread
    study.add("het-1-4", "heterogeneous", {"tau_s": 1.0, "tau_t": 4.0}, 960, 840.0)
    study.add("het-1-8", "heterogeneous", {"tau_s": 1.0, "tau_t": 8.0}, 960, 820.0)  # a 2% step < 5% spread
    found = study.findings()
    assert found["g"].mark == UNDECIDED and found["f"].mark == UNDECIDED


def test_an_accuracy_loss_the_resamples_split_on_is_undecided():
    """-66% spikes at -1.0% accuracy exactly: wrong on 20 samples the baseline gets right, right on 10
    it gets wrong, so about half the resamples lose more than 1%."""
    study = Distillation()
    study.add("act-l1-2.0", "activation", {"norm": "l1", "lam": 2.0}, 950, 340.0, wrong_first=20)
    found = study.findings()
    support = found["e"].numbers["mnist5k"]["decision"]["support"]
    assert found["e"].mark in (UNDECIDED, FAILS) and support < 0.95


def test_at_chance():
    assert at_chance(0.12, 10) and not at_chance(0.16, 10) and at_chance(0.9, 10, spikes=0.0)
    assert not at_chance(None, 10)
