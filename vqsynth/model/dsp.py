"""The generator's DSP output head in numpy: harmonic oscillators plus filtered noise.

The generator (generator.onnx) writes one frame of controls per hop: a total amplitude, a
distribution over H harmonics and the magnitudes of Nb noise bands. Turning those frames into
sound is done here, at whatever sample rate the audio device runs, so pitch bend is exact and no
resampler sits in the live path. vqsynth/train/synth.py is the torch twin used in training; a
test holds the two to the same output.

Conventions shared with training:
- frame t's controls are reached at the last sample of its hop; values ramp linearly from
  frame t-1 (smooth, no zipper noise); a note's first frame starts at its own values, so the
  model, not a fixed 10 ms fade-in, decides how sharp the attack is;
- harmonics at or above `band_limit_hz` (the model's Nyquist) are silent: the model was never
  trained to say anything there;
- noise bands split 0..band_limit_hz evenly; the noise is shaped in the STFT domain and
  overlap-added with a Hann window (two hops long, hop-sized steps).
"""

from __future__ import annotations

import numpy as np

TWO_PI = 2.0 * np.pi


def midi_to_hz(pitch):
    """MIDI note number (fractional allowed) to frequency in Hz."""
    return 440.0 * np.power(2.0, (np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def split_frame(frames: np.ndarray, n_harmonics: int):
    """Split generator frames [..., 1+H+Nb] into (amplitude [...], harmonics [...,H], noise [...,Nb])."""
    return frames[..., 0], frames[..., 1 : 1 + n_harmonics], frames[..., 1 + n_harmonics :]


def harmonic_block(phase, f0_from, f0_to, amp_from, amp_to, n, sample_rate, band_limit_hz):
    """Render n samples of a bank of harmonics for V voices at once.

    phase [V] (radians, fundamental), f0_from/f0_to [V] Hz, amp_from/amp_to [V,H] linear amplitude
    per harmonic. Returns (audio [V,n] float32, phase at the end [V]).
    sin(k*phi) is built by the Chebyshev recursion: one sin and one cos per sample, not H. Voices
    are taken lowest first, so harmonic k is computed only for the voices where it is audible (a
    prefix): a high note costs its few audible harmonics, not H.
    """
    V, H = amp_to.shape
    ramp = (np.arange(1, n + 1, dtype=np.float64) / n)[None, :]
    f0 = f0_from[:, None] + (f0_to - f0_from)[:, None] * ramp  # [V,n]
    phi = phase[:, None] + np.cumsum(f0 * (TWO_PI / sample_rate), axis=1)
    end_phase = np.mod(phi[:, -1], TWO_PI)
    k = np.arange(1, H + 1, dtype=np.float64)
    limit = min(band_limit_hz, 0.5 * sample_rate)
    a0 = (amp_from * (np.outer(f0_from, k) < limit)).astype(np.float32)
    a1 = (amp_to * (np.outer(f0_to, k) < limit)).astype(np.float32)
    lowest = np.minimum(f0_from, f0_to)
    order = np.argsort(lowest, kind="stable")
    counts = np.searchsorted(np.sort(lowest), limit / k, side="left")  # voices hearing harmonic k
    phi32 = np.mod(phi[order], TWO_PI).astype(np.float32)
    a0, d = a0[order], (a1 - a0)[order]
    start = np.zeros((V, n), dtype=np.float32)
    delta = np.zeros((V, n), dtype=np.float32)
    s_prev = np.zeros((V, n), dtype=np.float32)  # sin(0 * phi)
    s_now = np.sin(phi32)
    spare = np.empty((V, n), dtype=np.float32)
    c2 = 2.0 * np.cos(phi32)
    for h in range(H):
        m = int(counts[h])
        if m == 0:
            break
        start[:m] += a0[:m, h, None] * s_now[:m]
        delta[:m] += d[:m, h, None] * s_now[:m]
        # sin((k+1) phi) = 2 cos(phi) sin(k phi) - sin((k-1) phi); rows past m are never read again
        np.multiply(c2[:m], s_now[:m], out=spare[:m])
        spare[:m] -= s_prev[:m]
        s_prev, s_now, spare = s_now, spare, s_prev
    out = np.empty((V, n), dtype=np.float32)
    out[order] = start + delta * ramp.astype(np.float32)
    return out, end_phase


def noise_gains(bands, n_fft, sample_rate, band_limit_hz):
    """Per-bin gains [V, n_fft//2+1] from band magnitudes [V,Nb] (nearest band, zero above the limit)."""
    Nb = bands.shape[-1]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    idx = np.floor(freqs / band_limit_hz * Nb).astype(np.int64)
    inside = idx < Nb
    gains = np.zeros(bands.shape[:-1] + (freqs.size,), dtype=np.float32)
    gains[..., inside] = bands[..., idx[inside]]
    return gains


def noise_block(bands, tail, n, sample_rate, band_limit_hz, rngs):
    """Render n samples of band-shaped noise for V voices, each from its own generator in `rngs`
    (so a voice's noise does not depend on which other voices sound); `tail` [V,n] is the
    overlap-add state.

    Returns (audio [V,n], new tail [V,n]). All bands at 1 give unit-RMS noise over 0..band_limit_hz
    at any sample rate (same power per Hz as at the model's own rate).
    """
    V = bands.shape[0]
    n_fft = 2 * n
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann sums to 1 at hop n
    white = np.empty((V, n_fft), dtype=np.float32)
    for v, rng in enumerate(rngs):
        white[v] = rng.standard_normal(n_fft, dtype=np.float32)
    spectrum = np.fft.rfft(white * window, axis=1) * noise_gains(bands, n_fft, sample_rate, band_limit_hz)
    grain = np.fft.irfft(spectrum, n=n_fft, axis=1).astype(np.float32) * np.float32(np.sqrt(4.0 / 3.0 * sample_rate / (2.0 * band_limit_hz)))
    out = tail + grain[:, :n]
    return out, grain[:, n:].copy()


class VoiceSynth:
    """Streaming DSP head for a fixed number of voice slots; state is real here (phases, ramps, OLA)."""

    def __init__(self, slots, n_harmonics, n_noise, sample_rate, hop, band_limit_hz, seed=0):
        self.H, self.Nb = n_harmonics, n_noise
        self.sample_rate, self.hop, self.band_limit_hz = sample_rate, hop, band_limit_hz
        self.seed = seed
        self.rngs = [np.random.default_rng((seed, i)) for i in range(slots)]  # a note's own noise
        self.phase = np.zeros(slots)
        self.f0 = np.full(slots, 440.0)
        self.amps = np.zeros((slots, n_harmonics), dtype=np.float32)
        self.noise = np.zeros((slots, n_noise), dtype=np.float32)
        self.tail = np.zeros((slots, hop), dtype=np.float32)
        self.fresh = np.zeros(slots, dtype=bool)  # next frame is a note's first: no ramp into it

    def seed_notes(self, slots, keys):
        """Each note's noise from its own key (a tuple of ints), so what a voice sounds like does
        not depend on which other voices sound or which slot it got."""
        for i, key in zip(slots, keys):
            self.rngs[i] = np.random.default_rng((self.seed, *key))

    def reset(self, slots, f0):
        """Start fresh notes in `slots` (index array) at fundamental f0 [len(slots)] Hz."""
        self.phase[slots] = 0.0
        self.f0[slots] = f0
        self.amps[slots] = 0.0
        self.noise[slots] = 0.0
        self.tail[slots] = 0.0
        self.fresh[slots] = True

    def render(self, slots, frames, f0):
        """Render frames [V,T,F] for voice `slots` with per-frame fundamentals f0 [V,T] -> audio [V,T*hop]."""
        V, T, _ = frames.shape
        amp, harm, noise = split_frame(frames, self.H)
        out = np.empty((V, T * self.hop), dtype=np.float32)
        phase, f_prev = self.phase[slots], self.f0[slots]
        a_prev, n_prev, tail = self.amps[slots], self.noise[slots], self.tail[slots]
        fresh = self.fresh[slots]
        for t in range(T):
            a_next = (amp[:, t, None] * harm[:, t]).astype(np.float32)
            if t == 0 and fresh.any():
                a_prev = np.where(fresh[:, None], a_next, a_prev)
            h, phase = harmonic_block(phase, f_prev, f0[:, t], a_prev, a_next, self.hop,
                                      self.sample_rate, self.band_limit_hz)
            z, tail = noise_block(noise[:, t], tail, self.hop, self.sample_rate, self.band_limit_hz,
                                  [self.rngs[i] for i in slots])
            out[:, t * self.hop:(t + 1) * self.hop] = h + z
            f_prev, a_prev, n_prev = f0[:, t], a_next, noise[:, t]
        self.phase[slots], self.f0[slots] = phase, f_prev
        self.amps[slots], self.noise[slots], self.tail[slots] = a_prev, n_prev, tail
        self.fresh[slots] = False
        return out

    def snapshot(self, slots):
        """Copy of the state of `slots`, to continue a cached attack later."""
        return tuple(a[slots].copy() for a in (self.phase, self.f0, self.amps, self.noise, self.tail, self.fresh))

    def restore(self, slots, snap):
        for a, v in zip((self.phase, self.f0, self.amps, self.noise, self.tail, self.fresh), snap):
            a[slots] = v
