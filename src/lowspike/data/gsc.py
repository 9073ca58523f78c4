"""Google Speech Commands v0.02 read from a local folder in its official layout.

``<data.root>/<data.gsc.folder>/``: one folder per word holding 16 kHz mono WAV files,
``validation_list.txt`` and ``testing_list.txt`` naming clips as ``word/file.wav``; every other
clip of a kept word is training data; ``_background_noise_`` is never a class. Clips are read
with soundfile as int16 and zero-padded or cropped to 1 s (16,000 samples). ``data.gsc.words``
empty keeps the 35 official words. The same reader serves the synthesized ``spoken-commands``
set, written in this layout.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile
import torch

from ..artifacts import sha256_file
from ..errors import DataFileError, DatasetMissing
from .base import RawDataset

if TYPE_CHECKING:
    from ..config import DataConfig

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
OFFICIAL_WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go", "happy",
    "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop",
    "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)
LIST_FILES = {"val": "validation_list.txt", "test": "testing_list.txt"}
LAYOUT = (
    "<folder>/<word>/<clip>.wav (16 kHz mono), <folder>/validation_list.txt and <folder>/testing_list.txt "
    "listing clips as <word>/<clip>.wav"
)
DOWNLOAD_HINT = ("get it from http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz and extract it "
                 "into that folder")


def fit_to_clip(samples: np.ndarray, length: int = CLIP_SAMPLES) -> np.ndarray:
    """Zero-pad at the end or crop the end to ``length`` samples."""
    if samples.shape[0] >= length:
        return samples[:length]
    return np.concatenate([samples, np.zeros(length - samples.shape[0], dtype=samples.dtype)])


def read_wav_int16(path: Path) -> np.ndarray:
    """The first channel of a WAV file as int16; :class:`DataFileError` naming the file when it is
    not audio soundfile can read, or not at 16 kHz."""
    try:
        samples, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise DataFileError(f"{path}: not a readable audio file ({str(exc).strip() or type(exc).__name__})") from None
    if rate != SAMPLE_RATE:
        raise DataFileError(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE}")
    if samples.shape[0] == 0:
        raise DataFileError(f"{path}: no samples")
    return samples[:, 0]


def read_folder(folder: Path, words: list[str] | tuple[str, ...], name: str, seed_note: dict | None = None
                ) -> RawDataset:
    """Every clip of ``words`` under ``folder`` (official layout), labelled by the word's index."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetMissing(f"{name}: {folder} not found; expected layout: {LAYOUT}; {DOWNLOAD_HINT}")
    lists = {}
    for split, filename in LIST_FILES.items():
        path = folder / filename
        if not path.exists():
            raise DatasetMissing(f"{name}: {path} not found; expected layout: {LAYOUT}")
        lists[split] = {line.strip() for line in path.read_text().splitlines() if line.strip()}
    missing = [w for w in words if not (folder / w).is_dir()]
    if missing:
        raise DatasetMissing(f"{name}: word folder(s) {missing} not found under {folder}; expected layout: {LAYOUT}")
    waves, labels, split_of = [], [], []
    digest = hashlib.sha256()
    for label, word in enumerate(words):
        for path in sorted((folder / word).glob("*.wav")):
            relative = f"{word}/{path.name}"
            clip = fit_to_clip(read_wav_int16(path))
            digest.update(relative.encode())
            digest.update(clip.tobytes())
            waves.append(clip)
            labels.append(label)
            split_of.append("val" if relative in lists["val"] else "test" if relative in lists["test"] else "train")
    if not waves:
        raise DatasetMissing(f"{name}: no WAV files under {folder}; expected layout: {LAYOUT}")
    split_array = np.array(split_of)
    splits = {s: torch.from_numpy(np.flatnonzero(split_array == s)).long() for s in ("train", "val", "test")}
    sources = {filename: sha256_file(folder / filename) for filename in LIST_FILES.values()}
    sources["clips (paths and int16 samples)"] = digest.hexdigest()
    return RawDataset(
        name=name,
        kind="audio",
        inputs=torch.from_numpy(np.stack(waves)),
        labels=torch.tensor(labels, dtype=torch.long),
        splits=splits,
        classes=list(words),
        sources=sources,
        preprocessing={"clip_samples": CLIP_SAMPLES, "fit": "zero-pad or crop the end", "folder": str(folder),
                       **(seed_note or {})},
        sample_rate=SAMPLE_RATE,
    )


def load(cfg: DataConfig) -> RawDataset:
    words = tuple(cfg.gsc.words) or OFFICIAL_WORDS
    return read_folder(Path(cfg.root) / cfg.gsc.folder, words, "gsc")
