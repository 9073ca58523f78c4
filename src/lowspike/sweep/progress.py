"""What the runner prints while it works.

One line per finished stage, always (also into a log file: it is the record of where each
stage ran): ``[done/total] name  on node  seconds  headline``, where the headline is the last
``[stage] ...`` line the stage printed. On a terminal a status line below it shows the
done/running/queued counts and is rewritten in place; elsewhere the counts end each stage
line instead, and Ray's own worker output is never forwarded (stage logs are captured and
their tails shown when a stage fails).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO


@dataclass
class Counts:
    done: int
    running: int
    queued: int
    failed: int = 0

    def __str__(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"done {self.done}, running {self.running}, queued {self.queued}{failed}"


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, live: bool | None = None):
        self.total = total
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._status_shown = False

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stream.write("\r\033[K")
            self._status_shown = False

    def line(self, text: str) -> None:
        self._clear_status()
        self.stream.write(text + "\n")
        self.stream.flush()

    def stage_done(self, name: str, node: str, seconds: float, headline: str, counts: Counts) -> None:
        text = f"[{counts.done}/{self.total}] {name}  on {node}  {seconds:.1f} s"
        if headline:
            text += f"  {headline}"
        if not self.live:
            text += f"  ({counts})"
        self.line(text)
        self.status(counts)

    def status(self, counts: Counts) -> None:
        if not self.live:
            return
        self._clear_status()
        self.stream.write(f"sweep: {counts}")
        self.stream.flush()
        self._status_shown = True

    def close(self) -> None:
        self._clear_status()
        self.stream.flush()
