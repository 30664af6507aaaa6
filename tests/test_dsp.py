"""The DSP head: exact pitch, band limit, noise level across rates, streaming."""

import numpy as np

from vqsynth.model.dsp import VoiceSynth, harmonic_frames, midi_to_hz


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


def test_the_wavetable_bank_matches_direct_sines_through_ramps():
    """Two frames of 64 harmonics (a 1/k spectrum, as instruments have) with the fundamental and
    every amplitude ramping: the table reads equal a sum of 64 sines computed directly."""
    rng = np.random.default_rng(1)
    V, H, n, sr = 2, 64, 480, 48000
    amps = (rng.random((V, 3, H)) / np.arange(1, H + 1)).astype(np.float32)
    f0 = np.array([[100.0, 104.0, 98.0], [331.0, 331.0, 340.0]])
    audio, end = harmonic_frames(np.array([0.0, 1.0]), f0, amps, n, sr, 24000.0)
    ramp = np.arange(1, n + 1) / n
    f = np.concatenate([f0[:, t, None] + (f0[:, t + 1] - f0[:, t])[:, None] * ramp for t in range(2)], axis=1)
    phi = np.array([0.0, 1.0])[:, None] + np.cumsum(2 * np.pi * f / sr, axis=1)
    a = np.concatenate([amps[:, t, None] + (amps[:, t + 1] - amps[:, t])[:, None] * ramp[:, None] for t in range(2)],
                       axis=1)  # [V, 2n, H]
    k = np.arange(1, H + 1)
    audible = f[..., None] * k < 24000.0
    direct = (a * audible * np.sin(phi[..., None] * k)).sum(-1)
    assert np.abs(audio - direct).max() < 1e-3 * np.abs(direct).max()
    np.testing.assert_allclose(end, np.mod(phi[:, -1], 2 * np.pi), atol=1e-9)


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
