"""The "Deploy" section of both reports: each exported NIR file run back in sinabs and snntorch
against lowspike's own spikes, from the ``deploy.json`` records of the ``export_*`` stages
(:mod:`lowspike.studies.export`, docs/deploy.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..studies import DEPLOY_LIBRARIES, DEPLOY_RECORD, EXPORTS
from .document import Block, Heading, Paragraph
from .tables import Table, fmt_fraction_percent

MEANING = ("Spikes: lowspike's spike events over all layers, steps and samples. Events differing: "
           "|s_lowspike - s_library| summed over neurons and steps (a spike moved by one step counts 2). "
           "Totals differing: (sample, neuron) pairs whose spike count over T differs. Same prediction: "
           "the share of samples with the same class (most output spikes, or the largest readout summed over "
           "T for a student). Each file is loaded with lowspike's loaders (`lowspike.deploy`), which read the "
           "neuron conventions from the node metadata (docs/deploy.md).")


def read_records(root: str | Path = EXPORTS) -> dict[str, list[dict[str, Any]]]:
    """Every :data:`~lowspike.studies.DEPLOY_RECORD` under ``root``, by study."""
    records: dict[str, list[dict[str, Any]]] = {"conversion": [], "distillation": []}
    for path in sorted(Path(root).rglob(DEPLOY_RECORD)):
        record = json.loads(path.read_text())
        records.setdefault(record["study"], []).append(record)
    return records


def _library_cells(entry: dict[str, Any], library: str) -> list[str]:
    agreement = entry.get(library)
    if agreement is None:
        return ["not run"] * 3
    return [f"{agreement['events_differing']:,}", f"{agreement['totals_differing']:,}",
            fmt_fraction_percent(agreement["same_prediction"], 1)]


def deploy_table(record: dict[str, Any]) -> Table:
    """One exported network family: a row per NIR file."""
    where = record["dataset"] + (f", {record['arch']}" if record.get("arch") else f", {record.get('student', '')}")
    name = f"deploy-{record['study']}-{record['dataset']}" + (f"-{record['arch']}" if record.get("arch") else "")
    header = ["Model", "Selected as", "File (kB)", "Spikes"]
    header += [f"{library}: {column}" for library in DEPLOY_LIBRARIES
               for column in ("events differing", "totals differing", "same prediction")]
    rows = []
    for entry in record["models"]:
        spikes = next((entry[lib]["spikes"] for lib in DEPLOY_LIBRARIES if lib in entry), None)
        rows.append([entry["model"], entry["role"], f"{entry['bytes'] / 1000:.1f}",
                     f"{spikes:,}" if spikes is not None else "not run",
                     *(cell for library in DEPLOY_LIBRARIES for cell in _library_cells(entry, library))])
    neuron = f"{record['neuron'].upper()} neurons, " if record.get("neuron") else "IF neurons, "
    caption = (f"Deploy ({where}): NIR files run in sinabs and snntorch on the first {record['samples']} test "
               f"samples, T = {record['timesteps']}, {neuron}against lowspike's spikes.")
    return Table(name, caption, header, rows)


def deploy_blocks(records: list[dict[str, Any]], stage: str) -> list[Block]:
    """The Deploy heading, a table per exported network family, and what the columns mean."""
    blocks: list[Block] = [Heading("Deploy: NIR files run in sinabs and snntorch")]
    if not records:
        return blocks + [Paragraph(f"No NIR export in this run (`dvc repro {stage}` writes them).")]
    blocks += [deploy_table(record) for record in records]
    return blocks + [Paragraph(MEANING)]
