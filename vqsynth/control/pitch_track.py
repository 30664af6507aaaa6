"""Fundamental frequency of one window of audio, by YIN (de Cheveigné & Kawahara, JASA 2002).

Written here rather than taken from a library: the runtime dependencies are numpy and
onnxruntime, pYIN (librosa) costs ~1 s of CPU per second of audio, and aubio's last release
(2019) has no wheel for Python 3.11. A 33-ms window at 48 kHz costs ~0.33 ms (three FFTs of
4,096 points). tests/test_follow.py holds it to librosa's pYIN on FluidSynth phrases
(perf/README.md has the figures).
"""

from __future__ import annotations

import numpy as np


def window_size(sample_rate: int, fmin: float) -> int:
    """Samples a window needs to see two periods of `fmin`."""
    return 2 * int(np.ceil(sample_rate / fmin))


def yin(x: np.ndarray, sample_rate: int, fmin: float = 60.0, fmax: float = 1600.0,
        threshold: float = 0.15, voicing: float | None = None) -> tuple[float, float]:
    """(f0 in Hz, aperiodicity 0..1) of the window x (at least window_size(sample_rate, fmin)
    samples; the last ones are used). The period is the first lag between 1/fmax and 1/fmin whose
    cumulative-mean-normalised difference dips under `threshold`, else the deepest; f0 is 0.0
    (unvoiced) where that dip is not under `voicing` (default: the threshold). A voicing above
    the threshold keeps a breathy voice voiced without taking an earlier, shallower dip (an
    octave up) as the period of a clean tone."""
    tau_max = int(np.ceil(sample_rate / fmin))
    tau_min = max(2, int(sample_rate / fmax))
    x = np.asarray(x, dtype=np.float64)[-2 * tau_max:]
    n = x.size - tau_max  # the lags compare x[:n] with x[tau:tau + n]
    if n < tau_max or not np.any(x):
        return 0.0, 1.0
    if np.dot(x[:n], x[:n]) < 1e-3 * np.dot(x[n:], x[n:]):  # a window that starts in silence: the
        return 0.0, 1.0  # differences are near 0 at every short lag, and the period found is fmax
    size = 1 << int(np.ceil(np.log2(x.size + n)))
    spec = np.fft.rfft(x, size)
    head = np.fft.rfft(x[:n], size)
    r = np.fft.irfft(spec * np.conj(head), size)[:tau_max + 1]  # r[tau] = sum x[j] x[j + tau], j < n
    sq = np.concatenate(([0.0], np.cumsum(x * x)))
    e0 = sq[n]
    e_tau = sq[np.arange(tau_max + 1) + n] - sq[np.arange(tau_max + 1)]
    d = np.maximum(e0 + e_tau - 2.0 * r, 0.0)
    d[0] = 0.0
    cum = np.cumsum(d[1:])
    cmnd = np.ones(tau_max + 1)
    cmnd[1:] = d[1:] * np.arange(1, tau_max + 1) / np.maximum(cum, 1e-12)
    band = cmnd[tau_min:tau_max]
    below = np.flatnonzero(band < threshold)
    if below.size:
        # the deepest lag within 15 % above the first one under the threshold: a voice's formants
        # split a period's dip in two (0.145 at 286 lags, 0.023 at 296: 168 Hz for 162 over the first
        # 90 ms of a sung syllable), while the octave errors the first-dip rule guards against are
        # at twice the lag, far outside
        first = tau_min + int(below[0])
        tau = first + int(np.argmin(cmnd[first:min(int(first * 1.15) + 1, tau_max)]))
    else:
        tau = tau_min + int(np.argmin(band))
    aperiodicity = float(min(cmnd[tau], 1.0))
    if aperiodicity >= (threshold if voicing is None else voicing):
        return 0.0, aperiodicity
    # parabolic interpolation between the neighbouring lags
    a, b, c = cmnd[tau - 1], cmnd[tau], cmnd[min(tau + 1, tau_max)]
    den = a - 2.0 * b + c
    shift = 0.5 * (a - c) / den if abs(den) > 1e-12 else 0.0
    return float(sample_rate / (tau + float(np.clip(shift, -1.0, 1.0)))), aperiodicity
