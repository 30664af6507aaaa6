"""The DSP head: exact pitch, band limit, noise level across rates, streaming."""

import numpy as np

from vqsynth.model.dsp import VoiceSynth, harmonic_block, midi_to_hz


def _tone(f0, sr, harmonics, frames=20, band=8000.0):
    hop = sr // 100
    synth = VoiceSynth(1, harmonics.size, 4, sr, hop, band)
    synth.reset(np.array([0]), np.array([f0]))
    fr = np.zeros((1, frames, 1 + harmonics.size + 4), dtype=np.float32)
    fr[..., 0] = 1.0
    fr[..., 1:1 + harmonics.size] = harmonics
    return synth.render(np.array([0]), fr, np.full((1, frames), f0))[0]


def _peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), n=8 * x.size))
    return np.argmax(spec) * sr / (8 * x.size)


def test_pitch_is_exact():
    for sr in (16000, 48000):
        f0 = float(midi_to_hz(57.3))
        x = _tone(f0, sr, np.array([1.0, 0, 0, 0], dtype=np.float32))
        assert abs(_peak_hz(x[sr // 100 * 5:], sr) - f0) < 0.5


def test_harmonics_above_the_band_limit_are_silent():
    sr = 48000
    h = np.ones(64, dtype=np.float32) / 64
    x = _tone(440.0, sr, h)[4800:]
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    above = spec[freqs > 8200].sum() / spec.sum()
    assert above < 1e-6
    # and below the limit, all 18 harmonics under 8 kHz are there
    assert spec[(freqs > 7000) & (freqs < 8000)].sum() / spec.sum() > 0.01


def test_chebyshev_recursion_matches_direct_sines():
    rng = np.random.default_rng(1)
    amps = rng.random((2, 32)).astype(np.float32)
    f0 = np.array([100.0, 331.0])
    audio, _ = harmonic_block(np.zeros(2), f0, f0, amps, amps, 480, 48000, 24000.0)
    t = np.arange(1, 481) / 48000
    k = np.arange(1, 33)
    direct = np.einsum("vk,vkn->vn", amps, np.sin(2 * np.pi * f0[:, None, None] * k[None, :, None] * t))
    np.testing.assert_allclose(audio, direct, atol=2e-3)


def test_noise_has_the_same_power_per_hz_at_any_rate():
    levels = []
    for sr in (16000, 48000):
        synth = VoiceSynth(1, 2, 8, sr, sr // 100, 8000.0, seed=3)
        fr = np.zeros((1, 200, 11), dtype=np.float32)
        fr[..., 3:] = 1.0
        x = synth.render(np.array([0]), fr, np.full((1, 200), 100.0))[0, sr // 10:]
        levels.append(x.std())
    assert abs(levels[0] - 1.0) < 0.05 and abs(levels[1] - 1.0) < 0.05


def test_rendering_frame_by_frame_equals_one_call():
    rng = np.random.default_rng(0)
    fr = rng.random((2, 12, 1 + 16 + 8)).astype(np.float32)
    f0 = np.array([[200.0] * 12, [310.0 + i for i in range(12)]])
    a = VoiceSynth(2, 16, 8, 48000, 480, 8000.0, seed=5)
    b = VoiceSynth(2, 16, 8, 48000, 480, 8000.0, seed=5)
    slots = np.array([0, 1])
    whole = a.render(slots, fr, f0)
    parts = np.concatenate([b.render(slots, fr[:, t:t + 1], f0[:, t:t + 1]) for t in range(12)], axis=1)
    np.testing.assert_allclose(parts, whole, atol=1e-5)
