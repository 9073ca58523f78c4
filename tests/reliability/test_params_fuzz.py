"""Property: every wrong value or wrong type put anywhere in params.yaml is refused by
``load_params`` with exit code 2 and one line on stderr naming the key path, the bad value and
what is allowed; nothing is written. Bad values are derived from each field's declared type
and bounds (walked from the schema), so new fields are fuzzed without editing this file."""

from __future__ import annotations

import copy
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import annotated_types as at
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo

from lowspike.regularizers import REGULARIZERS
from lowspike.regularizers import check_point as _check_point
from lowspike.regularizers import check_spec as _check_regularizer
from lowspike.config import Params
from lowspike.schema import _finite
from lowspike.params import load_params, read_params

from .conftest import REPO, dump_params, repo_params, run_stage, stage_env, write_params

# ------------------------------------------------------------------ the schema as specs


@dataclass
class Spec:
    kind: str  # int float bool str literal regularizer point list dict model
    lo: float | None = None
    lo_strict: bool = False
    hi: float | None = None
    hi_strict: bool = False
    finite: bool = False
    literals: tuple = ()
    item: "Spec | None" = None
    key: "Spec | None" = None
    model: type[BaseModel] | None = None
    non_empty: bool = False
    nullable: bool = False  # ``X | None``: null is a valid value (a key left to its default)


def _constraints(spec: Spec, metadata: list[Any]) -> Spec:
    for item in metadata:
        if isinstance(item, FieldInfo):
            _constraints(spec, item.metadata)
        elif isinstance(item, at.Ge):
            spec.lo, spec.lo_strict = item.ge, False
        elif isinstance(item, at.Gt):
            spec.lo, spec.lo_strict = item.gt, True
        elif isinstance(item, at.Le):
            spec.hi, spec.hi_strict = item.le, False
        elif isinstance(item, at.Lt):
            spec.hi, spec.hi_strict = item.lt, True
        elif isinstance(item, AfterValidator) and item.func is _finite:
            spec.finite = True
        elif isinstance(item, AfterValidator) and item.func is _check_regularizer:
            spec.kind = "regularizer"
        elif isinstance(item, AfterValidator) and item.func is _check_point:
            spec.kind = "point"
    return spec


def describe(annotation: Any, metadata: list[Any] = ()) -> Spec:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return describe(base, [*metadata, *extra])
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation):
        (base,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        spec = describe(base, metadata)
        spec.nullable = True
        return spec
    if origin is typing.Literal:
        return Spec("literal", literals=typing.get_args(annotation))
    if origin is list:
        return Spec("list", item=describe(typing.get_args(annotation)[0]))
    if origin is dict:
        key, value = typing.get_args(annotation)
        return Spec("dict", key=describe(key), item=describe(value))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Spec("model", model=annotation)
    kind = {int: "int", float: "float", bool: "bool", str: "str"}[annotation]
    return _constraints(Spec(kind), list(metadata))


NON_EMPTY_LISTS = {"regularization.datasets", "regularization.archs", "regularization.points.mlp",
                   "regularization.points.lenet5"}


@dataclass
class Target:
    path: tuple[str, ...]
    spec: Spec
    current: Any = None
    dotted: str = field(init=False)

    def __post_init__(self) -> None:
        self.dotted = ".".join(self.path)


def targets(model: type[BaseModel], raw: dict | None, path: tuple[str, ...] = ()) -> list[Target]:
    """Every key of the schema below ``model`` (sections, fields, and the dict entries present in
    ``raw``, e.g. ``distillation.setups.mnist5k``)."""
    found: list[Target] = [Target(path, Spec("model", model=model), raw)] if path else []
    raw = raw or {}
    for name, info in model.model_fields.items():
        spec = describe(info.annotation, info.metadata)
        here = (*path, name)
        current = raw.get(name)
        if spec.kind == "model":
            found += targets(spec.model, current, here)
            continue
        spec.non_empty = ".".join(here) in NON_EMPTY_LISTS
        found.append(Target(here, spec, current))
        if spec.kind == "dict" and spec.item.kind == "model" and isinstance(current, dict):
            for key, value in current.items():
                found += targets(spec.item.model, value, (*here, key))
        elif spec.kind == "dict" and spec.item.kind == "list" and isinstance(current, dict):
            for key, value in current.items():  # e.g. regularization.points.<arch>
                item = describe(info.annotation, info.metadata).item
                item.non_empty = ".".join((*here, key)) in NON_EMPTY_LISTS
                found.append(Target((*here, key), item, value))
    return found


RAW = repo_params()
TARGETS = targets(Params, RAW)
SECTIONS = sorted({t.path[0] for t in TARGETS})

# ------------------------------------------------------------------ bad values


@dataclass
class Bad:
    """A bad value put at ``target``; the error must name ``location`` and show ``shown``."""

    target: Target
    value: Any
    location: str
    shown: Any
    allowed: tuple[str, ...]  # the reason names one of these (every one for literal choices)
    every: bool = False


WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=12)


def _scalars_other_than(kind: str) -> st.SearchStrategy:
    """YAML scalars and containers that are not of ``kind`` under strict validation."""
    options = {
        "text": WORDS,
        "none": st.none(),
        "list": st.lists(st.integers(-3, 3), max_size=3),
        "dict": st.dictionaries(WORDS, st.integers(0, 3), min_size=1, max_size=2),
        "bool": st.booleans(),
        "int": st.integers(-10**6, 10**6),
        "float": st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not float(v).is_integer()),
    }
    wrong = {"int": ("text", "none", "list", "dict", "bool", "float"),
             "float": ("text", "none", "list", "dict", "bool"),
             "bool": ("text", "none", "list", "dict", "int", "float"),
             "str": ("none", "list", "dict", "bool", "int", "float"),
             "literal": ("none", "list", "dict", "bool", "int", "float"),
             "regularizer": ("none", "list", "dict", "bool", "int", "float"),
             "point": ("none", "list", "dict", "bool", "int", "float"),
             "list": ("text", "none", "dict", "bool", "int", "float"),
             "dict": ("text", "none", "list", "bool", "int", "float"),
             "model": ("text", "none", "list", "bool", "int", "float")}[kind]
    return st.one_of(*(options[w] for w in wrong))


def _out_of_range(spec: Spec) -> st.SearchStrategy | None:
    choices = []
    if spec.lo is not None:
        top = spec.lo if spec.lo_strict else spec.lo - (1 if spec.kind == "int" else 1e-9)
        if spec.kind == "int":
            choices.append(st.integers(-10**6, int(math.floor(top))))
        else:
            choices.append(st.floats(min_value=-1e6, max_value=top, allow_nan=False))
    if spec.hi is not None:
        bottom = spec.hi if spec.hi_strict else spec.hi + (1 if spec.kind == "int" else 1e-9)
        if spec.kind == "int":
            choices.append(st.integers(int(math.ceil(bottom)), 10**6))
        else:
            choices.append(st.floats(min_value=bottom, max_value=1e6, allow_nan=False))
    if spec.kind == "float":
        # NaN fails any bound; +inf an upper bound, -inf a lower one; all three the finite check
        refused = [v for v in (math.nan, math.inf, -math.inf)
                   if spec.finite or (math.isnan(v) and (spec.lo is not None or spec.hi is not None))
                   or (v > 0 and spec.hi is not None) or (v < 0 and spec.lo is not None)]
        if refused:
            choices.append(st.sampled_from(refused))
    return st.one_of(*choices) if choices else None


def bad_scalar(spec: Spec) -> st.SearchStrategy:
    """``(value, allowed-words, every)``: a value the scalar ``spec`` refuses."""
    if spec.kind == "literal":
        allowed = tuple(repr(v) for v in spec.literals)
        return st.one_of(_scalars_other_than("literal"), WORDS.filter(lambda w: w not in spec.literals)).map(
            lambda v: (v, allowed, True))
    options = [_scalars_other_than(spec.kind).map(lambda v: (v, ("should be a valid",), False))]
    if spec.kind in ("int", "float"):
        out = _out_of_range(spec)
        if out is not None:
            options.append(out.map(lambda v: (v, ("than", "finite"), False)))
        if spec.kind == "float":
            options.append(st.sampled_from(["1e-4", "2e3", "0.5"]).map(
                lambda v: (v, ("a number must not be quoted",), False)))
    if spec.kind == "regularizer":
        options.append(WORDS.filter(lambda w: w not in REGULARIZERS and not w.startswith("lp"))
                       .map(lambda v: (v, ("allowed: l1, l2, hoyer, hoyer_square, synops or lp<p>",), False)))
        options.append(st.floats(min_value=1.01, max_value=50.0).map(
            lambda p: (f"lp{p}", ("p in (0, 1]",), False)))
    if spec.kind == "point":
        options.append(WORDS.filter(lambda w: "-" not in w).map(
            lambda v: (v, ("a point is <regularizer>-<lambda>",), False)))
        options.append(WORDS.filter(lambda w: w not in REGULARIZERS and not w.startswith("lp") and "-" not in w)
                       .map(lambda v: (f"{v}-0.001", ("unknown regularizer",), False)))
    return st.one_of(*options)


def bad_for(target: Target) -> st.SearchStrategy[Bad]:
    spec, where = target.spec, target.dotted
    if spec.kind == "model":
        wrong = _scalars_other_than("model").map(lambda v: Bad(target, v, where, v, ("valid dictionary",)))
        if target.current is None:  # an optional section the file leaves out (a dataset's grid of a method):
            return wrong             # an unknown key alone would be refused for the keys it lacks first
        unknown = WORDS.filter(lambda w: w not in spec.model.model_fields).flatmap(
            lambda key: st.integers(0, 9).map(lambda v: Bad(target, {**target.current, key: v},
                                                            f"{where}.{key}", v, ("unknown key",))))
        return st.one_of(unknown, wrong)
    if spec.kind == "list":
        current = list(target.current or [])
        options = [_scalars_other_than("list").filter(lambda v: not (spec.nullable and v is None))
                   .map(lambda v: Bad(target, v, where, v, ("valid list",)))]
        options.append(st.tuples(st.integers(0, len(current)), bad_scalar(spec.item)).map(
            lambda c: Bad(target, current[:c[0]] + [c[1][0]] + current[c[0] + 1:], f"{where}[{c[0]}]", *c[1])))
        if spec.non_empty:
            options.append(st.just(Bad(target, [], where, [], ("must not be empty",))))
        return st.one_of(*options)
    if spec.kind == "dict":
        current = dict(target.current or {})
        options = [_scalars_other_than("dict").map(lambda v: Bad(target, v, where, v, ("valid dictionary",)))]
        options.append(bad_scalar(spec.key).map(lambda kv: kv[0]).filter(lambda k: isinstance(k, str)).map(
            lambda k: Bad(target, {**current, k: next(iter(current.values()), 1.0)}, f"{where}.{k}", k,
                          tuple(repr(v) for v in spec.key.literals), True)))
        if spec.item.kind != "model" and current:
            options.append(st.tuples(st.sampled_from(sorted(current)), bad_scalar(spec.item)).map(
                lambda c: Bad(target, {**current, c[0]: c[1][0]}, f"{where}.{c[0]}", *c[1])))
        return st.one_of(*options)
    return bad_scalar(spec).map(lambda v: Bad(target, v[0], where, *v))


def with_value(raw: dict, path: tuple[str, ...], value: Any) -> dict:
    raw = copy.deepcopy(raw)
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return raw


def bad_params(section: str) -> st.SearchStrategy[Bad]:
    return st.sampled_from([t for t in TARGETS if t.path[0] == section]).flatmap(bad_for)


# ------------------------------------------------------------------ the property


def test_the_walk_reaches_every_section_and_nested_setup():
    dotted = {t.dotted for t in TARGETS}
    assert set(SECTIONS) == set(Params.model_fields)
    assert {"regularization.train.lr", "distillation.setups.mnist5k.student_train.batch_size",
            "data.mfcc.n_fft", "distillation.grids.mnist5k.combined.norms", "report.formats"} <= dotted
    by_dotted = {t.dotted: t.spec for t in TARGETS}
    lr = by_dotted["regularization.train.lr"]
    assert (lr.kind, lr.lo, lr.lo_strict, lr.finite) == ("float", 0.0, True, True)
    assert by_dotted["simulation.input_coding"].literals == ("analog", "poisson", "bernoulli")
    assert by_dotted["regularization.points.mlp"].item.kind == "point"
    seeds = by_dotted["distillation.grids.spoken-commands.logits.seeds"]
    assert (seeds.kind, seeds.nullable, seeds.item.kind, seeds.item.lo) == ("list", True, "int", 0)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _check_refusal(bad: Bad, folder: Path, capsys) -> None:
    raw = with_value(RAW, bad.target.path, bad.value)
    path = folder / "bad.yaml"
    path.write_text(dump_params(raw))
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        load_params(path)
    err = capsys.readouterr()
    assert info.value.code == 2
    assert err.out == ""
    lines = err.err.splitlines()
    assert len(lines) == 1, err.err
    line = lines[0]
    assert "Traceback" not in line
    head = f"error: {path}: {bad.location}: got "
    if bad.location.startswith(tuple(f"{t.dotted}." for t in TARGETS if t.spec.kind == "dict")) and \
            not line.startswith(head):
        head = f"error: {path}: {bad.location}.[key]: got "  # how config.py names a refused dict key
    assert line.startswith(head), (line, head)
    shown = repr(bad.shown)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    assert line[len(head):].startswith(shown + ": "), (line, shown)
    reason = line[len(head) + len(shown) + 2:]
    found = [word in reason for word in bad.allowed]
    assert all(found) if bad.every else any(found), (line, bad.allowed)
    assert sorted(p.name for p in folder.iterdir()) == ["bad.yaml"]


@pytest.mark.parametrize("section", SECTIONS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_wrong_value_anywhere_in_a_section_is_refused_with_one_line(section, data, scratch, capsys):
    bad = data.draw(bad_params(section))
    _check_refusal(bad, scratch, capsys)


def test_the_stage_refuses_a_bad_file_before_writing_anything(tmp_path):
    """The subprocess path: ``stages/prepare.py --params bad.yaml`` (exit 2, one line, no output)."""
    raw = with_value(RAW, ("distillation", "setups", "mnist5k", "student_train", "lr"), "2e-3")
    write_params(tmp_path / "bad.yaml", raw)
    result = run_stage(tmp_path, "prepare.py", "--dataset", "digits", "--params", "bad.yaml",
                       env=stage_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: bad.yaml: distillation.setups.mnist5k.student_train.lr: got '2e-3': Input should be a valid "
        "number (a number must not be quoted: write 1.0e-4 or 1e-4, not '1e-4')"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_yaml_that_does_not_parse_is_one_line_too(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("simulation: {timesteps: [1, 2\n")
    with pytest.raises(SystemExit) as info:
        load_params(path)
    assert info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert re.match(rf"error: {re.escape(str(path))}:2:1: not valid YAML: expected ',' or ']', but got '<stream end>'$",
                    line), line


def test_params_rewritten_by_dvc_exp_run_set_param_stay_valid(tmp_path):
    """``dvc exp run -S key=value`` (and ``dvc queue``) rewrite params.yaml with DVC's own YAML
    writer; the project's params.yaml must still validate afterwards."""
    from dvc.utils.serialize import modify_yaml

    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    with modify_yaml(path) as data:
        data["regularization"]["points"]["mlp"] = ["l1-1e-3"]
    params = read_params(path)
    assert params.data.spoken_commands.words[:2] == ["yes", "no"]
    assert params.regularization.points["mlp"] == ["l1-1e-3"]
