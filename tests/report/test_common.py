"""Loading an aggregate and the small numeric helpers."""

import math

import pytest

from lowspike.errors import BadInput
from lowspike.report.common import load_results, mean_of, plural
from lowspike.studies import RESULTS_SCHEMA_VERSION


def test_missing_results_file_is_none(tmp_path):
    assert load_results(tmp_path / "results.json") is None
    (tmp_path / "results.json").write_text(f'{{"schema_version": {RESULTS_SCHEMA_VERSION}, "rows": []}}')
    assert load_results(tmp_path / "results.json") == {"schema_version": RESULTS_SCHEMA_VERSION, "rows": []}


def test_a_results_file_of_another_schema_is_refused_in_one_line(tmp_path):
    (tmp_path / "results.json").write_text('{"rows": []}')
    with pytest.raises(BadInput, match=f"results schema 1, this code reads schema {RESULTS_SCHEMA_VERSION}; "
                                       "`dvc repro` rewrites it"):
        load_results(tmp_path / "results.json")


def test_mean_skips_missing_values():
    assert mean_of([0.5, None, math.nan, 1.0]) == 0.75
    assert mean_of([None]) is None
    assert (plural(1, "seed"), plural(3, "seed")) == ("1 seed", "3 seeds")
