"""The offline audio default: spoken keywords synthesized with eSpeak NG, no network needed.

The eSpeak NG library shipped in the PyPI package ``espeakng-loader`` is driven through ctypes
(synchronous output at 22,050 Hz, the end-pause flag set, the callback kept referenced while the
library is loaded). Each clip draws a voice (eight English accents x thirteen voice variants), a
speaking rate, a pitch and a pitch range from a generator seeded by ``(data.seed, word, clip)``;
the leading and trailing silence is trimmed, the speech is resampled to 16 kHz (and sped up to
fit when it is longer than 0.9 s), scaled to a random peak level in [0.25, 0.9] of full scale,
placed at a random offset inside 1 s and mixed with Gaussian noise of standard deviation
``noise_level`` (relative to full scale). The clips are written as int16 WAVs in the exact Speech
Commands layout (``<word>/<voice>_nohash_<n>.wav`` plus ``validation_list.txt`` and
``testing_list.txt``) under ``<data.root>/spoken_commands/``, and read back by the ``gsc`` reader
unchanged. Each word gets ``clips_per_word + test_clips_per_word`` clips: ``val_fraction`` of the
first ``clips_per_word`` are validation and the rest of those training, and the last
``test_clips_per_word`` are the test split, a size of its own (10 words x 200 = 2,000 test clips,
one clip = 0.05 pt of accuracy) that does not shrink the training set. A folder whose
``manifest.json`` holds the same settings is reused; any other is synthesized again.

Determinism: eSpeak NG keeps synthesis state in static variables that no API call resets (the
pitch-flutter phase of ``AdvanceParameters``, the automatic gain control of ``Wavegen``), so the
same call gives different samples depending on what was spoken before; and
``espeak_Initialize`` seeds the generator of its breath noise (voices such as ``+f2``) with
``time(NULL)``. :func:`speak` therefore loads the library afresh for every clip (``dlopen``,
``espeak_Initialize``, ``espeak_ng_SetRandSeed(0)`` and ``srand(0)``, ``espeak_Synth``,
``espeak_Terminate``, ``dlclose``: about 6 ms), and every other draw of a clip comes from
``default_rng([seed, crc32(word), clip])``: a clip is a pure function of ``(seed, word, clip)``,
the same seed gives identical int16 samples in any order and any process.
"""

from __future__ import annotations

import _ctypes
import ctypes
import ctypes.util
import json
import shutil
import threading
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import espeakng_loader
import numpy as np
import soundfile
import torch
import torchaudio.functional
from tqdm.auto import tqdm

from ..artifacts import write_json
from . import gsc
from .base import RawDataset

if TYPE_CHECKING:
    from ..config import DataConfig, SpokenCommandsConfig

ESPEAK_RATE = 22050
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
ESPEAK_CHARS_AUTO = 0
ESPEAK_ENDPAUSE = 0x1000
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.srand.argtypes = [ctypes.c_uint]
    return libc


def speak(text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
    """int16 samples at 22,050 Hz of ``text`` spoken by a freshly loaded eSpeak NG."""
    data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
    chunks: list[np.ndarray] = []

    def collect(wav, count, events) -> int:
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    callback = _CALLBACK(collect)
    with _LOCK:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        initialized = False
        try:
            lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                         ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
                                         ctypes.c_void_p]
            sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent,
                                                ESPEAK_INITIALIZE_DONT_EXIT)
            if sample_rate != ESPEAK_RATE:
                raise RuntimeError(f"eSpeak NG failed to initialize from {data_parent.decode()} "
                                   f"(returned {sample_rate})")
            initialized = True
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            lib.espeak_SetParameter(PARAM_RATE, rate, 0)
            lib.espeak_SetParameter(PARAM_PITCH, pitch, 0)
            lib.espeak_SetParameter(PARAM_RANGE, pitch_range, 0)
            lib.espeak_ng_SetRandSeed(0)
            _libc().srand(0)
            data = text.encode()
            status = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0,
                                      ESPEAK_CHARS_AUTO | ESPEAK_ENDPAUSE, None, None)
            if status != 0:
                raise RuntimeError(f"eSpeak NG failed on {text!r} (error {status})")
        finally:
            if initialized:
                lib.espeak_Terminate()
            _ctypes.dlclose(lib._handle)
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


VOICES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan",
          "en-gb-x-gbcwmd")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
RATE_RANGE = (110, 230)  # words per minute
PITCH_RANGE = (15, 85)  # eSpeak's 0-99 scale
PITCH_SPREAD = (20, 90)
PEAK_RANGE = (0.25, 0.9)
MAX_SPEECH_SAMPLES = 14400  # 0.9 s at 16 kHz
RATE_GRID = 50  # Hz: the speed-up rates' grid (gcd with ESPEAK_RATE >= 50)
SILENCE_THRESHOLD = 200  # int16
FORMAT_VERSION = 4  # 3: a test split of its own (test_clips_per_word); 4: speed-up rates on a 50 Hz grid


def trim_silence(samples: np.ndarray, threshold: int = SILENCE_THRESHOLD) -> np.ndarray:
    """The span from the first to the last sample louder than ``threshold`` (all when none is)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    return samples[loud[0]:loud[-1] + 1] if loud.size else samples


def draw_request(word: str, rng: np.random.Generator) -> tuple[str, str, int, int, int]:
    """``(text, voice, rate, pitch, pitch_range)`` of one clip: the first draws of its generator."""
    voice = VOICES[rng.integers(len(VOICES))]
    variant = VARIANTS[rng.integers(len(VARIANTS))]
    name = f"{voice}+{variant}" if variant else voice
    return (word, name, int(rng.integers(*RATE_RANGE)), int(rng.integers(*PITCH_RANGE)),
            int(rng.integers(*PITCH_SPREAD)))


def finish_clip(raw: np.ndarray, rng: np.random.Generator, noise_level: float) -> np.ndarray:
    """One 1 s int16 clip at 16 kHz from eSpeak's 22,050 Hz output ``raw`` (the later draws of ``rng``).

    ``clip = peak * s / max|s|`` placed at a uniform offset, plus ``noise_level * N(0, 1)``,
    rounded to int16 (``* 32767``, saturated), where ``s`` is the trimmed speech resampled to
    16 kHz and, when that is longer than ``MAX_SPEECH_SAMPLES``, to the rate on the 50 Hz grid
    just below ``16 kHz x MAX_SPEECH_SAMPLES / length`` (sped up to fit). The grid keeps the
    rates' common divisor with 22,050 Hz at 50 or more: torchaudio's resampling kernel has
    ``rate / gcd`` rows, and an arbitrary rate (gcd 1) made it several GB.
    """
    speech = torch.from_numpy(trim_silence(raw).astype(np.float32) / 32768.0)
    target_rate = gsc.SAMPLE_RATE
    fitted_length = round(speech.shape[0] * gsc.SAMPLE_RATE / ESPEAK_RATE)
    if fitted_length > MAX_SPEECH_SAMPLES:
        target_rate = int(gsc.SAMPLE_RATE * MAX_SPEECH_SAMPLES / fitted_length) // RATE_GRID * RATE_GRID
    speech = torchaudio.functional.resample(speech, ESPEAK_RATE, target_rate).numpy()[:MAX_SPEECH_SAMPLES]
    peak = float(np.abs(speech).max()) or 1.0
    speech = speech / peak * rng.uniform(*PEAK_RANGE)
    clip = np.zeros(gsc.CLIP_SAMPLES, dtype=np.float64)
    offset = int(rng.integers(0, gsc.CLIP_SAMPLES - speech.shape[0] + 1))
    clip[offset:offset + speech.shape[0]] = speech
    clip += noise_level * rng.standard_normal(gsc.CLIP_SAMPLES)
    return np.clip(np.rint(clip * 32767.0), -32768, 32767).astype(np.int16)


def _settings(cfg: SpokenCommandsConfig, seed: int) -> dict:
    return {"format_version": FORMAT_VERSION, "seed": seed, "voices": list(VOICES), "variants": list(VARIANTS),
            "rate": list(RATE_RANGE), "pitch": list(PITCH_RANGE), "pitch_range": list(PITCH_SPREAD),
            "peak": list(PEAK_RANGE), "max_speech_samples": MAX_SPEECH_SAMPLES, **cfg.model_dump()}


def write_folder(folder: Path, cfg: SpokenCommandsConfig, seed: int, progress: bool | None = None) -> Path:
    """Synthesize every clip into ``folder`` in the Speech Commands layout (reused when the
    manifest matches the settings). The folder is built beside and renamed into place.

    Clip ``n`` of ``word``, ``0 <= n < clips + test`` with ``clips = clips_per_word`` and
    ``test = test_clips_per_word``, draws everything from ``default_rng([seed, crc32(word), n])``
    (the same variation rules in every split). The validation clips of a word are the first
    ``round(val_fraction * clips)`` of ``default_rng([seed, crc32(word)]).permutation(clips)``,
    the other clips ``n < clips`` are training, and the clips ``clips <= n < clips + test`` are
    the test split. ``progress=None`` shows a bar only on a terminal."""
    folder = Path(folder)
    settings = _settings(cfg, seed)
    manifest = folder / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()) == settings:
        return folder
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    lists: dict[str, list[str]] = {"val": [], "test": []}
    n_clips = cfg.clips_per_word + cfg.test_clips_per_word  # training + validation, then test
    bar = tqdm(total=len(cfg.words) * n_clips, desc="synthesize spoken-commands",
               disable=None if progress is None else not progress)
    for word in cfg.words:
        (staging / word).mkdir(parents=True)
        word_key = zlib.crc32(word.encode())
        order = np.random.default_rng([seed, word_key]).permutation(cfg.clips_per_word)
        n_val = int(round(cfg.val_fraction * cfg.clips_per_word))
        split = ({int(i): "val" for i in order[:n_val]}
                 | {n: "test" for n in range(cfg.clips_per_word, n_clips)})
        rngs = [np.random.default_rng([seed, word_key, n]) for n in range(n_clips)]
        requests = [draw_request(word, rng) for rng in rngs]
        for clip_index, (request, rng, raw) in enumerate(zip(requests, rngs, (speak(*r) for r in requests))):
            filename = f"{request[1].replace('+', '-')}_nohash_{clip_index}.wav"
            soundfile.write(str(staging / word / filename), finish_clip(raw, rng, cfg.noise_level),
                            gsc.SAMPLE_RATE, subtype="PCM_16")
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


def load(cfg: DataConfig, progress: bool | None = None) -> RawDataset:
    folder = write_folder(Path(cfg.root) / "spoken_commands", cfg.spoken_commands, cfg.seed, progress)
    return gsc.read_folder(folder, tuple(cfg.spoken_commands.words), "spoken-commands",
                           {"synthesized": _settings(cfg.spoken_commands, cfg.seed)})
