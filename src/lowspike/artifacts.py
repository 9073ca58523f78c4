"""Artifacts are the interface between stages: every file is written atomically.

A writer fills a temporary file in the destination folder and renames it over the target,
so a stage killed at any point leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch


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
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _json_safe(value.tolist())
    if isinstance(value, Path):
        return str(value)
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
    import csv
    import io

    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(target, buffer.getvalue())


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into memory: the same object gives the same bytes.

    ``torch.save`` to a path stores that file's name inside the archive, so saving through a
    randomly named temporary file made every run's bytes differ (and DVC re-ran everything
    downstream). An in-memory buffer has no name: the archive root is always ``archive``.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def save_torch(target: str | Path, obj: Any) -> None:
    """``torch.save`` into memory, then written atomically: byte-identical for equal objects."""
    write_bytes(target, torch_bytes(obj))


def load_torch(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    return torch.load(Path(path), map_location=map_location, weights_only=False)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
