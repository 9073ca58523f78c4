"""The synthesized spoken-commands set: GSC layout, exact determinism, reuse, audible unclipped words."""

import json
import time

import numpy as np
import soundfile

from lowspike.params import validate_params
from lowspike.data import load_raw
from lowspike.data import spoken_commands as sc


def _params(root, seed=0, noise_level=0.003, clips=3, val_fraction=0.34, test_clips=2):
    return validate_params({"data": {"root": str(root), "seed": seed, "spoken_commands": {
        "words": ["yes", "stop"], "clips_per_word": clips, "val_fraction": val_fraction,
        "test_clips_per_word": test_clips, "noise_level": noise_level}}})


def test_writes_the_gsc_layout_and_reads_it_back(tmp_path):
    data = load_raw("spoken-commands", _params(tmp_path).data)
    folder = tmp_path / "spoken_commands"
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json", "stop", "testing_list.txt", "validation_list.txt", "yes"]
    wavs = sorted(folder.glob("*/*.wav"))
    assert len(wavs) == 10 and all("_nohash_" in p.name for p in wavs)  # 2 words x (3 + 2 test)
    samples, rate = soundfile.read(str(wavs[0]), dtype="int16")
    assert rate == 16000 and samples.shape == (16000,) and np.abs(samples).max() > 0.25 * 32767 - 1
    assert data.classes == ["yes", "stop"] and data.labels.tolist() == [0] * 5 + [1] * 5
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 4, "val": 2, "test": 4}
    for listing, split, per_word in (("validation_list.txt", "val", 1), ("testing_list.txt", "test", 2)):
        lines = (folder / listing).read_text().split()  # val: round(0.34 * 3) = 1 per word; test: 2
        assert sorted(line.split("/")[0] for line in lines) == ["stop"] * per_word + ["yes"] * per_word
        assert sorted(data.labels[data.splits[split]].tolist()) == [0] * per_word + [1] * per_word
    assert data.sample_rate == 16000 and data.preprocessing["synthesized"]["clips_per_word"] == 3


def _split_files(folder):
    """``{split: {"<word>/<file>.wav"}}`` of a synthesized folder, read from its lists."""
    every = {f"{p.parent.name}/{p.name}" for p in folder.glob("*/*.wav")}
    val, test = ({line for line in (folder / name).read_text().split()}
                 for name in ("validation_list.txt", "testing_list.txt"))
    return {"train": every - val - test, "val": val, "test": test}


def _clip_number(relative):
    return int(relative.rsplit("_nohash_", 1)[1].removesuffix(".wav"))


def test_the_test_split_has_a_size_of_its_own(tmp_path):
    """clips_per_word splits into val (val_fraction) and train (the rest); test_clips_per_word more
    clips of each word, numbered after them, are the test split, disjoint from both."""
    data = load_raw("spoken-commands", _params(tmp_path / "a", clips=4, val_fraction=0.25, test_clips=3).data)
    files = _split_files(tmp_path / "a" / "spoken_commands")
    words = 2
    assert {k: len(v) for k, v in files.items()} == {"train": 4 * (1 - 0.25) * words, "val": 0.25 * 4 * words,
                                                     "test": 3 * words}
    assert {k: len(v) for k, v in data.splits.items()} == {k: len(v) for k, v in files.items()}
    assert not files["test"] & (files["train"] | files["val"]) and not files["train"] & files["val"]
    assert sorted(_clip_number(f) for f in files["test"]) == [4, 4, 5, 5, 6, 6]
    assert all(_clip_number(f) < 4 for f in files["train"] | files["val"])
    for split in ("train", "val", "test"):
        assert sorted(data.labels[data.splits[split]].tolist()) == sorted(
            int(f.startswith("stop/")) for f in files[split])
    # a clip is a pure function of (seed, word, n): another test size leaves train/val and clip n alike
    load_raw("spoken-commands", _params(tmp_path / "b", clips=4, val_fraction=0.25, test_clips=1).data)
    fewer = _split_files(tmp_path / "b" / "spoken_commands")
    assert fewer["train"] == files["train"] and fewer["val"] == files["val"] and fewer["test"] < files["test"]
    for relative in set().union(*fewer.values()):
        assert ((tmp_path / "a" / "spoken_commands" / relative).read_bytes()
                == (tmp_path / "b" / "spoken_commands" / relative).read_bytes())


def test_same_seed_gives_identical_int16_clips(tmp_path):
    a = load_raw("spoken-commands", _params(tmp_path / "a").data)
    other = load_raw("spoken-commands", _params(tmp_path / "c", seed=1).data)
    b = load_raw("spoken-commands", _params(tmp_path / "b").data)
    assert np.array_equal(a.inputs.numpy(), b.inputs.numpy())
    assert {k: v.tolist() for k, v in a.splits.items()} == {k: v.tolist() for k, v in b.splits.items()}
    for listing in ("validation_list.txt", "testing_list.txt"):
        assert ((tmp_path / "a" / "spoken_commands" / listing).read_text()
                == (tmp_path / "b" / "spoken_commands" / listing).read_text())
    assert not np.array_equal(a.inputs.numpy(), other.inputs.numpy())


def test_a_clip_does_not_depend_on_what_was_spoken_before():
    """eSpeak NG keeps flutter phase and gain state in static variables; a fresh library per
    makes the same call give the same samples whatever came before; the breath noise of ``+f2``
    is seeded, not taken from the clock."""
    for request in (("yes", "en-us", 150, 50, 50), ("stop", "en-gb-scotland+f2", 184, 34, 32)):
        first = sc.speak(*request)
        sc.speak("stop", "en-gb-x-rp+f5", 200, 30, 80)
        sc.speak("seven", "en-us+m3", 120, 70, 20)
        time.sleep(1.05)  # eSpeak NG would reseed its noise from time(NULL)
        assert first.dtype == np.int16 and first.shape[0] > 0.3 * sc.ESPEAK_RATE
        assert np.array_equal(first, sc.speak(*request))


def test_the_folder_is_reused_and_rebuilt_when_settings_change(tmp_path):
    first = load_raw("spoken-commands", _params(tmp_path).data)
    manifest = tmp_path / "spoken_commands" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    load_raw("spoken-commands", _params(tmp_path).data)
    assert manifest.stat().st_mtime_ns == stamp
    louder = load_raw("spoken-commands", _params(tmp_path, noise_level=0.02).data)
    assert json.loads(manifest.read_text())["noise_level"] == 0.02
    assert not np.array_equal(first.inputs.numpy(), louder.inputs.numpy())
    assert not (tmp_path / "spoken_commands.partial").exists()


def _replayed_peak(seed):
    rng = np.random.default_rng(seed)
    sc.draw_request("yes", rng)
    return rng.uniform(*sc.PEAK_RANGE)


def _synthesize(word, rng, noise_level):
    """One clip as write_folder makes it: the request's draws, eSpeak NG, then the clip's draws."""
    request = sc.draw_request(word, rng)
    return sc.finish_clip(sc.speak(*request), rng, noise_level), request[1]


def test_the_word_is_whole_and_peaks_at_the_drawn_level():
    clip, voice = _synthesize("yes", np.random.default_rng([0, 1, 2]), noise_level=0.0)
    assert clip.dtype == np.int16 and clip.shape == (16000,)
    assert voice.split("+")[0] in sc.VOICES
    assert np.abs(clip.astype(np.int32)).max() == round(_replayed_peak([0, 1, 2]) * 32767)
    spoken = np.flatnonzero(clip)
    assert 0.3 * 16000 < spoken[-1] - spoken[0] + 1 <= sc.MAX_SPEECH_SAMPLES


def test_speech_longer_than_the_limit_is_sped_up_not_cut():
    long_text = "backward forward follow"
    rng = np.random.default_rng(5)
    clip, _ = _synthesize(long_text, rng, noise_level=0.0)
    spoken = np.flatnonzero(clip)
    assert sc.MAX_SPEECH_SAMPLES - 40 <= spoken[-1] - spoken[0] + 1 <= sc.MAX_SPEECH_SAMPLES


def test_a_long_utterance_is_sped_up_on_the_rate_grid_with_little_memory():
    import resource

    rng = np.random.default_rng(0)
    # 19,846 samples at 22,050 Hz fit 14,401 at 16 kHz, one over the limit: the exact speed-up rate
    # is 15,998 Hz, whose gcd with 22,050 is 2 (torchaudio's kernel took 1.4 GB for it)
    raw = (rng.standard_normal(19846) * 8000).astype(np.int16)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    clip = sc.finish_clip(raw, np.random.default_rng(1), 0.0)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert clip.shape == (16000,) and clip.dtype == np.int16
    speech = np.flatnonzero(clip)
    assert speech[-1] - speech[0] + 1 <= sc.MAX_SPEECH_SAMPLES
    assert grown_mib < 200  # an arbitrary target rate (gcd 1 with 22,050 Hz) took several GB here
