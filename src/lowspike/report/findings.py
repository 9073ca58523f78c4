"""The "Findings" section that opens each report: the paper's claims as checks computed from
this run (``results.json`` ``findings``, written by :mod:`lowspike.studies.findings`)."""

from __future__ import annotations

from .document import Block, Heading, Paragraph
from .tables import Table

MARKS = {"holds": "holds", "does not hold": "**does not hold**", "not run": "not run"}


def findings_blocks(findings: list[dict] | None, paper_label: str, profile: str) -> list[Block]:
    """A heading, one table of the paper's findings and one of those beyond the paper."""
    blocks: list[Block] = [Heading("Findings")]
    if not findings:
        blocks.append(Paragraph("No findings: the aggregate has none (run `dvc repro` to rebuild it)."))
        return blocks
    paper_rows = [f for f in findings if not f.get("beyond_paper")]
    beyond_rows = [f for f in findings if f.get("beyond_paper")]
    held = sum(1 for f in paper_rows if f["mark"] == "holds")
    ran = sum(1 for f in paper_rows if f["mark"] != "not run")
    blocks.append(Paragraph(
        f"Each claim of {paper_label} checked on this run (profile {profile}): {held} of {ran} checked claims "
        f"hold. A model at chance accuracy (collapsed or silent) never counts as a gain nor as best."))
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
