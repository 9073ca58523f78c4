"""The on-disk format of a prepared dataset, ``data/prepared/<name>/``.

Files (the only thing downstream stages read):

- ``inputs.pt``  images uint8 ``[N, C, H, W]`` or waveforms int16 ``[N, L]``
- ``labels.pt``  int64 ``[N]``
- ``splits.pt``  dict of int64 index tensors ``{"train", "val", "test"}``
- ``dataset.json`` name, kind, shapes, class names, counts per split and class, sha256 of
  the source files and of the three tensor files, preprocessing parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..artifacts import read_json, sha256_file, write_json
from ..checkpoints import save_torch
from ..errors import PreparedDataCorrupt
from .base import SPLITS, RawDataset

TENSOR_FILES = ("inputs.pt", "labels.pt", "splits.pt")
EXPECTED_LAYOUT = "dataset.json, " + ", ".join(TENSOR_FILES)
FORMAT_VERSION = 1


def write_prepared(raw: RawDataset, out_dir: str | Path) -> dict:
    """Write ``raw`` to ``out_dir`` (each file atomically) and return the metadata."""
    out_dir = Path(out_dir)
    save_torch(out_dir / "inputs.pt", raw.inputs.contiguous())
    save_torch(out_dir / "labels.pt", raw.labels.long().contiguous())
    save_torch(out_dir / "splits.pt", {k: v.long().contiguous() for k, v in raw.splits.items()})
    num_classes = len(raw.classes)
    counts = {
        split: {
            "total": int(index.numel()),
            "per_class": {
                raw.classes[c]: int(n)
                for c, n in enumerate(torch.bincount(raw.labels[index], minlength=num_classes).tolist())
            },
        }
        for split, index in raw.splits.items()
    }
    meta = {
        "format_version": FORMAT_VERSION,
        "name": raw.name,
        "kind": raw.kind,
        "sample_shape": list(raw.inputs.shape[1:]),
        "dtype": str(raw.inputs.dtype).replace("torch.", ""),
        "sample_rate": raw.sample_rate,
        "classes": raw.classes,
        "num_classes": num_classes,
        "counts": counts,
        "sources": raw.sources,
        "preprocessing": raw.preprocessing,
        "sha256": {name: sha256_file(out_dir / name) for name in TENSOR_FILES},
    }
    write_json(out_dir / "dataset.json", meta)
    return meta


@dataclass
class PreparedDataset:
    """A prepared dataset held in memory."""

    meta: dict
    inputs: torch.Tensor
    labels: torch.Tensor
    splits: dict[str, torch.Tensor]

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def num_classes(self) -> int:
        return self.meta["num_classes"]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw inputs and labels of one split."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; allowed: {SPLITS}")
        index = self.splits[name]
        return self.inputs[index], self.labels[index]


def _read_meta(meta_path: Path, rerun: str) -> dict:
    """``dataset.json``, refused when it does not parse or lacks the sha256 of a tensor file."""
    try:
        meta = read_json(meta_path)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PreparedDataCorrupt(
            f"{meta_path} is truncated or altered (not valid JSON: {exc}): {rerun}"
        ) from None
    hashes = meta.get("sha256") if isinstance(meta, dict) else None
    if not isinstance(hashes, dict) or any(not isinstance(hashes.get(name), str) for name in TENSOR_FILES):
        raise PreparedDataCorrupt(
            f"{meta_path} is truncated or altered (no sha256 for each of {', '.join(TENSOR_FILES)}): {rerun}"
        )
    return meta


def load_prepared(directory: str | Path, verify: bool = True) -> PreparedDataset:
    """Read ``directory`` written by :func:`write_prepared`, checking every sha256."""
    directory = Path(directory)
    meta_path = directory / "dataset.json"
    if not meta_path.exists():
        raise PreparedDataCorrupt(
            f"{meta_path} not found: expected {directory}/ holding {EXPECTED_LAYOUT}, written by the "
            f"prepare stage (`dvc repro prepare@{directory.name}`)"
        )
    rerun = f"re-run `dvc repro -f prepare@{directory.name}`"
    meta = _read_meta(meta_path, rerun)
    for name in TENSOR_FILES:
        path = directory / name
        if not path.exists():
            raise PreparedDataCorrupt(f"{path} is missing: {rerun}")
        if verify and sha256_file(path) != meta["sha256"][name]:
            raise PreparedDataCorrupt(f"{path} is truncated or altered (sha256 differs from dataset.json): {rerun}")
    return PreparedDataset(
        meta=meta,
        inputs=torch.load(directory / "inputs.pt", weights_only=True),
        labels=torch.load(directory / "labels.pt", weights_only=True),
        splits=torch.load(directory / "splits.pt", weights_only=True),
    )
