"""Analysis targets: each corpus note as the DSP head's own controls, frame by frame.

The corpus knows every note's f0 (label pitch plus its measured tuning), so the harmonic
amplitudes and the noise floor between the harmonics can be read off the audio once, at build
time, in exactly the DSP head's conventions (vqsynth/model/dsp.py). The generator can then be
trained against these frames directly: no synthesis and no STFT inside a training step.

Conventions (those of the DSP head):
- frame t describes the sound at the last sample of hop t: the analysis window is centred on
  sample (t + 1) * hop;
- harmonic k's value is its peak amplitude A (the head plays A sin(k phi)); harmonics at or
  above the band limit are 0;
- noise band b's value is the magnitude for which the head's noise has the same power per Hz
  as the note's floor in that band (bands split 0..band_limit_hz evenly; all bands at 1 give
  unit-RMS noise over 0..band_limit_hz).

How each value is read (a Hann window of about six periods, at least two hops, at most
MAX_WINDOW samples, so neighbouring harmonics' main lobes do not touch; zero-padded 4x):
- harmonic k: the largest magnitude within +-0.3 f0 of k f0 (so a piano's stretched partials
  are still found), kept only if it stands 6 dB above the band's floor;
- noise floor of a band below H f0: the median power of the bins away from every harmonic's
  main lobe, over ln 2 (the median of an exponential variable is ln 2 times its mean); above
  H f0, where the head has no harmonics left, the mean power of all bins, so the note's energy
  up there is kept as noise rather than lost.
"""

from __future__ import annotations

import numpy as np

MAX_WINDOW = 4096
PERIODS = 6.0
PEAK_SEARCH = 0.3   # +- this many f0 around k * f0
KEEP_DB = 6.0       # a harmonic must stand this far above its band's floor


def window_length(f0_hz: float, sample_rate: int, hop: int) -> int:
    n = int(round(PERIODS * sample_rate / max(f0_hz, 1.0)))
    n = int(np.clip(n, 2 * hop, MAX_WINDOW))
    return n + (n % 2)


def analyse(x: np.ndarray, sample_rate: int, f0_hz: float, hop: int, n_harmonics: int, n_noise: int,
            band_limit_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Mono float audio [L] of one note at fundamental f0_hz -> (harmonic amplitudes [T, H],
    noise-band magnitudes [T, Nb]), float32, T = L // hop."""
    x = np.asarray(x, dtype=np.float32)
    T = len(x) // hop
    N = window_length(f0_hz, sample_rate, hop)
    win = np.hanning(N + 1)[:-1].astype(np.float32)
    padded = np.pad(x, (N // 2, N // 2))
    centres = (np.arange(T) + 1) * hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, N)[centres - 1]  # centred on sample (t + 1) * hop - 1
    n_fft = 1 << int(np.ceil(np.log2(4 * N)))
    power = np.abs(np.fft.rfft(frames * win, n=n_fft, axis=1)).astype(np.float32) ** 2  # [T, F]
    df = sample_rate / n_fft
    freqs = np.arange(power.shape[1]) * df
    sum_w, sum_w2 = float(win.sum()), float((win ** 2).sum())
    limit = min(band_limit_hz, 0.5 * sample_rate)

    # noise floor per band
    lobe = min(2.0 * sample_rate / N, 0.45 * f0_hz)  # main-lobe half width, never the whole gap
    dist = np.abs(freqs - np.round(freqs / f0_hz) * f0_hz)
    top = n_harmonics * f0_hz + 0.5 * f0_hz       # above: no harmonic in the head, energy -> noise
    edges = np.linspace(0.0, band_limit_hz, n_noise + 1)
    band_power = np.zeros((T, n_noise), np.float32)
    for b in range(n_noise):
        inside = (freqs >= edges[b]) & (freqs < edges[b + 1]) & (freqs < limit)
        if not inside.any():
            continue
        if edges[b] >= top:
            band_power[:, b] = power[:, inside].mean(axis=1)
            continue
        gaps = inside & (dist > lobe) & (freqs < top)
        above = inside & (freqs >= top)
        parts, weights = [], []
        if gaps.any():
            parts.append(np.median(power[:, gaps], axis=1) / np.log(2.0))
            weights.append(gaps.sum() + (inside & ~gaps & ~above).sum())
        if above.any():
            parts.append(power[:, above].mean(axis=1))
            weights.append(above.sum())
        if not parts:  # every bin sits on a harmonic (very low notes): the band's quietest bin
            parts, weights = [power[:, inside].min(axis=1)], [1]
        band_power[:, b] = np.average(np.stack(parts, 1), axis=1, weights=weights)
    noise = np.sqrt(band_power / sum_w2 * (0.5 * sample_rate / band_limit_hz)).astype(np.float32)

    # harmonic peaks
    harm = np.zeros((T, n_harmonics), np.float32)
    k = np.arange(1, n_harmonics + 1)
    audible = k * f0_hz < limit
    lo = np.floor((k - PEAK_SEARCH) * f0_hz / df).astype(int)
    hi = np.ceil((k + PEAK_SEARCH) * f0_hz / df).astype(int) + 1
    hi = np.minimum(hi, power.shape[1])
    band_of = np.minimum((k * f0_hz / band_limit_hz * n_noise).astype(int), n_noise - 1)
    for j in np.flatnonzero(audible & (lo < hi)):
        peak = power[:, lo[j]:hi[j]].max(axis=1)
        floor = band_power[:, band_of[j]]
        keep = peak > floor * 10 ** (KEEP_DB / 10)
        harm[:, j] = np.where(keep, 2.0 * np.sqrt(peak) / sum_w, 0.0)
    return harm, noise


def frames_from_targets(harm: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Targets -> generator frames [..., 1+H+Nb] (amplitude, harmonic distribution, noise bands),
    the form the DSP head plays."""
    amp = harm.sum(-1, keepdims=True)
    dist = np.where(amp > 0, harm / np.maximum(amp, 1e-12), 1.0 / harm.shape[-1])
    return np.concatenate([amp, dist, noise], axis=-1).astype(np.float32)


def resynthesise(x: np.ndarray, sample_rate: int, f0_hz: float, hop: int, n_harmonics: int, n_noise: int,
                 band_limit_hz: float) -> np.ndarray:
    """A note played back from its own targets through the DSP head: what the generator would
    play if it wrote the targets exactly (tests/test_targets.py; the ceiling `eval --sound` prints)."""
    from vqsynth.model.dsp import VoiceSynth

    harm, noise = analyse(x, sample_rate, f0_hz, hop, n_harmonics, n_noise, band_limit_hz)
    frames = frames_from_targets(harm, noise)[None]
    synth = VoiceSynth(1, n_harmonics, n_noise, sample_rate, hop, band_limit_hz, seed=0)
    synth.reset(np.array([0]), np.array([f0_hz]))
    return synth.render(np.array([0]), frames, np.full((1, frames.shape[1]), f0_hz))[0]
