"""The params each stage reads, declared once: ``dvc.yaml``'s ``params:`` of the stage
(:mod:`lowspike.dvcyaml`), the params its MLflow run logs, and what its resume fingerprint
hashes all come from :data:`STAGE_PARAMS`. A test runs every stage with a recording view of its
params and checks that it reads nothing else (after its command-line checks, which only refuse
a stale matrix entry).

A key is a dotted path of ``params.yaml``; ``{dataset}`` stands for the stage's dataset (DVC's
``${item.dataset}``). A key covers everything under it.
"""

from __future__ import annotations

from typing import Any

STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "prepare": ("data.root", "data.prepared_dir", "data.seed", "data.mnist5k", "data.digits", "data.mnist",
                "data.cifar10", "data.gsc", "data.spoken_commands"),
    "train_dnn": ("data.prepared_dir", "data.mfcc", "data.augment", "regularization.train", "regularization.l2_form",
                  "regularization.lp_eps", "regularization.weight_lambda", "regularization.prune_threshold"),
    "convert": ("data.prepared_dir", "data.mfcc", "regularization.points", "regularization.baseline_extra_seeds",
                "conversion"),
    "simulate": ("data.prepared_dir", "data.mfcc", "regularization.points", "regularization.baseline_extra_seeds",
                 "simulation"),
    "evaluate": ("data.prepared_dir", "data.mfcc", "regularization.points", "regularization.baseline_extra_seeds",
                 "energy"),
    "aggregate_conversion": ("regularization.datasets", "regularization.archs", "regularization.points",
                             "regularization.baseline_extra_seeds", "regularization.max_accuracy_drop",
                             "energy.models", "statistics"),
    "train_teacher": ("data.prepared_dir", "data.mfcc", "data.augment", "distillation.setups.{dataset}"),
    "train_student": ("data.prepared_dir", "data.mfcc", "data.augment", "distillation.setups.{dataset}",
                      "distillation.surrogate"),
    "evaluate_students": ("data.prepared_dir", "data.mfcc", "distillation.setups.{dataset}", "distillation.seeds",
                          "distillation.baseline_seeds", "distillation.grids.{dataset}", "distillation.surrogate",
                          "distillation.neurobench_samples", "energy"),
    "aggregate_distillation": ("distillation.datasets", "distillation.seeds", "distillation.baseline_seeds",
                               "distillation.grids", "energy.models", "statistics"),
    "export_conversion": ("data.prepared_dir", "data.mfcc", "simulation.timesteps", "deploy"),
    "export_distillation": ("data.prepared_dir", "data.mfcc", "distillation.setups.{dataset}", "distillation.surrogate",
                            "deploy"),
    "report": ("profile", "data", "regularization", "conversion", "simulation", "distillation", "tracking", "report",
               "energy", "statistics", "deploy"),
}
LOGGING_ONLY = ("tracking",)
"""Read by every tracked stage and no stage's dependency: where a run is logged changes no output."""
STUDY_ALPHA = "distillation.alpha"
"""Read by the students whose method weighs a KD term with the study's alpha (Eq. 1)."""


def stage_keys(stage: str, dataset: str = "${item.dataset}", study_alpha: bool = False) -> list[str]:
    """The params keys of ``stage`` (a stage family without its matrix suffix: ``train_dnn`` for
    ``train_dnn_mlp``, ``train_student`` for every student family), for ``dataset``."""
    keys = [key.format(dataset=dataset) for key in STAGE_PARAMS[stage]]
    return keys + [STUDY_ALPHA] if study_alpha else keys


def read_key(params: Any, key: str) -> Any:
    """The value of a dotted key of the validated params (a section, a mapping entry or a leaf)."""
    value = params
    for part in key.split("."):
        try:
            value = value[part]
        except TypeError:  # a pydantic section: its fields are attributes
            value = getattr(value, part)
    return value


def key_values(params: Any, keys: list[str]) -> dict[str, Any]:
    """``{key: value}`` of ``keys``, sections as plain JSON-able dicts (what MLflow logs and a
    resume fingerprint hashes; a section is anything with pydantic's ``model_dump``)."""
    values = {}
    for key in keys:
        value = read_key(params, key)
        values[key] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    return values


def covered(read: str, keys: list[str]) -> bool:
    """Whether reading ``read`` is covered by one of ``keys`` (the key itself or a section above it)."""
    return any(read == key or read.startswith(key + ".") for key in keys)
