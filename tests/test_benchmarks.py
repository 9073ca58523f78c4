"""Smoke test of benchmarks/run.py on tiny sizes (no timing assertions)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_bench_writes_every_section_with_targets(tmp_path, monkeypatch):
    bench = _load_bench()
    g = torch.Generator().manual_seed(0)
    tiny = (torch.rand(300, 1, 28, 28, generator=g), torch.randint(0, 10, (300,), generator=g),
            torch.rand(200, 1, 28, 28, generator=g), torch.randint(0, 10, (200,), generator=g), "random")
    monkeypatch.setattr(bench, "load_data", lambda quick: tiny)
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--quick", "--threads", "1", "--out", str(tmp_path),
                           "--only", "simulation", "spiking", "compile", "dnn", "pipeline"]) == 0
    finally:
        torch.set_num_threads(threads)
    report = json.loads((tmp_path / "bench.json").read_text())
    assert set(report["sections"]) == {"simulation", "spiking", "compile", "dnn", "pipeline"}
    assert report["meta"]["device"]["device"] in ("cpu", "cuda")
    names = [f["name"] for figs in report["sections"].values() for f in figs]
    assert any("snntorch loop / ours" in n for n in names)
    assert any("SpikingJelly multi-step nodes" in n for n in names)
    assert any("event-driven" in n for n in names)
    assert any("torch.compile" in n for n in names)
    for figs in report["sections"].values():
        for f in figs:
            assert set(f) == {"name", "value", "unit", "target", "pass", "note"}
    markdown = (tmp_path / "bench.md").read_text()
    assert "| figure | value | target | pass | note |" in markdown


def test_growth_figure_ratio_and_verdict():
    bench = _load_bench()
    linear = bench.growth_figure("t", (1, 2, 4), [0.002, 0.002, 0.003], "ms")
    assert linear["value"] == 1.5 and linear["pass"] is True
    quadratic = bench.growth_figure("t", (1, 2, 4), [0.001, 0.002, 0.004], "ms")
    assert quadratic["value"] == 4.0 and quadratic["pass"] is False
    assert quadratic["note"] == "ms: {'1': 1.0, '2': 2.0, '4': 4.0}"


def test_timed_records_wall_time_peak_rss_and_exit_code(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run.json"
    code = subprocess.call([sys.executable, str(ROOT / "benchmarks" / "timed.py"), str(out), "--",
                            sys.executable, "-c", "import time; x = bytearray(50 * 2**20); time.sleep(0.2); raise SystemExit(3)"])
    record = json.loads(out.read_text())
    assert code == 3 and record["exit_code"] == 3
    assert record["wall_s"] >= 0.2
    assert record["peak_rss_mib"] >= 50
    assert record["command"].endswith("raise SystemExit(3)")


def test_timed_sums_the_runners_stage_seconds_per_family(tmp_path):
    import subprocess
    import sys

    writer = ("import json, pathlib; p = pathlib.Path('.cache/sweep/last_run.json'); "
              "p.parent.mkdir(parents=True); p.write_text(json.dumps({'seconds': {'prepare@digits': 1.5, "
              "'train_student_het_mnist5k@1.0-2.0-0': 40.25, 'train_student_het_mnist5k@1.0-4.0-0': 41.0, "
              "'report': 2.0}, 'peak_rss_mib': {'prepare@digits': 300.0, 'report': 5000.5}}))")
    code = subprocess.call([sys.executable, str(ROOT / "benchmarks" / "timed.py"), "run.json", "--",
                            sys.executable, "-c", writer], cwd=tmp_path)
    record = json.loads((tmp_path / "run.json").read_text())
    assert code == 0 and record["stage_seconds_total"] == 84.75
    assert record["stage_families"] == {"train_student_het_mnist5k": {"stages": 2, "seconds": 81.25},
                                        "report": {"stages": 1, "seconds": 2.0},
                                        "prepare": {"stages": 1, "seconds": 1.5}}
    assert record["worker_peak_rss_mib"] == {"mib": 5000.5, "after_stage": "report"}
    assert record["peak_rss_mib"] == 5000.5  # the workers' peak, above the writer's own


def test_stage_cost_splits_a_training_stage_into_its_parts(tmp_path):
    bench = _load_bench()
    figures = {f["name"]: f for f in bench.bench_stage_cost(quick=True)}
    parts = ["interpreter (python -c pass)", "import torch", "imports of a DNN training stage",
             "training stage, MLflow off", "training stage, MLflow on",
             "training stage, MLflow on, warm process (2nd run on)"]
    for name in parts:
        assert figures[name]["value"] > 0 and figures[name]["unit"] == "s", name
    assert figures["fixed cost of a stage in a warm worker (warm stage, 1-epoch training included)"]["target"] == "<= 2"
