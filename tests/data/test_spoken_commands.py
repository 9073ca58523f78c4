"""The synthesized spoken-commands set: GSC layout, determinism, reuse."""

import json

import numpy as np
import soundfile

from lowspike.config import validate_params
from lowspike.data import load_raw


def _params(root, seed=0):
    return validate_params({"data": {"root": str(root), "seed": seed, "spoken_commands": {
        "words": ["yes", "stop"], "clips_per_word": 3, "val_fraction": 0.34, "test_fraction": 0.34}}})


def test_writes_the_gsc_layout_and_reads_it_back(tmp_path):
    data = load_raw("spoken-commands", _params(tmp_path).data)
    folder = tmp_path / "spoken_commands"
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json", "stop", "testing_list.txt", "validation_list.txt", "yes"]
    wavs = sorted(folder.glob("*/*.wav"))
    assert len(wavs) == 6
    samples, rate = soundfile.read(str(wavs[0]), dtype="int16")
    assert rate == 16000 and samples.shape == (16000,) and np.abs(samples).max() > 3000
    assert data.classes == ["yes", "stop"] and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 2, "val": 2, "test": 2}
    val = (folder / "validation_list.txt").read_text().split()
    assert len(val) == 2 and {line.split("/")[0] for line in val} == {"yes", "stop"}


def _names(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.glob("*/*.wav"))


def test_same_seed_same_voices_and_splits_and_exact_reuse(tmp_path):
    """eSpeak NG's waveforms vary by a few samples from call to call (state we cannot seed:
    espeak_ng_SetRandSeed, srand and re-initializing do not fix it), so a seed fixes the voices,
    rates, pitches, splits and noise, and the cached folder makes the data exact."""
    a = load_raw("spoken-commands", _params(tmp_path / "a").data)
    b = load_raw("spoken-commands", _params(tmp_path / "b").data)
    folder_a, folder_b = tmp_path / "a" / "spoken_commands", tmp_path / "b" / "spoken_commands"
    assert _names(folder_a) == _names(folder_b)
    for listing in ("validation_list.txt", "testing_list.txt"):
        assert (folder_a / listing).read_text() == (folder_b / listing).read_text()
    rms_a = a.inputs.double().pow(2).mean(dim=1).sqrt()
    rms_b = b.inputs.double().pow(2).mean(dim=1).sqrt()
    assert np.allclose(rms_a.numpy(), rms_b.numpy(), rtol=0.15)
    again = load_raw("spoken-commands", _params(tmp_path / "a").data)
    assert np.array_equal(a.inputs.numpy(), again.inputs.numpy())
    manifest = tmp_path / "a" / "spoken_commands" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    load_raw("spoken-commands", _params(tmp_path / "a").data)
    assert manifest.stat().st_mtime_ns == stamp  # reused, not synthesized again
    assert json.loads(manifest.read_text())["clips_per_word"] == 3
    load_raw("spoken-commands", _params(tmp_path / "c", seed=1).data)
    assert _names(tmp_path / "c" / "spoken_commands") != _names(folder_a)
