"""Cell formatters: exact strings, and n/a instead of nan for missing or non-finite values."""

import math

import pytest

from lowspike.report.tables import (
    Table,
    fmt_count,
    fmt_fraction_percent,
    fmt_lambda,
    fmt_mean_std,
    fmt_number,
    fmt_percent,
    fmt_points,
)


def test_formatters_on_hand_picked_values():
    assert fmt_count(326185.4) == "326,185"
    assert fmt_percent(-67.294) == "-67.29%"
    assert fmt_percent(0.0) == "+0.00%"
    assert fmt_fraction_percent(0.9791) == "97.91%"
    assert fmt_fraction_percent(0.0015, sign=True) == "+0.15%"
    assert fmt_points(-0.4) == "-0.40"
    assert fmt_number(0.94717, 3) == "0.947"
    assert [fmt_lambda(v) for v in (9e-4, 1.0, 0.0, 2.5e-3)] == ["9e-04", "1e+00", "0", "2.50e-03"]


def test_mean_std_only_when_seeds_were_averaged():
    assert fmt_mean_std(0.97, 0.0141421, 2, fmt_fraction_percent) == "97.00% ± 1.41%"
    assert fmt_mean_std(0.97, 0.0, 1, fmt_fraction_percent) == "97.00%"
    assert fmt_mean_std(-0.25, 0.05, 3, lambda v: fmt_fraction_percent(v, sign=True)) == "-25.00% ± 5.00%"


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, "x", True])
def test_missing_values_are_na_never_nan(bad):
    for formatter in (fmt_count, fmt_percent, fmt_fraction_percent, fmt_points, fmt_number, fmt_lambda):
        assert formatter(bad) == "n/a"
    assert fmt_mean_std(bad, 0.1, 3) == "n/a"


def test_markdown_table_escapes_pipes_and_checks_width():
    table = Table("t", "Caption", ["a", "b"], [["1 | 2", "3"]])
    assert table.to_markdown() == "**Caption**\n\n| a | b |\n|---|---|\n| 1 \\| 2 | 3 |"
    with pytest.raises(ValueError, match="2 cells"):
        Table("t", "c", ["a"], [["1", "2"]])
