"""Aggregates built by the studies' real aggregation code from small fabricated per-run files.

Conversion study (dataset mnist5k, regularizers l1 and hoyer, lambdas 1e-4 and 1e-3, T = 4):

=======  ==================  ======  ======  ======  =====  =====
arch     point               spikes  eflops  synops  dnn    snn
=======  ==================  ======  ======  ======  =====  =====
mlp      baseline            1000    500     20000   0.98   0.975
mlp      l1-0.0001           400     450     8000    0.978  0.973
mlp      l1-0.001            100     400     1000    0.96   0.95
mlp      hoyer-0.0001        diverged
mlp      hoyer-0.001         300     480     4000    0.62   0.60
lenet5   baseline            5000    2000    100000  0.99   0.985
lenet5   l1-0.0001           0       1500    0       0.10   0.10   (silent)
=======  ==================  ======  ======  ======  =====  =====

Distillation study (mnist5k, seeds 0 and 1; digits, seed 0 with a silent baseline): see
``DISTILLATION_VALUES``; every student has 1,000 neurons (600 + 400) and T = 10.
"""

from __future__ import annotations

import contextlib

import pytest

from lowspike.artifacts import write_json
from lowspike.params import validate_params

PARAMS = {
    "profile": "fixture",
    "regularization": {"datasets": ["mnist5k"], "archs": ["mlp", "lenet5"], "points": {"mlp": ["l1-0.0001", "l1-0.001", "hoyer-0.0001", "hoyer-0.001"],
                                  "lenet5": ["l1-0.0001", "l1-0.001", "hoyer-0.0001", "hoyer-0.001"]}},
    "distillation": {
        "datasets": ["mnist5k", "digits"], "seeds": [0, 1], "baseline_seeds": [0, 1],
        "grids": {"mnist5k": {"mse": {"alphas": [0.5]}, "soft_targets": {"taus": [2.0]},
                              "heterogeneous": {"tau_s": [1.0], "tau_t": [4.0, 8.0]},
                              "activation": {"l1": [0.5], "l2": []}, "logits": {"l2": [0.1], "l2sq": []}},
                  "digits": {"activation": {"l1": [0.5], "l2": []}}}},
    "report": {"formats": ["png", "svg"], "dpi": 50},
}

CONVERSION_POINTS = {
    ("mlp", "baseline"): (1000, 500, 20000, 0.98, 0.975),
    ("mlp", "l1-0.0001"): (400, 450, 8000, 0.978, 0.973),
    ("mlp", "l1-0.001"): (100, 400, 1000, 0.96, 0.95),
    ("mlp", "hoyer-0.0001"): None,
    ("mlp", "hoyer-0.001"): (300, 480, 4000, 0.62, 0.60),
    ("lenet5", "baseline"): (5000, 2000, 100000, 0.99, 0.985),
    ("lenet5", "l1-0.0001"): (0, 1500, 0, 0.10, 0.10),
    ("mlp", "baseline-seed1"): (1010, 505, 20400, 0.979, 0.974),
    ("mlp", "baseline-seed2"): (990, 495, 19600, 0.981, 0.976),
    ("lenet5", "baseline-seed1"): (5050, 2020, 101000, 0.989, 0.984),
    ("lenet5", "baseline-seed2"): (4950, 1980, 99000, 0.991, 0.986),
}
CONVERSION_SAMPLES = 1000
DISTILLATION_SAMPLES = 100


def per_sample_correct(accuracy: float, samples: int) -> list[int]:
    """0/1 correctness with the given accuracy: the first ``round(accuracy * samples)`` right."""
    right = round(accuracy * samples)
    return [1] * right + [0] * (samples - right)


def per_sample_counts(mean: float, samples: int) -> list[int]:
    """Integer counts with the given mean, spread as evenly as integers allow."""
    total = round(mean * samples)
    return [total // samples + (1 if i < total % samples else 0) for i in range(samples)]

# (dataset, run, seed) -> (accuracy, spikerate, spikerate of layer "spike2")
DISTILLATION_VALUES = {
    ("mnist5k", "baseline", 0): (0.98, 2.0, 2.0),
    ("mnist5k", "baseline", 1): (0.96, 4.0, 4.0),
    ("mnist5k", "mse-a0.5", 0): (0.98, 2.2, 2.2),
    ("mnist5k", "mse-a0.5", 1): (0.96, 4.4, 4.4),
    ("mnist5k", "st-t2.0", 0): (0.97, 2.0, 2.0),
    ("mnist5k", "st-t2.0", 1): (0.10, 0.0, 0.0),
    ("mnist5k", "het-s1.0-t4.0", 0): (0.98, 1.5, 1.0),
    ("mnist5k", "het-s1.0-t4.0", 1): (0.96, 3.0, 2.0),
    ("mnist5k", "het-s1.0-t8.0", 0): (0.90, 1.0, 1.0),
    ("mnist5k", "het-s1.0-t8.0", 1): (0.90, 2.0, 2.0),
    ("mnist5k", "act-l1-0.5", 0): (0.98, 1.0, 0.5),
    ("mnist5k", "act-l1-0.5", 1): (0.96 * 0.99, 1.0, 0.5),
    ("mnist5k", "log-l2-0.1", 0): (0.98, 0.0, 0.0),
    ("mnist5k", "log-l2-0.1", 1): (0.96, 0.0, 0.0),
    ("digits", "baseline", 0): (0.10, 0.0, 0.0),
    ("digits", "act-l1-0.5", 0): (0.10, 0.0, 0.0),
}
METHODS = {"baseline": ("baseline", {}), "mse-a0.5": ("mse", {"alpha": 0.5}), "st-t2.0": ("soft_targets", {"tau": 2.0}),
           "het-s1.0-t4.0": ("heterogeneous", {"tau_s": 1.0, "tau_t": 4.0}),
           "het-s1.0-t8.0": ("heterogeneous", {"tau_s": 1.0, "tau_t": 8.0}),
           "act-l1-0.5": ("activation", {"norm": "l1", "lam": 0.5}),
           "log-l2-0.1": ("logits", {"norm": "l2", "lam": 0.1})}
DIVERGED_STUDENTS = {("mnist5k", "st-t2.0", 1)}


def fixture_params(**overrides):
    return validate_params({**PARAMS, **overrides})


def complete_params_text(raw: dict) -> str:
    """``raw`` with every default written out: a params file the stages accept."""
    import yaml

    return yaml.safe_dump(validate_params(raw).model_dump(mode="json"), sort_keys=False)


def write_conversion_runs(root) -> None:
    """``runs/eval/mnist5k/<arch>/<point>/evaluate.json`` as ``evaluate_all`` writes them."""
    for (arch, point), values in CONVERSION_POINTS.items():
        reg, _, lam = point.partition("-")
        baseline = reg == "baseline"
        record = {"dataset": "mnist5k", "arch": arch, "point": point, "regularizer": "none" if baseline else reg,
                  "lambda": 0.0 if baseline else float(lam), "num_classes": 10, "epochs_run": 3}
        if values is None:
            record["status"] = "diverged"
        else:
            spikes, eflops, synops, dnn, snn = values
            record.update({"status": "ok", "spikes": spikes, "eflops": eflops, "synops": synops,
                           "dnn_accuracy": dnn, "snn_accuracy": snn, "timesteps": 4,
                           "accuracy_per_timestep": [snn / 4, snn / 2, snn * 0.9, snn],
                           "spikes_per_layer": {"if1": spikes / 2, "if2": spikes / 2},
                           "per_sample": {"snn_correct": per_sample_correct(snn, CONVERSION_SAMPLES),
                                          "dnn_correct": per_sample_correct(dnn, CONVERSION_SAMPLES),
                                          **{key: per_sample_counts(value, CONVERSION_SAMPLES) for key, value in
                                             (("spikes", spikes), ("eflops", eflops), ("synops", synops))}}})
        write_json(root / "runs/eval/mnist5k" / arch / point / "evaluate.json", record)


def write_distillation_runs(root) -> None:
    """``runs/student_eval/<dataset>/<run>/seed<s>/evaluate.json`` and the teachers' ``train.json``."""
    for (dataset, run, seed), (accuracy, rate, rate2) in DISTILLATION_VALUES.items():
        method, setting = METHODS[run]
        rate1 = (rate * 1000 - rate2 * 400) / 600
        diverged = (dataset, run, seed) in DIVERGED_STUDENTS
        record = {"dataset": dataset, "run": run, "method": method, "setting": setting, "seed": seed,
                  "model": "scnn", "parameters": 42090, "status": "diverged" if diverged else "ok",
                  "epochs_run": 2, "accuracy": accuracy, "samples": 100, "total_spikes": rate * 1000,
                  "spikerate": rate, "spikerate_per_timestep": rate / 10,
                  "spikes_per_layer": {"spike1": rate1 * 600, "spike2": rate2 * 400},
                  "neurons_per_layer": {"spike1": 600, "spike2": 400},
                  "spikerate_per_layer": {"spike1": rate1, "spike2": rate2}, "timesteps": 10,
                  "per_sample": {"correct": per_sample_correct(accuracy, DISTILLATION_SAMPLES),
                                 "spikes": per_sample_counts(rate * 1000, DISTILLATION_SAMPLES)}}
        write_json(root / "runs/student_eval" / dataset / run / f"seed{seed}" / "evaluate.json", record)
    write_json(root / "runs/teacher/mnist5k/train.json",
               {"dataset": "mnist5k", "model": "vgg13", "width": 0.25, "parameters": 1234567, "status": "ok",
                "accuracy": 0.99, "epochs_run": 3, "history": []})


def build_aggregates(root) -> None:
    """Fabricated per-run files under ``root`` aggregated by the studies' ``write_aggregate``."""
    from lowspike.studies import conversion_results
    from lowspike.studies import distillation_results

    params = fixture_params()
    with contextlib.chdir(root):
        write_conversion_runs(root)
        write_distillation_runs(root)
        conversion_results.write_aggregate(params, "results/conversion")
        distillation_results.write_aggregate(params, "results/distillation")


@pytest.fixture(scope="session")
def aggregates(tmp_path_factory):
    """Folder holding ``results/conversion`` and ``results/distillation`` of the fixture."""
    root = tmp_path_factory.mktemp("aggregates")
    build_aggregates(root)
    return root


@pytest.fixture(scope="session")
def conversion_results(aggregates):
    from lowspike.report.common import load_results

    return load_results(aggregates / "results/conversion/results.json")


@pytest.fixture(scope="session")
def distillation_results(aggregates):
    from lowspike.report.common import load_results

    return load_results(aggregates / "results/distillation/results.json")
