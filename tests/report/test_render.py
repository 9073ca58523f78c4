"""The HTML reports render in headless Chromium with every image loaded (naturalWidth > 0).

Needs Debian's ``chromium`` (``apt-get install chromium``; ``LOWSPIKE_CHROMIUM`` may name another
binary); the test skips, saying so, where none is installed. A small script appended to a copy
of each report records, after the page's load event, how many images it has and which did not
decode; ``--dump-dom`` hands that record back.
"""

import html
import json
import re
from pathlib import Path

import pytest

from lowspike.report.build import write_reports

from ..browser import chromium, dump_dom  # noqa: F401 - chromium is a fixture
from .conftest import fixture_params

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.alt; });
  var out = document.createElement("pre");
  out.id = "render-check";
  out.textContent = JSON.stringify({images: images.length, broken: broken,
                                    svgs: document.querySelectorAll("figure svg").length});
  document.body.appendChild(out);
});
</script>"""


def render_check(chromium: str, page: Path, workdir: Path) -> dict:
    probe = workdir / f"probe-{page.name}"
    text = page.read_text()
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    result = dump_dom(chromium, probe.as_uri(), workdir / "profile")
    match = re.search(r'<pre id="render-check">(.*?)</pre>', result.stdout, re.S)
    assert match, f"Chromium returned no render check (exit {result.returncode}): {result.stderr[-500:]}"
    return json.loads(html.unescape(match.group(1)))


def test_fixture_reports_render_without_broken_images(chromium, aggregates, tmp_path):
    out = tmp_path / "reports"
    write_reports(fixture_params(report={"formats": ["png", "svg"], "dpi": 30}), aggregates / "results/conversion",
                  aggregates / "results/distillation", out)
    for name, figures in (("regularization.html", 6), ("distillation.html", 6)):
        check = render_check(chromium, out / name, tmp_path)
        assert check == {"images": figures, "broken": [], "svgs": 0}


def test_svg_only_reports_render_inline(chromium, aggregates, tmp_path):
    out = tmp_path / "reports"
    write_reports(fixture_params(report={"formats": ["svg"], "dpi": 30}), aggregates / "results/conversion",
                  aggregates / "results/distillation", out)
    assert render_check(chromium, out / "regularization.html", tmp_path) == {"images": 0, "broken": [], "svgs": 6}


@pytest.mark.parametrize("name", ["regularization.html", "distillation.html"])
def test_pipeline_reports_render(chromium, name, tmp_path):
    page = ROOT / "reports" / name
    if not page.exists():
        pytest.skip(f"reports/{name} not built yet (dvc repro report)")
    check = render_check(chromium, page, tmp_path)
    assert check["broken"] == [] and check["images"] == page.read_text().count("<img")


def test_the_check_catches_a_broken_image(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><figure><img alt="bad" src="data:image/png;base64,AAAA">'
                    "</figure></body></html>")
    assert render_check(chromium, page, tmp_path) == {"images": 1, "broken": ["bad"], "svgs": 0}


LAYOUT_PROBE = """<script>
window.addEventListener("load", function () {
  var prose = null, number = null;
  document.querySelectorAll("td").forEach(function (cell) {
    if (!prose && /[a-z]{4,}/.test(cell.textContent) && cell.className !== "num") { prose = cell; }
    if (!number && cell.className === "num") { number = cell; }
  });
  var marks = Array.prototype.slice.call(document.querySelectorAll("#findings td"))
    .filter(function (cell) { return /hold|undecided|not run/.test(cell.textContent) && cell.textContent.length < 20; });
  var out = document.createElement("pre");
  out.id = "layout-check";
  out.textContent = JSON.stringify({
    prose_align: prose && getComputedStyle(prose).textAlign,
    number_align: number && getComputedStyle(number).textAlign,
    body_scrolls_sideways: document.documentElement.scrollWidth > document.documentElement.clientWidth,
    asterisks: document.body.innerText.indexOf("**") >= 0,
    marks_bold: marks.filter(function (cell) { return cell.textContent.indexOf("does not hold") >= 0; })
      .map(function (cell) { var s = cell.querySelector("strong"); return !!s && getComputedStyle(s).fontWeight >= 600; })
  });
  document.body.appendChild(out);
});
</script>"""


def layout_check(chromium: str, page: Path, workdir: Path, width: int) -> dict:
    probe = workdir / f"layout-{page.name}"
    probe.write_text(page.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    result = dump_dom(chromium, probe.as_uri(), workdir / "profile", width=width)
    match = re.search(r'<pre id="layout-check">(.*?)</pre>', result.stdout, re.S)
    assert match, f"Chromium returned no layout check (exit {result.returncode}): {result.stderr[-500:]}"
    return json.loads(html.unescape(match.group(1)))


@pytest.mark.parametrize("width", [1400, 800])
def test_reports_read_as_the_markdown_prose_left_numbers_right_bold_marks_no_sideways_scroll(
        chromium, aggregates, tmp_path, width):
    out = tmp_path / "reports"
    write_reports(fixture_params(report={"formats": ["png"], "dpi": 30}), aggregates / "results/conversion",
                  aggregates / "results/distillation", out)
    marks = []
    for name in ("regularization.html", "distillation.html"):
        check = layout_check(chromium, out / name, tmp_path, width)
        assert check["prose_align"] == "left" and check["number_align"] == "right", (name, check)
        assert check["body_scrolls_sideways"] is False, (name, width)
        assert check["asterisks"] is False and all(check["marks_bold"]), (name, check)
        marks += check["marks_bold"]
    assert marks, "the fixture's findings have no 'does not hold' mark to check"
