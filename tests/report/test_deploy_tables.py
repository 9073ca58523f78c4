"""The reports' Deploy section, from hand-written export records."""

import json

from lowspike.report.deploy_tables import deploy_blocks, deploy_table, read_records
from lowspike.report.document import Heading, Paragraph

AGREEMENT = {"spikes": 12345, "events_differing": 0, "totals_differing": 0, "same_prediction": 1.0}
RECORD = {"study": "conversion", "dataset": "mnist5k", "arch": "lenet5", "timesteps": 100, "samples": 200,
          "models": [{"model": "baseline", "role": "baseline", "file": "baseline.nir", "bytes": 251234,
                      "sinabs": AGREEMENT, "snntorch": {**AGREEMENT, "events_differing": 28, "same_prediction": 0.995}},
                     {"model": "l1-1e-3", "role": "Table 1: l1", "file": "l1-1e-3.nir", "bytes": 251234}]}


def test_a_row_per_file_with_both_libraries_agreement():
    table = deploy_table(RECORD)
    assert table.name == "deploy-conversion-mnist5k-lenet5"
    assert table.rows[0] == ["baseline", "baseline", "251.2", "12,345", "0", "0", "100.0%", "28", "0", "99.5%"]
    assert table.rows[1][3:] == ["not run"] * 7
    assert "first 200 test samples, T = 100, IF neurons" in table.caption


def test_the_section_says_when_nothing_was_exported():
    blocks = deploy_blocks([], "export_conversion")
    assert isinstance(blocks[0], Heading) and blocks[1].text == ("No NIR export in this run "
                                                                 "(`dvc repro export_conversion` writes them).")
    assert isinstance(deploy_blocks([RECORD], "export_conversion")[-1], Paragraph)


def test_records_are_read_by_study(tmp_path):
    folder = tmp_path / "conversion" / "mnist5k" / "lenet5"
    folder.mkdir(parents=True)
    (folder / "deploy.json").write_text(json.dumps(RECORD))
    assert read_records(tmp_path) == {"conversion": [RECORD], "distillation": []}
    assert read_records(tmp_path / "missing") == {"conversion": [], "distillation": []}
