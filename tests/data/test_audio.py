"""MFCC front end and waveform augmentation of the distillation paper (Sec. IV-A)."""

import pytest
import torch
import torchaudio

from lowspike.config import AugmentConfig, MfccConfig
from lowspike.data import mfcc_frames
from lowspike.data.audio import add_noise, augment_waveforms, build_mfcc, int16_to_float, time_shift, time_warp


def test_one_second_gives_49_frames_of_10_coefficients():
    cfg = MfccConfig()
    # center False, pad 320 each side: floor((16000 + 640 - 1024) / 320) + 1 = 48 + 1
    assert mfcc_frames(16000, cfg) == 49
    out = build_mfcc(cfg)(torch.randn(3, 16000))
    assert out.shape == (3, 10, 49)


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("samples", [16000, 8000, 1023])
def test_frame_count_is_what_torchaudio_computes_centered_or_not(center, samples):
    # centered: torch.stft pads n_fft / 2 more per side, floor((16000 + 640) / 320) + 1 = 53 frames for 1 s
    cfg = MfccConfig(center=center)
    assert mfcc_frames(samples, cfg) == build_mfcc(cfg)(torch.randn(1, samples)).shape[-1]
    assert mfcc_frames(16000, cfg) == (53 if center else 49)


def test_mfcc_is_torchaudio_with_the_paper_settings():
    torch.manual_seed(0)
    time = torch.arange(16000) / 16000
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * time) * (time < 0.5)  # half a second of silence: the 80 dB floor
    waves = torch.stack([torch.randn(16000), tone + 1e-3 * torch.randn(16000), torch.zeros(16000)])
    direct = torchaudio.transforms.MFCC(sample_rate=16000, n_mfcc=10, melkwargs={
        "n_fft": 1024, "win_length": 640, "hop_length": 320, "f_min": 20.0, "f_max": 4000.0, "n_mels": 40,
        "pad": 320, "center": False})
    ours, theirs = build_mfcc(MfccConfig())(waves), direct(waves)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-4)
    assert not torch.equal(ours, theirs)  # |X|^2 is rounded once, not through a square root


def test_int16_scaling():
    assert int16_to_float(torch.tensor([-32768, 0, 16384], dtype=torch.int16)).tolist() == [-1.0, 0.0, 0.5]


def test_noise_has_the_requested_sigma():
    noisy = add_noise(torch.zeros(64, 16000), 1.75e-3, torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(1.75e-3, rel=0.01)
    assert noisy.mean().abs().item() < 1e-5


def test_time_warp_by_hand():
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]])
    # rate 2: y[i] = x(2i) -> 0, 2, 4, then past the end -> 0
    assert time_warp(x, torch.tensor([2.0])).tolist() == [[0.0, 2.0, 4.0, 0.0, 0.0]]
    # rate 0.5: y[i] = x(i / 2) -> 0, 0.5, 1, 1.5, 2
    assert time_warp(x, torch.tensor([0.5])).tolist() == [[0.0, 0.5, 1.0, 1.5, 2.0]]
    assert torch.equal(time_warp(x, torch.tensor([1.0])), x)


def test_time_shift_by_hand_is_zero_filled():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    assert time_shift(x, torch.tensor([1, -2])).tolist() == [[0.0, 1.0, 2.0, 3.0], [3.0, 4.0, 0.0, 0.0]]


def test_augmentation_keeps_length_and_shifts_stay_within_bounds():
    cfg = AugmentConfig(noise_sigma=0.0, time_warp_sigma=0.0, time_shift_alpha=1.0)
    impulse = torch.zeros(256, 16000)
    impulse[:, 8000] = 1.0
    out = augment_waveforms(impulse, cfg, torch.Generator().manual_seed(0))
    assert out.shape == impulse.shape
    positions = out.argmax(dim=1) - 8000
    assert positions.abs().max() <= 1600  # alpha * 0.1 s
    assert positions.abs().max() > 1000 and positions.unique().numel() > 100
    assert torch.equal(out.sum(dim=1), torch.ones(256))


def test_augmentation_is_deterministic_for_a_generator():
    x = torch.randn(4, 16000)
    a = augment_waveforms(x, AugmentConfig(), torch.Generator().manual_seed(1))
    b = augment_waveforms(x, AugmentConfig(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)


def test_warp_then_shift_in_one_gather_equals_the_two_steps_bit_for_bit():
    from lowspike.data.audio import time_shift, time_warp, warp_then_shift

    g = torch.Generator().manual_seed(3)
    waves = torch.randn(6, 1000, generator=g)
    rates = torch.tensor([0.5, 0.93, 1.0, 1.07, 1.5, 1.2])
    shifts = torch.tensor([-100, 0, 37, -1, 250, 999])
    assert torch.equal(warp_then_shift(waves, rates, shifts), time_shift(time_warp(waves, rates), shifts))


@pytest.mark.parametrize("noise_sigma", [0.0, 1.75e-3])
def test_the_compiled_augmentation_gives_the_eager_bits(monkeypatch, noise_sigma):
    """Noise, warp and shift in one compiled pass: the same floats as the eager ops, the same
    generator draws in the same order, so the same batch to the last bit."""
    from lowspike import native
    from lowspike.config import AugmentConfig
    from lowspike.data import audio

    cfg = AugmentConfig(enabled=True, noise_sigma=noise_sigma, time_warp_sigma=0.2, time_shift_alpha=1.0)
    waves = torch.randn(9, 1601, generator=torch.Generator().manual_seed(1)) * 0.3
    monkeypatch.setenv(native.SWITCH, "0")
    eager = audio.augment_waveforms(waves, cfg, torch.Generator().manual_seed(7))
    monkeypatch.setenv(native.SWITCH, "1")
    assert native.library(audio.KERNELS, audio.SIGNATURES) is not None
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # two ranges of clips
    compiled = audio.augment_waveforms(waves, cfg, torch.Generator().manual_seed(7))
    assert torch.equal(eager, compiled)
    assert (eager == 0).any() and not torch.equal(eager, waves)  # shifted in zeros, changed the clip
