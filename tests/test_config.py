"""The params schema: the repository's file validates, an empty or partial file is refused, every
bad value or combination gets one precise line."""

import copy
from pathlib import Path

import pytest
import yaml

from lowspike.config import ParamsError
from lowspike.regularizers import parse_regularizer
from lowspike.params import read_params, validate_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def raw_params() -> dict:
    from lowspike.config import _ParamsLoader

    return yaml.load((REPO / "params.yaml").read_text(), Loader=_ParamsLoader)  # as DVC reads it (YAML 1.2)


def test_repository_params_yaml_is_valid():
    params = read_params(REPO / "params.yaml")
    assert params.regularization.regularizers[:6] == ["l2", "l1", "lp0.5", "lp0.01", "hoyer", "hoyer_square"]
    assert params.distillation.alpha == 0.1
    assert params.data.spoken_commands.words[0] == "yes"


def test_a_partial_mapping_gives_defaults_to_library_callers():
    params = validate_params({})
    assert params.simulation.timesteps == 100
    assert params.conversion.percentile == 99.9


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("# nothing here\n")
    with pytest.raises(ParamsError, match=r"params\.yaml: <root>: the file is empty: every section must be written"):
        read_params(path)


def test_a_partial_file_is_refused_naming_what_is_missing(tmp_path, raw_params):
    raw = copy.deepcopy(raw_params)
    del raw["simulation"]["timesteps"]
    del raw["report"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError) as info:
        read_params(path)
    assert str(info.value).startswith(f"{path}: simulation.timesteps: missing")
    assert "simulation.timesteps, report" in str(info.value)


def test_optional_keys_may_be_left_out(tmp_path, raw_params):
    raw = copy.deepcopy(raw_params)
    del raw["distillation"]["setups"]["mnist5k"]["precision"]
    raw["regularization"]["train"].pop("scheduler", None)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert read_params(path).distillation.setups["mnist5k"].precision == "float32"


def test_a_file_whose_top_level_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- data\n- regularization\n")
    with pytest.raises(ParamsError, match=r"<root>: got list: expected a mapping of sections"):
        read_params(path)


def test_not_valid_yaml_gives_line_column_and_cause(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: default\ndata:\n\tseed: 0\n")
    with pytest.raises(ParamsError) as info:
        read_params(path)
    assert str(info.value) == f"{path}:3:1: not valid YAML: found character '\\t' that cannot start any token"


def test_a_model_too_big_for_the_dataset_is_refused_before_any_work(raw_params):
    raw = _set(_set(raw_params, "data.datasets", ["digits"]), "regularization.datasets", ["digits"])
    with pytest.raises(ParamsError) as info:
        validate_params(raw)
    assert str(info.value) == ("params.yaml: regularization.archs[1]: got 'lenet5': LeNet-5 needs inputs of at "
                               "least 12x12 pixels, got 8x8 (dataset digits)")
    raw = _set(_set(raw, "regularization.archs", ["mlp"]), "regularization.points.lenet5", [])
    raw = _set(raw, "distillation.datasets", ["digits"])
    raw["distillation"]["setups"]["digits"] = copy.deepcopy(raw["distillation"]["setups"]["mnist5k"])
    with pytest.raises(ParamsError, match=r"distillation\.setups\.digits\.student: got 'scnn': SCNN needs inputs "
                                          r"of at least 10x10 pixels, got 8x8 \(dataset digits\)"):
        validate_params(raw)


def test_the_default_setup_of_every_dataset_fits_it():
    from lowspike.config import default_setups

    setups = {name: setup.model_dump() for name, setup in default_setups().items()}
    datasets = list(setups)
    params = validate_params({"data": {"datasets": datasets}, "distillation": {"datasets": datasets,
                                                                              "setups": setups}})
    assert params.distillation.setups["digits"].student == "sres8"


def test_points_for_an_architecture_not_run_are_refused(raw_params):
    raw = _set(raw_params, "regularization.archs", ["mlp"])
    with pytest.raises(ParamsError, match=r"regularization\.points\.lenet5: got \['l2-.*: must be \[\] while "
                                          r"lenet5 is not in archs"):
        validate_params(raw)
    with pytest.raises(ParamsError, match=r"regularization\.points\.mlp: got \[\]: must not be empty: mlp is in archs"):
        validate_params(_set(raw_params, "regularization.points.mlp", []))
    with pytest.raises(ParamsError, match=r"regularization\.points\.mlp: got .*: must not repeat a point"):
        validate_params(_set(raw_params, "regularization.points.mlp", ["l1-1e-4", "l1-0.0001"]))


def test_a_grids_own_seeds_must_pair_with_baseline_seeds(raw_params):
    key = "distillation.grids.spoken-commands.logits.seeds"
    with pytest.raises(ParamsError, match=r"baseline_seeds \[0, 1, 2\] must hold every seed of "
                                          r"grids\.spoken-commands\.logits\.seeds .* missing \[5\]"):
        validate_params(_set(raw_params, key, [0, 5]))
    with pytest.raises(ParamsError, match=r"logits\.seeds: got \[\]: .*must not be empty"):
        validate_params(_set(raw_params, key, []))
    with pytest.raises(ParamsError, match=r"logits\.seeds: got \[1, 1\]: .*must not repeat a seed"):
        validate_params(_set(raw_params, key, [1, 1]))
    assert validate_params(_set(raw_params, key, [2, 0])).distillation.grids["spoken-commands"].logits.seeds == [2, 0]


def test_joint_and_beyond_paper_regularizer_specs():
    from lowspike.regularizers import is_beyond_paper, split_point_spec

    assert split_point_spec("l1+wl1") == ("l1", "wl1") and split_point_spec("lp0.5") == ("lp0.5", None)
    assert [is_beyond_paper(s) for s in ("l1", "lp0.01", "synops", "hoyer+wl1")] == [False, False, True, True]
    with pytest.raises(ParamsError, match=r"points\.mlp\[0\]: got 'l1\+wl2-0\.1': unknown weight penalty 'wl2'"):
        validate_params({"regularization": {"points": {"mlp": ["l1+wl2-0.1"], "lenet5": []}, "archs": ["mlp"]}})


def test_audio_feature_shape_follows_the_mfcc_params(raw_params):
    from lowspike.data import sample_shape

    params = validate_params(raw_params)
    assert sample_shape("spoken-commands", params.data) == (1, 10, 49)  # the paper's 49 frames
    assert sample_shape("mnist5k", params.data) == (1, 28, 28)


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
        ("regularization.points.mlp", ["l1-1e-4", "l1--1.0"], "regularization.points.mlp[1]", "unknown regularizer"),
        ("regularization.points.mlp", ["l1"], "regularization.points.mlp[0]", "a point is <regularizer>-<lambda>"),
        ("regularization.points.mlp", ["l1-1e-3", "lp0-1e-3"], "regularization.points.mlp[1]", "p in (0, 1]"),
        ("regularization.points.mlp", ["l7-1e-3"], "regularization.points.mlp[0]", "allowed: l1, l2, hoyer"),
        ("simulation.timesteps", 0, "simulation.timesteps", "greater than or equal to 1"),
        ("distillation.grids.mnist5k.soft_targets.taus", [0.0], "distillation.grids.mnist5k.soft_targets.taus[0]",
         "greater than 0"),
        ("distillation.alpha", 1.5, "distillation.alpha", "less than or equal to 1"),
        ("distillation.grids.mnist5k.mse.alphas", [-0.1], "distillation.grids.mnist5k.mse.alphas[0]",
         "greater than or equal to 0"),
        ("data.datasets", ["mnist5k", "imagenet"], "data.datasets[1]", "'mnist5k'"),
        ("regularization.archs", ["resnet50"], "regularization.archs[0]", "'mlp' or 'lenet5'"),
        ("regularization.train.lr", "1e-4", "regularization.train.lr", "1.0e-4"),
        ("simulation.timesteps", 2.5, "simulation.timesteps", "valid integer"),
        ("simulation.input_coding", "morse", "simulation.input_coding", "'analog', 'poisson' or 'bernoulli'"),
        ("conversion.percentile", 120.0, "conversion.percentile", "less than or equal to 100"),
        ("simulation.colour", "red", "simulation.colour", "unknown key"),
        ("distillation.setups.mnist5k.student", "transformer", "distillation.setups.mnist5k.student", "'scnn'"),
        ("data.spoken_commands.words", [True, "no"], "data.spoken_commands.words[0]",
         "only true/false are booleans"),
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
    with pytest.raises(ParamsError, match="a number must not be quoted"):
        validate_params(_set(raw_params, "conversion.percentile", "99.9"))


def test_integer_is_accepted_where_a_float_belongs(raw_params):
    params = validate_params(_set(raw_params, "distillation.grids.mnist5k.soft_targets.taus", [1, 4]))
    assert params.distillation.grids["mnist5k"].soft_targets.taus == [1.0, 4.0]


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
