"""Analysis targets (vqsynth/data/targets.py): right before any training.

The targets are what the generator learns to write, so they must play back, through the DSP
head itself, as the note they were read from."""

import numpy as np
import pytest

from vqsynth.data import targets
from vqsynth.data.targets import analyse
from vqsynth.model.dsp import midi_to_hz

SR, HOP, H, NB = 44100, 441, 64, 64


def resynthesise(x, f0):
    return targets.resynthesise(x, SR, f0, HOP, H, NB, SR / 2)


def log_spectrogram(x, n=2048):
    from scipy.signal import stft

    _, _, z = stft(x, nperseg=n, noverlap=3 * n // 4)
    return np.maximum(20 * np.log10(np.abs(z) + 1e-9), -80.0)


def test_known_harmonic_amplitudes_are_read_back():
    f0 = 261.63
    t = np.arange(SR) / SR
    amps = 0.2 * 0.6 ** np.arange(12)
    x = sum(a * np.sin(2 * np.pi * f0 * (k + 1) * t) for k, a in enumerate(amps))
    harm, noise = analyse(x, SR, f0, HOP, H, NB, SR / 2)
    mid = harm[20:80].mean(0)
    np.testing.assert_allclose(20 * np.log10(mid[:12]), 20 * np.log10(amps), atol=0.5)
    assert mid[12:].max() < 1e-6  # nothing there: nothing read (-120 dB: float rounding)


def test_white_noise_reads_as_its_own_level_in_every_band():
    rng = np.random.default_rng(0)
    sigma = 0.05
    harm, noise = analyse(sigma * rng.standard_normal(SR), SR, 200.0, HOP, H, NB, SR / 2)
    level = np.median(noise[10:90], axis=0)
    np.testing.assert_allclose(20 * np.log10(level), 20 * np.log10(sigma), atol=1.5)


@pytest.mark.parametrize("program,pitch,velocity", [(0, 60, 100), (0, 36, 50), (40, 67, 100), (73, 72, 75),
                                                    (56, 55, 127), (81, 48, 100), (33, 33, 100)])
def test_real_notes_resynthesised_from_their_targets_come_back(program, pitch, velocity):
    """Mean absolute log-spectral difference (2048-point STFT, floored at -80 dB) under 2 dB and
    the RMS level within 0.5 dB, for FluidR3 notes of seven families and registers."""
    from vqsynth.data.render import Renderer

    with Renderer("/usr/share/sounds/sf2/FluidR3_GM.sf2", SR) as r:
        x = r.note(0, program, pitch, velocity, 2.0, 1.5)
    x = 0.5 * x / np.abs(x).max()
    y = resynthesise(x, float(midi_to_hz(pitch)))
    a, b = log_spectrogram(x[:len(y)]), log_spectrogram(y)
    assert np.mean(np.abs(a - b)) < 2.0
    assert 20 * np.log10(np.sqrt((y ** 2).mean()) / np.sqrt((x[:len(y)] ** 2).mean())) == pytest.approx(0, abs=0.5)
