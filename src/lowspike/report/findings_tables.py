"""The "Findings" section that opens each report: the paper's claims as checks computed from
this run (``results.json`` ``findings``, written by :mod:`lowspike.studies.findings`)."""

from __future__ import annotations

from .document import Block, Heading, Paragraph
from .tables import Table

MARKS = {"holds": "holds", "does not hold": "**does not hold**", "undecided": "*undecided*", "not run": "not run"}


def findings_blocks(findings: list[dict] | None, paper_label: str, profile: str) -> list[Block]:
    """A heading, one table of the paper's findings and one of those beyond the paper."""
    blocks: list[Block] = [Heading("Findings")]
    if not findings:
        blocks.append(Paragraph("No findings: the aggregate has none (run `dvc repro` to rebuild it)."))
        return blocks
    paper_rows = [f for f in findings if not f.get("beyond_paper")]
    beyond_rows = [f for f in findings if f.get("beyond_paper")]
    held = sum(1 for f in paper_rows if f["mark"] == "holds")
    undecided = sum(1 for f in paper_rows if f["mark"] == "undecided")
    ran = sum(1 for f in paper_rows if f["mark"] != "not run")
    blocks.append(Paragraph(
        f"Each claim of {paper_label} checked on this run (profile {profile}): {held} of {ran} checked claims "
        f"hold, {undecided} undecided. A claim is computed on each paired bootstrap resample of the test samples "
        f"(the same resamples for every claim, docs/statistics.md): it holds when at least 95% of the resamples "
        f"satisfy it and its margin (how far the point estimate lies beyond the claim's threshold) exceeds the "
        f"baseline's seed-to-seed spread, does not hold when at most 5% do, and is undecided otherwise. The models "
        f"are picked by the tables' rules on their point estimates, which flatters the best of a grid; a model at "
        f"chance accuracy (collapsed or silent) never counts as a gain nor as best."))
    columns = ["", "Claim", "This run", "Numbers"]
    blocks.append(Table("findings", f"Findings of {paper_label}, computed from this run's results.", columns,
                        [[f"({f['key']})", f["claim"], MARKS.get(f["mark"], f["mark"]), f["evidence"]]
                         for f in paper_rows]))
    if beyond_rows:
        blocks.append(Table("findings-beyond",
                            "Beyond the paper: the paper's own future work, run here as new methods.",
                            columns, [[f"({f['key']})", f["claim"], MARKS.get(f["mark"], f["mark"]), f["evidence"]]
                                      for f in beyond_rows]))
    return blocks
