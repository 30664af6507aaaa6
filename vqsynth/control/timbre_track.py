"""Brightness of one window of audio, live: the Audio Commons definition (data/timbre.py) without
scipy, which the server does not ship. Its Butterworth filters (three passes of a 2nd-order
high-pass at 20, 100 and 2,000 Hz) are applied as their power responses on one FFT, which is
what they do to a steady sound; tests/test_follow.py holds it to data/timbre.py on FluidSynth notes.
"""

from __future__ import annotations

import numpy as np

from vqsynth.data.timbre import RAW_RANGES


def window_size(sample_rate: int) -> int:
    """The package's 2,048 samples at 44.1 kHz, at this rate."""
    return int(round(2048 * sample_rate / 44100.0))


class Brightness:
    """brightness(x) of the last window_size(sample_rate) samples of x, 0..1 on the corpus's scale."""

    def __init__(self, sample_rate: int):
        self.n = window_size(sample_rate)
        self.size = 1 << int(np.ceil(np.log2(self.n)))
        self.f = np.fft.rfftfreq(self.size, 1.0 / sample_rate)
        self.window = np.hamming(self.n)
        f = np.maximum(self.f, 1e-9)
        hp = lambda fc: (1.0 / (1.0 + (fc / f) ** 4)) ** 3  # noqa: E731  three 2nd-order high-pass passes
        self.w_total = hp(20.0)
        self.w_high = self.w_total * hp(2000.0)
        self.w_centroid = self.w_total * hp(100.0)

    def raw(self, x: np.ndarray) -> float | None:
        """On the package's 0-100 scale; None for silence."""
        p = np.abs(np.fft.rfft(np.asarray(x[-self.n:], np.float64) * self.window, self.size)) ** 2
        total = float(p @ self.w_total)
        pc = p * self.w_centroid
        if total <= 1e-20 or pc.sum() <= 1e-20:
            return None
        ratio = max(float(p @ self.w_high) / total, 1e-9)
        centroid = max(float(self.f @ pc) / float(pc.sum()), 1e-9)
        return 4.613128018020465 * np.log10(ratio) + 17.378889309312974 * np.log10(centroid) + 17.434733750553022

    def __call__(self, x: np.ndarray) -> float | None:
        raw = self.raw(x)
        if raw is None:
            return None
        lo, hi = RAW_RANGES["brightness"]
        return float(np.clip((raw - lo) / (hi - lo), 0.0, 1.0))
