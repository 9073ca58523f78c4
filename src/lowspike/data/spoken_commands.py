"""The offline audio default: spoken keywords synthesized in-process with eSpeak NG.

The eSpeak NG library shipped in the PyPI package ``espeakng-loader`` is driven through ctypes
(synchronous output at 22,050 Hz, the end-pause flag set, the callback kept referenced). Each
clip draws a voice (several English accents and voice variants), a speaking rate, a pitch and
a pitch range from a generator seeded by ``(data.seed, word, clip)``; it is resampled to
16 kHz, scaled to a random peak level, placed at a random offset inside 1 s and mixed with
Gaussian noise (``noise_level``, relative to full scale). The clips are written as int16 WAVs
in the exact Speech Commands layout (``<word>/<voice>_nohash_<n>.wav`` plus
``validation_list.txt`` and ``testing_list.txt``, split per word) under
``<data.root>/spoken_commands/``, and read back by the ``gsc`` reader unchanged. A folder made
with the same settings is reused.

Determinism: the seed fixes every voice, rate, pitch, split and noise draw, but eSpeak NG's own
waveforms differ by a few samples from call to call (internal state that neither
``espeak_ng_SetRandSeed``, ``srand`` nor re-initializing resets), so the cached folder, not a
re-synthesis, is what makes a dataset exact; its content hash is recorded in ``dataset.json``.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import threading
from pathlib import Path

import numpy as np

from ..artifacts import write_json
from ..config import DataConfig, SpokenCommandsConfig
from . import gsc
from .base import RawDataset

ESPEAK_RATE = 22050
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_AUTO = 0
ESPEAK_ENDPAUSE = 0x1000
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4
VOICES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
FORMAT_VERSION = 1

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Synthesizer:
    """One process-wide eSpeak NG instance (the library keeps global state)."""

    _instance: "Synthesizer | None" = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
                                          ctypes.c_void_p]
        data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"eSpeak NG failed to initialize (returned {rate})")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # referenced for the library's lifetime
        self.lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> "Synthesizer":
        with cls._lock:
            if cls._instance is None:
                cls._instance = Synthesizer()
            return cls._instance

    def _collect(self, wav, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """int16 samples at 22,050 Hz."""
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            self.lib.espeak_SetParameter(PARAM_RATE, rate, 0)
            self.lib.espeak_SetParameter(PARAM_PITCH, pitch, 0)
            self.lib.espeak_SetParameter(PARAM_RANGE, pitch_range, 0)
            self._chunks = []
            data = text.encode()
            status = self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0,
                                           ESPEAK_CHARS_AUTO | ESPEAK_ENDPAUSE, None, None)
            if status != 0:
                raise RuntimeError(f"eSpeak NG failed on {text!r} (error {status})")
            return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)


def _trim_silence(samples: np.ndarray, threshold: int = 200) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    return samples[loud[0]:loud[-1] + 1] if loud.size else samples


def synthesize_clip(word: str, rng: np.random.Generator, noise_level: float) -> tuple[np.ndarray, str]:
    """One 1 s int16 clip at 16 kHz of ``word`` and the name of the voice that spoke it."""
    import torch
    import torchaudio.functional

    voice = VOICES[rng.integers(len(VOICES))]
    variant = VARIANTS[rng.integers(len(VARIANTS))]
    name = f"{voice}+{variant}" if variant else voice
    raw = Synthesizer.get().speak(word, name, rate=int(rng.integers(110, 230)), pitch=int(rng.integers(15, 85)),
                                  pitch_range=int(rng.integers(20, 90)))
    speech = torch.from_numpy(_trim_silence(raw).astype(np.float32) / 32768.0)
    speech = torchaudio.functional.resample(speech, ESPEAK_RATE, gsc.SAMPLE_RATE).numpy()
    speech = speech[: gsc.CLIP_SAMPLES]
    peak = float(np.abs(speech).max()) or 1.0
    speech = speech / peak * rng.uniform(0.25, 0.9)
    clip = np.zeros(gsc.CLIP_SAMPLES, dtype=np.float64)
    offset = int(rng.integers(0, gsc.CLIP_SAMPLES - speech.shape[0] + 1))
    clip[offset:offset + speech.shape[0]] = speech
    clip += noise_level * rng.standard_normal(gsc.CLIP_SAMPLES)
    return np.clip(np.rint(clip * 32767.0), -32768, 32767).astype(np.int16), name


def _settings(cfg: SpokenCommandsConfig, seed: int) -> dict:
    return {"format_version": FORMAT_VERSION, "seed": seed, "voices": list(VOICES), "variants": list(VARIANTS),
            **cfg.model_dump()}


def write_folder(folder: Path, cfg: SpokenCommandsConfig, seed: int, progress: bool = False) -> Path:
    """Synthesize every clip into ``folder`` in the Speech Commands layout (reused when the
    manifest matches the settings). The folder is built beside and renamed into place."""
    import soundfile
    from tqdm.auto import tqdm

    folder = Path(folder)
    settings = _settings(cfg, seed)
    manifest = folder / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()) == settings:
        return folder
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    lists: dict[str, list[str]] = {"val": [], "test": []}
    bar = tqdm(total=len(cfg.words) * cfg.clips_per_word, desc="synthesize spoken-commands", disable=not progress)
    for word_index, word in enumerate(cfg.words):
        (staging / word).mkdir(parents=True)
        order = np.random.default_rng([seed, word_index]).permutation(cfg.clips_per_word)
        n_val = int(round(cfg.val_fraction * cfg.clips_per_word))
        n_test = int(round(cfg.test_fraction * cfg.clips_per_word))
        split = {int(i): "val" for i in order[:n_val]} | {int(i): "test" for i in order[n_val:n_val + n_test]}
        for clip_index in range(cfg.clips_per_word):
            rng = np.random.default_rng([seed, word_index, clip_index])
            clip, voice = synthesize_clip(word, rng, cfg.noise_level)
            filename = f"{voice.replace('+', '-')}_nohash_{clip_index}.wav"
            soundfile.write(str(staging / word / filename), clip, gsc.SAMPLE_RATE, subtype="PCM_16")
            if clip_index in split:
                lists[split[clip_index]].append(f"{word}/{filename}")
            bar.update()
    bar.close()
    for split_name, filename in gsc.LIST_FILES.items():
        (staging / filename).write_text("".join(f"{line}\n" for line in lists[split_name]))
    write_json(staging / "manifest.json", settings)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def load(cfg: DataConfig, progress: bool = False) -> RawDataset:
    folder = write_folder(Path(cfg.root) / "spoken_commands", cfg.spoken_commands, cfg.seed, progress)
    return gsc.read_folder(folder, tuple(cfg.spoken_commands.words), "spoken-commands",
                           {"synthesized": _settings(cfg.spoken_commands, cfg.seed)})
