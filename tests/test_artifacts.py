"""Atomic artifact writers."""

from lowspike.artifacts import write_csv


def test_write_csv_columns_extras_and_empty_cells(tmp_path):
    rows = [{"a": 1, "b": None, "x": "dropped"}, {"a": 2.5}]
    write_csv(tmp_path / "t.csv", rows, ["a", "b"])
    assert (tmp_path / "t.csv").read_text() == "a,b\n1,\n2.5,\n"
    write_csv(tmp_path / "all.csv", [{"a": 1}, {"b": 2}])
    assert (tmp_path / "all.csv").read_text() == "a,b\n1,\n,2\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
