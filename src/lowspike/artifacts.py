"""Artifacts are the interface between stages: every file is written atomically.

A writer fills a temporary file in the destination folder and renames it over the target,
so a stage killed at any point leaves either the old file or the new one, never a torn one.
JSON is written with sorted keys and no wall-clock field, so equal results give equal bytes
(DVC then re-runs nothing downstream). Tensors and checkpoints: :mod:`lowspike.checkpoints`.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _json_safe(value: Any) -> Any:
    """Non-finite floats as None, tuples as lists, paths as strings, tensors and arrays as
    nested lists (anything with ``tolist``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes, int, bool)):
        return _json_safe(value.tolist())
    return value


def write_json(target: str | Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON (non-finite floats become null), atomically."""
    text = json.dumps(_json_safe(payload), indent=2, sort_keys=True, allow_nan=False) + "\n"
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_csv(target: str | Path, rows: list[dict], columns: list[str] | None = None) -> None:
    """``rows`` as CSV with a header; ``columns`` defaults to every key in order of first
    appearance, keys outside ``columns`` are left out, and missing or None cells are empty."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(target, buffer.getvalue())


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
