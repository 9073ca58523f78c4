"""Loading an aggregate and the small numeric helpers."""

import math

from lowspike.report.common import load_results, mean_of, plural


def test_missing_results_file_is_none(tmp_path):
    assert load_results(tmp_path / "results.json") is None
    (tmp_path / "results.json").write_text('{"rows": []}')
    assert load_results(tmp_path / "results.json") == {"rows": []}


def test_mean_skips_missing_values():
    assert mean_of([0.5, None, math.nan, 1.0]) == 0.75
    assert mean_of([None]) is None
    assert (plural(1, "seed"), plural(3, "seed")) == ("1 seed", "3 seeds")
