"""The params schema: defaults validate, every bad value gets one precise line."""

import copy
from pathlib import Path

import pytest
import yaml

from lowspike.config import ParamsError, parse_regularizer, read_params, validate_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_repository_params_yaml_is_valid():
    params = read_params(REPO / "params.yaml")
    assert params.regularization.regularizers == ["l2", "l1", "lp0.5", "lp0.01", "hoyer", "hoyer_square"]
    assert params.distillation.alpha == 0.1
    assert params.data.spoken_commands.words[0] == "yes"


def test_empty_file_gives_defaults():
    params = validate_params({})
    assert params.simulation.timesteps == 100
    assert params.conversion.percentile == 99.9


def _set(raw: dict, dotted: str, value) -> dict:
    raw = copy.deepcopy(raw)
    node = raw
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return raw


@pytest.mark.parametrize(
    "dotted, value, location, allowed",
    [
        ("regularization.lambdas", [1.0e-4, -1.0], "regularization.lambdas[1]", "greater than or equal to 0"),
        ("regularization.regularizers", ["l1", "lp0"], "regularization.regularizers[1]", "p in (0, 1]"),
        ("regularization.regularizers", ["l1", "lp-2"], "regularization.regularizers[1]", "lp<p>"),
        ("regularization.regularizers", ["l7"], "regularization.regularizers[0]", "allowed: l1, l2, hoyer"),
        ("simulation.timesteps", 0, "simulation.timesteps", "greater than or equal to 1"),
        ("distillation.grids.soft_targets.taus", [0.0], "distillation.grids.soft_targets.taus[0]", "greater than 0"),
        ("distillation.alpha", 1.5, "distillation.alpha", "less than or equal to 1"),
        ("distillation.grids.mse.alphas", [-0.1], "distillation.grids.mse.alphas[0]", "greater than or equal to 0"),
        ("data.datasets", ["mnist5k", "imagenet"], "data.datasets[1]", "'mnist5k'"),
        ("regularization.archs", ["resnet50"], "regularization.archs[0]", "'mlp' or 'lenet5'"),
        ("regularization.train.lr", "1e-4", "regularization.train.lr", "1.0e-4"),
        ("simulation.timesteps", 2.5, "simulation.timesteps", "valid integer"),
        ("simulation.input_coding", "morse", "simulation.input_coding", "'analog', 'poisson' or 'bernoulli'"),
        ("conversion.percentile", 120.0, "conversion.percentile", "less than or equal to 100"),
        ("simulation.colour", "red", "simulation.colour", "unknown key"),
        ("distillation.setups.mnist5k.student", "transformer", "distillation.setups.mnist5k.student", "'scnn'"),
        ("data.spoken_commands.words", [True, "no"], "data.spoken_commands.words[0]", "quote it"),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(raw_params, dotted, value, location, allowed):
    with pytest.raises(ParamsError) as info:
        validate_params(_set(raw_params, dotted, value))
    message = str(info.value)
    shown = value[int(location[-2])] if location.endswith("]") else value
    assert "\n" not in message
    assert message.startswith(f"params.yaml: {location}: got {shown!r}"), message
    assert allowed in message, message


def test_string_float_is_refused_not_coerced(raw_params):
    with pytest.raises(ParamsError, match="PyYAML reads 1e-4 as a string"):
        validate_params(_set(raw_params, "regularization.lambdas", ["1e-4"]))


def test_integer_is_accepted_where_a_float_belongs(raw_params):
    params = validate_params(_set(raw_params, "distillation.grids.soft_targets.taus", [1, 4]))
    assert params.distillation.grids.soft_targets.taus == [1.0, 4.0]


def test_missing_setup_for_a_dataset_is_refused(raw_params):
    raw = _set(raw_params, "distillation.datasets", ["mnist5k", "cifar10"])
    with pytest.raises(ParamsError, match="setups has no entry"):
        validate_params(raw)


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        read_params(bad)
    with pytest.raises(ParamsError, match="file not found"):
        read_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize("spec, expected", [("l1", ("l1", {})), ("lp0.5", ("lp", {"p": 0.5})),
                                            ("lp1", ("lp", {"p": 1.0})), ("lp0.01", ("lp", {"p": 0.01}))])
def test_parse_regularizer(spec, expected):
    assert parse_regularizer(spec) == expected
