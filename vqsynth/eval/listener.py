"""What a listener hears, measured with tools nobody on this project wrote (librosa, numpy).

The project's own judge scored model 1.2 close to real data while a listener heard presets that
collapse onto a few timbres, a noise bed, a band stopping at 8 kHz and slow attacks. These are
the measurements that see those faults; each is a small function on arrays, tested on signals
whose answer is known (tests/test_listener.py):

- timbre_features: librosa MFCC and spectral-contrast statistics, the standard timbre
  description, for matching a preset against real notes of every program (identity);
- harmonic_to_floor_db / floor_db: harmonic peaks against the noise floor between them;
- spectral_lines: bins that stand out of their neighbours at every pitch (fixed artefact lines);
- power_above_db: the share of power above a frequency (bandwidth);
- attack_ms: time from the note-on to half of the note's peak level;
- onsets_per_s: librosa's onset detector inside a held note (re-attacks, pulsing noise).
"""

from __future__ import annotations

import numpy as np


def timbre_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean and standard deviation over frames of 20 MFCCs and 7 spectral-contrast bands (54 values)."""
    import librosa

    y = np.asarray(audio, dtype=np.float32)
    mfcc = librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=20)
    contrast = librosa.feature.spectral_contrast(y=y, sr=sample_rate)
    return np.concatenate([mfcc.mean(1), mfcc.std(1), contrast.mean(1), contrast.std(1)]).astype(np.float64)


def identity_scores(query: np.ndarray, query_programs, reference: np.ndarray, reference_programs, top=5) -> dict:
    """Match each query (a preset's phrase) to the reference phrases (real notes, one per program)
    by Euclidean distance on features standardised over the reference set.
    Returns the share whose own program is among the `top` nearest, the share whose nearest
    program is in the right GM family (programs 8k..8k+7), and how many queries share the most
    popular nearest program."""
    ref = np.asarray(reference, dtype=np.float64)
    mu, sd = ref.mean(0), ref.std(0) + 1e-9
    q, r = (np.asarray(query) - mu) / sd, (ref - mu) / sd
    d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))  # [Q, R]
    order = np.argsort(d, axis=1)
    ref_programs = np.asarray(reference_programs)
    nearest = ref_programs[order[:, 0]]
    in_top = [int(p) in set(ref_programs[order[i, :top]].tolist()) for i, p in enumerate(query_programs)]
    family = [int(n) // 8 == int(p) // 8 for n, p in zip(nearest, query_programs)]
    counts = np.bincount(nearest, minlength=128)
    return {"top": top, "in_top": float(np.mean(in_top)), "family": float(np.mean(family)),
            "most_shared": int(counts.max()), "distinct_nearest": int((counts > 0).sum()),
            "nearest": nearest.tolist()}


def _average_spectrum(audio, sample_rate, t0, t1, n_fft):
    seg = np.asarray(audio[int(t0 * sample_rate):int(t1 * sample_rate)], dtype=np.float64)
    if seg.size < n_fft:
        raise ValueError(f"the window {t0}-{t1} s is shorter than {n_fft} samples")
    win = np.hanning(n_fft)
    hop = n_fft // 4
    frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft)[::hop]
    power = (np.abs(np.fft.rfft(frames * win, axis=1)) ** 2).mean(0) / (win ** 2).sum()
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate), power


def _fft_size(f0_hz, sample_rate):
    """About eight periods, so harmonics stand apart (a power of two, at least 2048)."""
    return int(max(2048, 2 ** np.ceil(np.log2(8 * sample_rate / f0_hz))))


def harmonic_mask(freqs, f0_hz, n_fft, sample_rate, width_bins=3):
    """True for bins within `width_bins` of a multiple of f0 (the harmonics' main lobes)."""
    bins = sample_rate / n_fft
    dist = np.abs(freqs - np.round(freqs / f0_hz) * f0_hz)
    return (dist <= width_bins * bins) & (freqs >= 0.5 * f0_hz)


def harmonic_to_floor_db(audio, sample_rate, f0_hz, t0, t1, f_hi=None) -> float:
    """Mean power of the harmonic peaks (k f0 below f_hi, default the Nyquist) over the median
    power of the bins between them, in dB, over the window t0..t1 s of a held note."""
    n_fft = _fft_size(f0_hz, sample_rate)
    freqs, power = _average_spectrum(audio, sample_rate, t0, t1, n_fft)
    f_hi = min(f_hi or sample_rate / 2, sample_rate / 2)
    k = np.arange(1, int(f_hi / f0_hz) + 1)
    centre = np.round(k * f0_hz * n_fft / sample_rate).astype(int)
    peaks = np.array([power[max(c - 2, 0):c + 3].max() for c in centre if c + 3 < power.size])
    between = ~harmonic_mask(freqs, f0_hz, n_fft, sample_rate) & (freqs < f_hi) & (freqs > 0.5 * f0_hz)
    return float(10 * np.log10(peaks.mean() / (np.median(power[between]) + 1e-30)))


def floor_db(audio, sample_rate, f0_hz, t0, t1, lo=4000.0, hi=8000.0) -> float:
    """Median power per bin between the harmonics in lo..hi Hz, in dB (re a full-scale sine's peak bin)."""
    n_fft = _fft_size(f0_hz, sample_rate)
    freqs, power = _average_spectrum(audio, sample_rate, t0, t1, n_fft)
    sel = ~harmonic_mask(freqs, f0_hz, n_fft, sample_rate) & (freqs >= lo) & (freqs < min(hi, sample_rate / 2))
    return float(10 * np.log10(np.median(power[sel]) + 1e-30))


def power_above_db(audio, sample_rate, f_hz=8000.0) -> float:
    """Power above f_hz over the whole power, in dB (-inf when there is none: clipped at -150)."""
    spec = np.abs(np.fft.rfft(np.asarray(audio, dtype=np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1.0 / sample_rate)
    return float(10 * np.log10(max(spec[freqs >= f_hz].sum() / (spec.sum() + 1e-30), 1e-15)))


def spectral_lines(spectra_db: np.ndarray, freqs: np.ndarray, margin_db=10.0, neighbours=8) -> list:
    """Frequencies of bins that stand more than margin_db above the median of their +-neighbours
    in every one of the spectra (notes of different pitches): lines that do not move with pitch."""
    s = np.asarray(spectra_db)
    pad = np.pad(s, ((0, 0), (neighbours, neighbours)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(pad, 2 * neighbours + 1, axis=1)
    around = np.concatenate([windows[..., :neighbours], windows[..., neighbours + 1:]], axis=-1)
    stands = s - np.median(around, axis=-1) > margin_db
    return [float(f) for f in freqs[stands.all(axis=0)]]


def spectrum_db(audio, sample_rate, n_fft=4096):
    """Average power spectrum of a clip in dB, for spectral_lines."""
    freqs, power = _average_spectrum(audio, sample_rate, 0.0, len(audio) / sample_rate, n_fft)
    return freqs, 10 * np.log10(power + 1e-30)


def envelope_db(audio, sample_rate, window_ms=2.0):
    """RMS level in dB over windows of window_ms, hopped by a quarter of that: (times s, dB)."""
    n = max(1, int(window_ms * 1e-3 * sample_rate))
    hop = max(1, n // 4)
    x = np.asarray(audio, dtype=np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop]
    rms = np.sqrt((frames ** 2).mean(1))
    return (np.arange(len(rms)) * hop + n / 2) / sample_rate, 20 * np.log10(rms + 1e-12)


def attack_ms(audio, sample_rate, onset_s=0.0) -> float:
    """Milliseconds from onset_s to the first moment the 2-ms RMS envelope reaches half (-6 dB)
    of its peak."""
    t, db = envelope_db(audio, sample_rate)
    after = t >= onset_s
    peak = db[after].max()
    first = np.flatnonzero(after & (db >= peak - 6.02))[0]
    return float(1e3 * (t[first] - onset_s))


ONSET_DELTA = 2.0  # onset strength above the local mean that counts as an onset (not normalised)


def onsets_per_s(audio, sample_rate, t0, t1) -> float:
    """Onsets librosa's detector finds between t0 and t1 s, per second (inside a held note).
    The onset strength (mean positive log-mel flux) is not normalised per clip, so a steady note
    finds none: a 12 dB re-attack scores about 8, a +-30 % tremolo under 1, a steady tone 0.4."""
    import librosa

    y = np.asarray(audio, dtype=np.float32)
    env = librosa.onset.onset_strength(y=y, sr=sample_rate)
    times = librosa.onset.onset_detect(onset_envelope=env, sr=sample_rate, units="time", backtrack=False,
                                       normalize=False, delta=ONSET_DELTA)
    inside = [x for x in times if t0 <= x < t1]
    return len(inside) / (t1 - t0)
