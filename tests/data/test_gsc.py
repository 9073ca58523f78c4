"""Speech Commands from a GSC-layout folder of WAVs with list files, written by the test."""

import numpy as np
import pytest
import soundfile
import torch

from lowspike.params import validate_params
from lowspike.errors import DataFileError, DatasetMissing
from lowspike.data.prepared import load_prepared, write_prepared
from lowspike.data import load_raw
from lowspike.data.loading import load_split


def write_gsc(root, words=("yes", "no"), clips=3, rate=16000):
    folder = root / "speech_commands_v0.02"
    rng = np.random.default_rng(0)
    written = {}
    for word in words:
        (folder / word).mkdir(parents=True)
        for i in range(clips):
            length = 16000 if i == 0 else (12000 if i == 1 else 17000)  # exact, short, long
            samples = rng.integers(-3000, 3000, length).astype(np.int16)
            soundfile.write(str(folder / word / f"spk{i}_nohash_0.wav"), samples, rate, subtype="PCM_16")
            written[f"{word}/spk{i}_nohash_0.wav"] = samples
    noise = folder / "_background_noise_"
    noise.mkdir()
    soundfile.write(str(noise / "white.wav"), np.zeros(32000, dtype=np.int16), rate, subtype="PCM_16")
    (folder / "validation_list.txt").write_text("yes/spk1_nohash_0.wav\nno/spk1_nohash_0.wav\n")
    (folder / "testing_list.txt").write_text("yes/spk2_nohash_0.wav\nno/spk2_nohash_0.wav\n")
    return folder, written


def test_reads_the_official_layout(tmp_path):
    _, written = write_gsc(tmp_path)
    params = validate_params({"data": {"root": str(tmp_path), "gsc": {"words": ["yes", "no"]}}})
    data = load_raw("gsc", params.data)
    assert data.kind == "audio" and data.sample_rate == 16000
    assert data.inputs.shape == (6, 16000) and data.inputs.dtype == torch.int16
    assert data.classes == ["yes", "no"] and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.splits["train"].tolist() == [0, 3]
    assert data.splits["val"].tolist() == [1, 4] and data.splits["test"].tolist() == [2, 5]
    yes0, yes1, yes2 = (written[f"yes/spk{i}_nohash_0.wav"] for i in range(3))
    assert np.array_equal(data.inputs[0].numpy(), yes0)
    assert np.array_equal(data.inputs[1, :12000].numpy(), yes1) and data.inputs[1, 12000:].abs().sum() == 0
    assert np.array_equal(data.inputs[2].numpy(), yes2[:16000])
    assert "validation_list.txt" in data.sources


def test_missing_folder_and_missing_word_are_explained(tmp_path):
    params = validate_params({"data": {"root": str(tmp_path)}})
    with pytest.raises(DatasetMissing, match=r"speech_commands_v0.02 not found.*validation_list.txt.*tar.gz"):
        load_raw("gsc", params.data)
    write_gsc(tmp_path)
    with pytest.raises(DatasetMissing, match=r"word folder\(s\) \['backward'"):
        load_raw("gsc", params.data)  # the 35 official words by default


def test_wrong_sample_rate_is_refused(tmp_path):
    write_gsc(tmp_path, rate=8000)
    params = validate_params({"data": {"root": str(tmp_path), "gsc": {"words": ["yes", "no"]}}})
    with pytest.raises(DataFileError, match="spk0_nohash_0.wav: sample rate 8000 Hz, expected 16000"):
        load_raw("gsc", params.data)


def test_prepared_audio_becomes_mfcc_features(tmp_path):
    write_gsc(tmp_path)
    params = validate_params({"data": {"root": str(tmp_path), "gsc": {"words": ["yes", "no"]}}})
    write_prepared(load_raw("gsc", params.data), tmp_path / "prepared")
    prepared = load_prepared(tmp_path / "prepared")
    test = load_split(prepared, "test", params.data)
    assert test.inputs.shape == (2, 1, 10, 49) and test.augment is None
    train = load_split(prepared, "train", params.data, train=True)
    x, y = next(train.batches(8, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (2, 1, 10, 49) and sorted(y.tolist()) == [0, 1]
