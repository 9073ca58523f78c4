"""The report stage end to end on the fixture aggregates: every output, deterministic bytes,
missing studies stated, stale figures removed."""

import csv
import os
import subprocess
import sys
from pathlib import Path


from .conftest import PARAMS, complete_params_text
from .test_html import broken_images

ROOT = Path(__file__).resolve().parents[2]


def _run_stage(tmp_path, aggregates, out="reports", params=None):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(complete_params_text(params or PARAMS))
    env = {**os.environ, "LOWSPIKE_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages/report.py"), "--params", str(params_file),
         "--conversion", str(aggregates / "results/conversion"),
         "--distillation", str(aggregates / "results/distillation"), "--out", str(tmp_path / out)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return tmp_path / out, result.stderr


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stage_writes_every_report_file_deterministically(tmp_path, aggregates):
    out, stderr = _run_stage(tmp_path, aggregates)
    assert "[report]" in stderr
    for name in ("regularization.md", "regularization.html", "distillation.md", "distillation.html"):
        assert (out / name).stat().st_size > 0
    pngs = sorted(p.name for p in (out / "figures").iterdir())  # the folder `dvc plots` shows: PNGs only
    svgs = sorted(p.name for p in (out / "svg").iterdir())
    assert len(pngs) == 12 and all(f.endswith(".png") for f in pngs)
    assert [f.replace(".png", ".svg") for f in pngs] == svgs
    for stem in ("regularization", "distillation"):
        text = (out / f"{stem}.html").read_text()
        assert broken_images(text) == [] and text.count("<img") == sum(
            f.startswith(stem) for f in pngs)
        markdown = (out / f"{stem}.md").read_text()
        for line in markdown.splitlines():
            if line.startswith("!["):
                assert (out / line[line.index("(") + 1:-1]).exists()
    with open(out / "plots/regularization_sweep.csv") as handle:
        sweep = list(csv.DictReader(handle))
    assert len(sweep) == 7 and {r["status"] for r in sweep} == {"ok", "diverged"}
    first = _snapshot(out)
    again, _ = _run_stage(tmp_path, aggregates)
    assert _snapshot(again) == first


def test_stage_without_distillation_results_and_with_stale_figures(tmp_path, aggregates):
    (tmp_path / "reports/figures").mkdir(parents=True)
    (tmp_path / "reports/figures/old_figure.png").write_bytes(b"stale")
    params = {**PARAMS, "report": {"formats": ["svg"], "dpi": 30}}
    empty = tmp_path / "nothing"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(complete_params_text(params))
    from lowspike.params import read_params
    from lowspike.report.build import write_reports

    summary = write_reports(read_params(params_file), aggregates / "results/conversion", empty / "distillation",
                            tmp_path / "reports")
    assert "0 figures" in summary.split("+")[-1]
    assert not (tmp_path / "reports/figures/old_figure.png").exists()
    assert all(p.suffix == ".svg" for p in (tmp_path / "reports/figures").iterdir())
    text = (tmp_path / "reports/distillation.md").read_text()
    assert "has no results" in text and "nan" not in text.lower()
    assert "<svg" in (tmp_path / "reports/regularization.html").read_text()
