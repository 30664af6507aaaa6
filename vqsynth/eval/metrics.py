"""Quality metrics as small pure functions on arrays (thesis ch. 4.3, 6.2, 7.3, 8.4).

Inputs are classifier outputs (probabilities, embeddings) or audio; nothing here trains.
"""

from __future__ import annotations

import numpy as np


def inception_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """exp(E_x KL(p(y|x) || p(y))): high when each sample is confidently one class and the classes
    are diverse. Used with the pitch head (PIS) and the family head (IIS)."""
    p = np.asarray(probs, dtype=np.float64)
    marginal = p.mean(axis=0, keepdims=True)
    kl = (p * (np.log(p + eps) - np.log(marginal + eps))).sum(axis=1)
    return float(np.exp(kl.mean()))


def imq_kernel(x, y, scale: float | None = None):
    """Inverse multi-quadratic kernel k(x,y) = C / (C + ||x-y||^2), C = 2 * dim (the thesis's KID)."""
    c = 2.0 * x.shape[1] if scale is None else scale
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return c / (c + np.maximum(d2, 0.0))


def kid(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD^2 between two embedding sets with the IMQ kernel (near 0 for the same law)."""
    x, y = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m, n = len(x), len(y)
    kxx, kyy, kxy = imq_kernel(x, x), imq_kernel(y, y), imq_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two embedding sets (FID/FAD-style)."""
    from scipy import linalg

    x, y = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2.0 * covmean))


def cents(f_est, f_ref):
    return 1200.0 * np.log2(np.asarray(f_est, np.float64) / np.asarray(f_ref, np.float64))


def track_pitch(audio: np.ndarray, sample_rate: int, target_hz: float, hop: int = 160):
    """f0 per frame and voicing with pYIN (librosa), a tracker nobody here wrote (torchcrepe
    needs torchaudio, which has no build for torch 2.13). It searches 11 semitones either side
    of the target: an octave error then shows as a miss, and the search never reaches exactly
    the octave below, where pYIN itself errs on bright tones (a sawtooth at C5 here)."""
    import librosa

    fmin = max(target_hz * 2 ** (-11 / 12), 2.2 * sample_rate / 4096)  # two periods must fit the frame
    fmax = min(target_hz * 2 ** (11 / 12), sample_rate / 2.5)
    f0, voiced, _ = librosa.pyin(np.asarray(audio, np.float32), fmin=fmin, fmax=fmax, sr=sample_rate,
                                 frame_length=4096 if target_hz < 110 else 2048, hop_length=hop)
    return np.nan_to_num(f0), voiced


def pitch_accuracy(f0_frames: np.ndarray, voiced: np.ndarray, target_hz: float, tolerance_cents=50.0):
    """Share of voiced frames within `tolerance_cents` of the target, and the median cent error."""
    f = np.asarray(f0_frames)[np.asarray(voiced, bool)]
    if f.size == 0:
        return 0.0, float("nan")
    err = np.abs(cents(f, target_hz))
    return float((err <= tolerance_cents).mean()), float(np.median(err))


def coherence_accuracies(low, mid, high):
    """DrumGAN's attribute coherence (Table 6.3): per trial, the attribute measured on outputs
    generated with the input set to 0.2 / 0.5 / 0.8. E1 = P(low < high), E2 = P(mid < high),
    E3 = P(low < mid)."""
    low, mid, high = (np.asarray(a, np.float64) for a in (low, mid, high))
    return {"E1": float((low < high).mean()), "E2": float((mid < high).mean()), "E3": float((low < mid).mean())}


def click_count(audio: np.ndarray, sample_rate: int, onsets_s=(), guard_s=0.03, threshold_db=20.0):
    """Broadband transients outside note onsets: frames whose high-passed energy jumps more than
    `threshold_db` above the median of the previous 50 ms. A held note should have none."""
    x = np.asarray(audio, np.float64)
    hp = np.diff(x, prepend=x[:1])  # first difference: a crude high-pass that clicks light up
    n = int(0.002 * sample_rate)
    frames = hp[: len(hp) // n * n].reshape(-1, n)
    e = 10 * np.log10((frames ** 2).mean(1) + 1e-12)
    hist = 25
    clicks = 0
    onset_frames = [int(o * sample_rate / n) for o in onsets_s]
    guard = int(guard_s * sample_rate / n)
    for i in range(hist, len(e)):
        if e[i] - np.median(e[i - hist:i]) > threshold_db and e[i] > -80:
            if not any(o - 1 <= i <= o + guard for o in onset_frames):
                clicks += 1
    return clicks


def level_stability_db(audio: np.ndarray, sample_rate: int, t0: float, t1: float, window_s=0.1):
    """Spread (max - min) of the RMS level in dB over windows of a held segment."""
    x = np.asarray(audio)[int(t0 * sample_rate):int(t1 * sample_rate)]
    n = int(window_s * sample_rate)
    if x.size < n:
        return float("nan")
    w = x[: x.size // n * n].reshape(-1, n)
    db = 10 * np.log10((w ** 2).mean(1) + 1e-12)
    return float(db.max() - db.min())
