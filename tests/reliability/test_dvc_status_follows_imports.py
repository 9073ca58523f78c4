"""Editing a module marks exactly the stages whose import closure holds it: a scratch copy of the
pipeline with every output in place and recorded (``dvc commit``), one module edited, and
``dvc status`` compared with the closures of the stages' scripts (and the registry modules they
load)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lowspike.dvcyaml import all_stages
from lowspike.imports import closure, module_file, script_imports

from .conftest import dvc, make_tiny_repo

pytestmark = pytest.mark.integration


def _placeholders(root: Path) -> None:
    """Every out of the pipeline, as DVC expands it, written as a small file or folder."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            for out in stage.outs:
                path = Path(out.fs_path)
                if path.suffix in (".pt", ".json", ".csv", ".md", ".html"):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(stage.addressing)
                else:
                    path.mkdir(parents=True, exist_ok=True)
                    (path / "placeholder").write_text(stage.addressing)


def _closures(root: Path) -> dict[str, set[str]]:
    """Per stage family of the generator, the files of its script's import closure and of the
    registry modules it loads (computed here from the code, not read from dvc.yaml)."""
    src = root / "src"
    return {stage.name: {module_file(m, src).as_posix()
                         for m in closure(script_imports(root / stage.script, src) + stage.loads, src)}
            for stage in all_stages(root / "params.yaml")}


MODULES = ["src/lowspike/snn/leaky.py", "src/lowspike/report/tables.py", "src/lowspike/data/spoken_commands.py",
           "src/lowspike/energy.py", "src/lowspike/tracking.py", "src/lowspike/stats.py"]


def test_an_edited_module_marks_exactly_the_stages_whose_closure_holds_it(tmp_path):
    root = make_tiny_repo(tmp_path / "repo", commit=True)
    (root / "profiles").mkdir(exist_ok=True)
    _placeholders(root)
    committed = dvc(root, "commit", "-f", "-q")
    assert committed.returncode == 0, committed.stderr[-2000:]
    closures = _closures(root)
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stages = [stage.name for stage in repo.index.stages]
    for module in MODULES:
        clean = dvc(root, "status", "--json")
        assert clean.returncode == 0 and json.loads(clean.stdout or "{}") == {}, clean.stdout + clean.stderr
        edited = root / module
        original = edited.read_text()
        edited.write_text(original + "\n# edited\n")
        status = dvc(root, "status", "--json")
        edited.write_text(original)
        assert status.returncode == 0, status.stderr
        expected = {name for name in stages if module in closures[name.split("@")[0]]}
        assert set(json.loads(status.stdout or "{}")) == expected, module
        assert expected, module
