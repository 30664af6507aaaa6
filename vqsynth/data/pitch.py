"""A YIN pitch tracker in numpy (de Cheveigne & Kawahara, JASA 2002), to check that a rendered note
sounds at its label's pitch. No librosa here: difference function through the FFT, cumulative mean
normalisation, absolute threshold, parabolic interpolation."""

from __future__ import annotations

import numpy as np


def yin(x, sr, fmin=25.0, fmax=4500.0, hop=None, threshold=0.15):
    """f0 [frames] in Hz and voiced [frames] (bool) of a mono signal; frames every `hop` samples
    (default 10 ms), each integrating two periods of `fmin`."""
    x = np.asarray(x, np.float64)
    tau_max, tau_min = int(np.ceil(sr / fmin)), max(2, int(sr / fmax))
    w = tau_max  # integration window
    hop = hop or max(1, sr // 100)
    if len(x) < w + tau_max + 1:
        return np.zeros(0), np.zeros(0, bool)
    frames = np.lib.stride_tricks.sliding_window_view(x, w + tau_max + 1)[::hop]
    n = 1 << int(np.ceil(np.log2(2 * frames.shape[1])))
    spec = np.fft.rfft(frames, n)
    head = np.fft.rfft(frames[:, :w], n)
    r = np.fft.irfft(np.conj(head) * spec, n)[:, :tau_max + 1]  # sum_j x_j x_{j+tau}, j < w
    c = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    e0 = c[:, w][:, None]
    taus = np.arange(tau_max + 1)
    et = c[:, taus + w] - c[:, taus]
    d = np.maximum(e0 + et - 2 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-300)
    f0, voiced = np.zeros(len(frames)), np.zeros(len(frames), bool)
    for i, row in enumerate(cmnd):
        below = np.flatnonzero(row[tau_min:tau_max] < threshold)
        if below.size:
            t = tau_min + below[0]
            while t + 1 < tau_max and row[t + 1] < row[t]:
                t += 1
            voiced[i] = True
        else:
            t = tau_min + int(np.argmin(row[tau_min:tau_max]))
        a, b, c_ = row[t - 1], row[t], row[min(t + 1, tau_max)]
        shift = 0.5 * (a - c_) / (a - 2 * b + c_) if (a - 2 * b + c_) > 0 else 0.0
        f0[i] = sr / (t + shift)
    return f0, voiced


def tuning_cents(x, sr, midi_pitch, start_s=0.1, stop_s=2.9):
    """Median deviation in cents of the voiced f0 from `midi_pitch` between start_s and stop_s;
    NaN when under a quarter of the frames are voiced (noise, drums, effects)."""
    target = 440.0 * 2 ** ((midi_pitch - 69) / 12)
    seg = np.asarray(x)[int(start_s * sr):int(stop_s * sr)]
    f0, voiced = yin(seg, sr, fmin=max(25.0, target / 2.5), fmax=min(sr / 2.5, target * 2.5))
    if voiced.size == 0 or voiced.mean() < 0.25:
        return float("nan")
    return float(np.median(1200 * np.log2(f0[voiced] / target)))
