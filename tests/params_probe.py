"""Run stage scripts with their params recorded: ``python tests/params_probe.py <plan.json>`` runs
each ``{"argv", "out", "log"}`` of the list in ``plan.json`` in this one process, one after another
as a warm sweep worker runs stages (:func:`lowspike.sweep.worker.run_in_process`, the output to
``log``), and writes to ``out`` the params keys that stage read after its command-line checks
(from ``runtime.setup()`` on) and its exit code. It stops at the first stage that fails.

The params object the stage gets is a :class:`Recorded` view of the validated params: reading a
leaf (a number, a string, a list) records its dotted path; a property or method of a section
runs on the view (recording what it reads); pydantic's own methods (``model_dump``,
``model_copy``) record the whole section."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pydantic import BaseModel

from lowspike import runtime
from lowspike.sweep.worker import run_in_process


class Recorded:
    def __init__(self, value, path: str, reads: set[str], active: list[bool]):
        self._value, self._path, self._reads, self._active = value, path, reads, active

    def _record(self, path: str) -> None:
        if self._active[0]:
            self._reads.add(path)

    def _child(self, value, path: str):
        if isinstance(value, (BaseModel, dict)):
            return Recorded(value, path, self._reads, self._active)
        self._record(path)
        return value

    def __getattr__(self, name: str):
        kind = type(self._value)
        if isinstance(self._value, BaseModel) and name in kind.model_fields:
            return self._child(getattr(self._value, name), f"{self._path}.{name}" if self._path else name)
        attribute = getattr(kind, name, None)
        if isinstance(self._value, BaseModel) and not name.startswith("model_") and attribute is not None:
            if isinstance(attribute, property):  # a derived value: record what it reads
                return attribute.fget(self)
            if callable(attribute) and not isinstance(attribute, type):
                return attribute.__get__(self, kind)
        self._record(self._path)
        return getattr(self._value, name)

    def __getitem__(self, key):
        return self._child(self._value[key], f"{self._path}.{key}")

    def __contains__(self, key) -> bool:
        self._record(self._path)
        return key in self._value

    def __iter__(self):
        self._record(self._path)
        return iter(self._value)

    def __len__(self) -> int:
        self._record(self._path)
        return len(self._value)

    def get(self, key, default=None):
        return self[key] if key in self._value else default

    def items(self):
        self._record(self._path)
        return self._value.items()

    def keys(self):
        self._record(self._path)
        return self._value.keys()


def _record_params() -> tuple[set[str], list[bool]]:
    """Make the stages' params :class:`Recorded` from ``runtime.setup()`` on; returns the set the
    reads go to and the switch that ``setup`` turns on."""
    reads: set[str] = set()
    active = [False]
    parse, setup = runtime.parse_stage_args, runtime.setup

    def parse_recorded(parser, argv=None):
        parsed, params = parse(parser, argv)
        return parsed, Recorded(params, "", reads, active)

    def setup_then_record(*a, **k):
        setup(*a, **k)
        active[0] = True

    runtime.parse_stage_args, runtime.setup = parse_recorded, setup_then_record
    return reads, active


def run_plan(plan: str) -> int:
    reads, active = _record_params()
    for stage in json.loads(Path(plan).read_text()):
        reads.clear()
        active[0] = False
        code = run_in_process(stage["argv"], Path.cwd(), dict(os.environ), Path(stage["log"]))
        Path(stage["out"]).write_text(json.dumps({"exit": code, "reads": sorted(reads)}))
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(run_plan(sys.argv[1]))
