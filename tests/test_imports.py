"""The package's import graph: no cycle (lazy imports and registry entries included), and the
torch-free entry points stay torch-free."""

import subprocess
import sys
from pathlib import Path

import pytest

from lowspike import imports

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def test_the_package_has_no_import_cycle():
    assert imports.cycles(SRC) == []


def test_the_walker_sees_lazy_imports_and_registry_entries(tmp_path):
    package = tmp_path / "lowspike"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import b\n")
    (package / "a.py").write_text("def f():\n    from .sub import b\n\nREGISTRY = {'x': 'lowspike.c:build'}\n")
    (package / "sub" / "b.py").write_text("import lowspike.a\n\nif __name__ == '__main__':\n    import lowspike.c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    graph = imports.import_graph(tmp_path)
    edges = {(e.source, e.target, e.lazy, e.named) for es in graph.values() for e in es}
    assert edges == {("lowspike.sub", "lowspike.sub.b", False, False), ("lowspike.a", "lowspike.sub.b", True, False),
                     ("lowspike.a", "lowspike.c", True, True), ("lowspike.sub.b", "lowspike.a", False, False)}
    assert imports.cycles(tmp_path) == [["lowspike.a", "lowspike.sub.b"]]
    assert imports.closure(["lowspike.sub"], tmp_path) == ["lowspike.a", "lowspike.sub", "lowspike.sub.b"]
    assert imports.closure(["lowspike.sub"], tmp_path, named=True)[-1] == "lowspike.sub.b"
    assert "lowspike.c" in imports.closure(["lowspike.sub"], tmp_path, named=True)


def _imported(command: list[str], cwd: Path) -> set[str]:
    """The modules a fresh interpreter running ``command`` imported (``python -X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def test_params_validation_loads_no_torch():
    modules = _imported(["-m", "lowspike.config", "params.yaml"], ROOT)
    assert "lowspike.params" in modules and "lowspike.models" in modules
    assert not {m for m in modules if m.split(".")[0] in ("torch", "snntorch", "torchaudio")}


@pytest.mark.parametrize("script", ["stages/report.py", "stages/aggregate_conversion.py",
                                    "stages/aggregate_distillation.py"])
def test_the_json_only_stages_load_no_torch(tmp_path, script):
    """The report and the aggregates on a scratch copy of the committed results (the aggregates
    on no evaluation at all): they read and write JSON, figures and text only."""
    import shutil

    for item in ("params.yaml", "profiles", "results", "stages"):
        source = ROOT / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / item)
    modules = _imported([script], tmp_path)
    assert "matplotlib" in modules or "aggregate" in script
    assert not {m for m in modules if m.split(".")[0] in ("torch", "snntorch", "torchaudio")}
