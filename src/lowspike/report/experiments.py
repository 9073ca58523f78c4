"""Experiments side by side in a terminal (``make exp``, ``make diff``; docs/reports.md).

``show``: every experiment DVC knows (the workspace, the branch, ``dvc exp run`` results) with
the params that differ between them and the headline metrics of both studies
(:mod:`lowspike.report.headline`), one experiment per column, one finding per row, so that a
160-column terminal holds it without truncating a cell. ``--csv`` writes the same selection one
experiment per row, a study's findings in one column (2 + changed params + 26 columns on the
default run).

``diff REV``: the headline files of the workspace against those of ``REV`` (a git revision or a
``dvc exp`` name): what changed, in one screen; one line when the two files' schema versions
differ.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from .headline import SCHEMA_VERSION

HEADLINES = {"conversion": "results/conversion/headline.json", "distillation": "results/distillation/headline.json"}
"""The headline file of each study, as the report stage writes them."""

RESULTS = {"conversion": "results/conversion/results.json", "distillation": "results/distillation/results.json"}
"""The aggregate of each study, whose ``schema_version`` :func:`results_schema_lines` compares."""


@dataclass
class Experiment:
    label: str
    rev: str
    params: dict[str, Any] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    """One row per finding (the terminal view)."""
    columns: dict[str, Any] = field(default_factory=dict)
    """The findings in one column per study (the CSV)."""


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: json.dumps(data) if isinstance(data, list) else data}


def _headline_rows(metrics: dict[str, Any], split_findings: bool = True) -> dict[str, Any]:
    """``{"<study> <key>": value}`` of the headline files in DVC's metrics of one revision; with
    ``split_findings`` the findings string becomes one row per finding."""
    rows: dict[str, Any] = {}
    for study, path in HEADLINES.items():
        data = (metrics.get(path) or {}).get("data") or {}
        for key, value in data.items():
            if key == "findings" and isinstance(value, str) and split_findings:
                for part in filter(None, (p.strip() for p in value.split(","))):
                    name, _, mark = part.partition(" ")
                    rows[f"{study} finding {name}"] = mark
            elif key != "schema_version":
                rows[f"{study} {key}"] = value
    return rows


def parse_exp_show(rows: list[dict]) -> list[Experiment]:
    """The experiments of ``dvc exp show --json``: each baseline revision and its experiments."""
    experiments: list[Experiment] = []

    def add(label: str, rev: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        params = _flatten(((data.get("params") or {}).get("params.yaml") or {}).get("data") or {})
        metrics = data.get("metrics") or {}
        experiments.append(Experiment(label, rev, params, _headline_rows(metrics), _headline_rows(metrics, False)))

    for row in rows:
        add(row.get("name") or row.get("rev", "?"), row.get("rev", ""), row.get("data"))
        for group in row.get("experiments") or []:
            for revision in group.get("revs") or []:
                add(revision.get("name") or revision.get("rev", "?")[:7], revision.get("rev", ""), revision.get("data"))
    return experiments


def changed_params(experiments: list[Experiment]) -> list[str]:
    """The params whose values are not the same in every experiment."""
    keys = sorted({key for e in experiments for key in e.params})
    return [key for key in keys if len({json.dumps(e.params.get(key), sort_keys=True) for e in experiments}) > 1]


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def transposed(experiments: list[Experiment]) -> str:
    """One row per changed param and headline key, one column per experiment."""
    params = changed_params(experiments)
    keys = list(dict.fromkeys(key for e in experiments for key in e.headline))
    table = [["", *(e.label for e in experiments)]]
    table += [[f"param {key}", *(_text(e.params.get(key)) for e in experiments)] for key in params]
    table += [[key, *(_text(e.headline.get(key)) for e in experiments)] for key in keys]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def csv_rows(experiments: list[Experiment]) -> list[list[str]]:
    """DVC's orientation (an experiment per row) with make exp's selection of columns, the
    findings of a study in one column."""
    params = changed_params(experiments)
    keys = list(dict.fromkeys(key for e in experiments for key in e.columns))
    rows = [["Experiment", "rev", *params, *keys]]
    rows += [[e.label, e.rev, *(_text(e.params.get(k)) for k in params), *(_text(e.columns.get(k)) for k in keys)]
             for e in experiments]
    return rows


def _dvc_exp_show() -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: dvc exp show failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return json.loads(proc.stdout)


def _resolve(rev: str) -> str:
    """A ``dvc exp`` name to its commit; anything else is passed to git as it is."""
    for experiment in parse_exp_show(_dvc_exp_show()):
        if experiment.label == rev and experiment.rev not in ("", "workspace"):
            return experiment.rev
    return rev


def _read_at(rev: str, path: str) -> dict | None:
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def _read_workspace(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError:
        return None


def diff_lines(old: dict[str, dict | None], new: dict[str, dict | None], old_label: str) -> list[str]:
    """What differs between two sets of headline files (``{study: data}``), one line per key."""
    lines: list[str] = []
    for study in HEADLINES:
        before, after = old.get(study), new.get(study)
        if before is None or after is None:
            lines.append(f"{study}: no headline file in {old_label if before is None else 'the workspace'}")
            continue
        versions = (before.get("schema_version"), after.get("schema_version"))
        if versions[0] != versions[1]:
            lines.append(f"{study}: headline schema {versions[0]} in {old_label}, {versions[1]} in the workspace: "
                         "not comparable key by key")
            continue
        rows_before = _headline_rows({HEADLINES[study]: {"data": before}})
        rows_after = _headline_rows({HEADLINES[study]: {"data": after}})
        changed = [key for key in dict.fromkeys([*rows_before, *rows_after])
                   if rows_before.get(key) != rows_after.get(key)]
        for key in changed:
            a, b = rows_before.get(key), rows_after.get(key)
            delta = f"  ({b - a:+g})" if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
                and not isinstance(a, bool) else ""
            lines.append(f"{key}: {_text(a)} -> {_text(b)}{delta}")
        lines.append(f"{study}: {len(changed)} of {len(rows_after)} headline values changed")
    return lines


def results_schema_lines(old: dict[str, dict | None], new: dict[str, dict | None], old_label: str) -> list[str]:
    """One line per study whose ``results.json`` schema differs between the two sides (a file
    without ``schema_version`` is schema 1)."""
    lines = []
    for study in RESULTS:
        before, after = old.get(study), new.get(study)
        if before is None or after is None:
            continue
        versions = (before.get("schema_version", 1), after.get("schema_version", 1))
        if versions[0] != versions[1]:
            lines.append(f"{study}: results.json schema {versions[0]} in {old_label}, {versions[1]} in the workspace "
                         "(keys renamed or redefined between them)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="experiments side by side")
    show.add_argument("--csv", action="store_true", help="one experiment per row, as CSV")
    diff = sub.add_parser("diff", help="the workspace's headline against REV's")
    diff.add_argument("rev", help="a git revision or a dvc exp name")
    args = parser.parse_args(argv)
    if args.command == "show":
        experiments = parse_exp_show(_dvc_exp_show())
        if args.csv:
            csv.writer(sys.stdout).writerows(csv_rows(experiments))
        else:
            print(transposed(experiments))
        return 0
    commit = _resolve(args.rev)
    old = {study: _read_at(commit, path) for study, path in HEADLINES.items()}
    new = {study: _read_workspace(path) for study, path in HEADLINES.items()}
    print(f"headline (schema {SCHEMA_VERSION}): {args.rev} -> workspace")
    print("\n".join(diff_lines(old, new, args.rev)))
    schema_lines = results_schema_lines({study: _read_at(commit, path) for study, path in RESULTS.items()},
                                        {study: _read_workspace(path) for study, path in RESULTS.items()}, args.rev)
    if schema_lines:
        print("\n".join(schema_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
