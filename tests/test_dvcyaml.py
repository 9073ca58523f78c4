"""dvc.yaml is generated from the registries: the committed file is the generated one, and every
registry entry has its stage family with the command, outs and deps it needs."""

import shlex
from pathlib import Path

import yaml

from lowspike import dvcyaml
from lowspike.distillation import METHODS, SETTINGS
from lowspike.imports import closure, module_file, script_imports
from lowspike.models import names

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_dvc_yaml_is_what_the_registries_generate():
    assert (ROOT / "dvc.yaml").read_text() == dvcyaml.render(ROOT / "src"), "run `make dvc-yaml`"


def _stages() -> dict:
    return yaml.safe_load(dvcyaml.render(ROOT / "src"))["stages"]


def test_one_training_family_per_architecture_and_per_method_variant():
    stages = _stages()
    assert [s for s in stages if s.startswith("train_dnn_") and not s.startswith("train_dnn_baseline")] == \
        [f"train_dnn_{arch}" for arch in names("dnn")]
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())["distillation"]
    expected = [f"{v.stage}_{dataset}" for dataset in raw["datasets"] for m in METHODS.values()
                if m.grid is None or m.name in raw["grids"][dataset] for v in m.variants
                if all(source in raw["grids"][dataset].get(m.name, {}) for _, source in v.axes)]
    assert [s for s in stages if s.startswith("train_student_")] == expected
    assert "train_student_mse_mnist5k" in expected and "train_student_mse_spoken-commands" not in expected
    for dataset in raw["datasets"]:
        for method in METHODS.values():
            for variant in method.variants:
                stage = stages.get(f"{variant.stage}_{dataset}")
                if stage is None:
                    continue
                words = shlex.split(stage["cmd"])
                assert words[:2] == ["python", "stages/train_student.py"]
                assert words[words.index("--method") + 1] == method.name
                assert words[words.index("--dataset") + 1] == dataset
                flags = {w[2:].replace("-", "_") for w in words if w.startswith("--")}
                assert flags == {"dataset", "method", "seed", *method.settings}
                assert set(method.settings) <= set(SETTINGS)
                assert list(stage["matrix"]) == [*(key for key, _ in variant.axes), "seed"]
                own = method.grid is not None and "seeds" in raw["grids"][dataset][method.name]
                assert stage["matrix"]["seed"] == (f"${{distillation.grids.{dataset}.{method.name}.seeds}}" if own
                                                   else f"${{distillation.{method.seeds_key}}}")
                assert all(f"distillation.grids.{dataset}.{method.name}." in stage["matrix"][key]
                           for key, _ in variant.axes)
                assert (f"runs/teacher/{dataset}/model.pt" in stage["deps"]) == method.uses_teacher
                assert (f"runs/teacher/{dataset}/logits.pt" in stage["deps"]) == (method.kd is not None
                                                                                 and not method.hints)
                assert stage["outs"][0].endswith("/model.pt") and "${item.seed}" in stage["outs"][0]


def test_the_baseline_is_trained_with_its_own_seeds_in_both_studies():
    stages = _stages()
    assert stages["train_dnn_baseline_seed"]["matrix"]["seed"] == "${regularization.baseline_extra_seeds}"
    assert "--point baseline-seed${item.seed}" in stages["train_dnn_baseline_seed"]["cmd"]
    assert stages["train_student_baseline_mnist5k"]["matrix"] == {"seed": "${distillation.baseline_seeds}"}


def test_code_deps_are_the_import_closure_and_the_registry_modules_the_stage_loads():
    stages = _stages()
    src = ROOT / "src"
    for name, stage in stages.items():
        script = shlex.split(stage["cmd"])[1]
        code = [d for d in stage["deps"] if d.startswith(("src/", "stages/"))]
        expected = {module_file(m, src).as_posix() for m in closure(script_imports(ROOT / script, src), src)}
        assert expected <= set(code), (name, sorted(expected - set(code)))
        assert code[0] == script
    trainings = set(stages["train_dnn_mlp"]["deps"])
    assert {"src/lowspike/models/mlp.py", "src/lowspike/models/lenet.py"} <= trainings
    assert "src/lowspike/models/scnn.py" not in trainings
    assert "src/lowspike/data/spoken_commands.py" in stages["prepare"]["deps"]
    assert [d for d in stages["report"]["deps"] if d.startswith("src/lowspike/models/")] == ["src/lowspike/models/__init__.py"]


def test_a_stage_that_runs_a_compiled_kernel_depends_on_its_c_source():
    from lowspike.imports import kernel_sources

    src = ROOT / "src"
    assert kernel_sources("lowspike.snn.leaky", src) == [Path("src/lowspike/snn/leaky_kernels.c")]
    assert kernel_sources("lowspike.data.audio", src) == [Path("src/lowspike/data/audio_kernels.c")]
    assert kernel_sources("lowspike.metrics", src) == []
    stages = _stages()
    assert "src/lowspike/snn/leaky_kernels.c" in stages["train_student_baseline_mnist5k"]["deps"]
    assert "src/lowspike/data/audio_kernels.c" in stages["train_student_baseline_spoken-commands"]["deps"]
    assert not any(d.endswith(".c") for d in stages["report"]["deps"])
