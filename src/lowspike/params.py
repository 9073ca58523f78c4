"""What a stage loads: ``params.yaml`` validated by the schema (:mod:`lowspike.config`) and
cross-checked between sections, before any work.

The cross-checks read the registries only (shapes from params, models' input rules, declared
hints), never the data nor a model: every model of the conversion study and every student and
teacher of a distillation setup must take the samples of the datasets it is trained on, and a
feature-based KD grid needs hints declared for its student/teacher pair.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .config import DEFAULT_PARAMS, Params, parse_params, read_params_file
from .data import sample_shape
from .distillation import grids_of
from .errors import ParamsError
from .models import MODELS, declared_hint_pairs, input_problem


def check_models_fit_data(params: Params) -> str | None:
    """``<key>: <why>`` for the first model that cannot take the samples of a dataset it is
    trained on (a DNN of the conversion study, a student or teacher of a distillation setup),
    or None."""
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


def check_hint_pairs(params: Params) -> str | None:
    """``<key>: <why>`` for the first dataset whose student/teacher pair has no declared hints
    (``hints`` of the student's entry in :data:`lowspike.models.MODELS`) while a feature-based KD
    grid is not empty, or None."""
    for dataset in params.distillation.datasets:
        if not grids_of(params, dataset).uses_hints:
            continue
        setup = params.distillation.setups[dataset]
        if setup.teacher not in MODELS[setup.student].hints:
            return (f"distillation.setups.{dataset}: got student {setup.student!r} with teacher {setup.teacher!r}: "
                    f"feature-based KD (distillation.grids.{dataset}.feature, feature_act) has no hints declared for this "
                    f"pair (declared: {', '.join(declared_hint_pairs())})")
    return None


def validate_params(raw: Any, source: str = "params.yaml", complete: bool = False) -> Params:
    """The schema (:func:`lowspike.config.parse_params`), then the cross-checks; raises
    :class:`ParamsError` with one line."""
    params = parse_params(raw, source, complete)
    problem = check_models_fit_data(params) or check_hint_pairs(params)
    if problem:
        raise ParamsError(f"{source}: {problem}")
    return params


def read_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate a complete params file; raises :class:`ParamsError`."""
    return validate_params(read_params_file(path), str(path), complete=True)


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
