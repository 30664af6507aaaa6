"""Audio Commons timbral attributes (the seven DrumGAN conditions on) and loudness, in numpy/scipy.

The definitions are those of the Audio Commons `timbral_models` package v0.4 (A. Pearce et al.,
Institute of Sound Recording, University of Surrey; Apache-2.0; AudioCommons deliverables D5.2,
D5.6, D5.7): the same features, window lengths and regression coefficients, so a raw value is on
the package's 0-100-ish listener-rating scale. The package itself is not used: 0.4.0 only installs
with SKLEARN_ALLOW_DEPRECATED_SKLEARN_PACKAGE_INSTALL=True, does not run on numpy 2 / librosa 0.11
without patches (np.lib.pad, positional librosa arguments), needs librosa + scikit-learn, and takes
about 2 s per 4 s note (this module: ~0.12 s of CPU). Deliberate differences, all for speed or because
the clips are single notes:

- A clip is one event: its onset is the clip start (the package's onset detector returns one onset
  for a single note, and then uses 0 too).
- Spectral features run at the clip's own rate with every window, hop and FFT length scaled from
  the package's 44.1 kHz values (the package upsamples to 44.1 kHz, adding nothing above sr/2).
- Harmonic/percussive separation (hardness) is median filtering of the STFT (as librosa's hpss);
  its energy ratio is taken on the masked STFT instead of after an inverse STFT.
- Hardness's attack time, the loudness-based features and warmth's spectrum run on the clip
  resampled to 44.1 kHz, as in the package (sample-level attack thresholds, its multirate
  third-octave filter bank); the rest at the clip's rate.

Agreement with the package (0.4.0 patched to run, on 40 tonal + 40 drum FluidR3 notes at 16 kHz):
mean absolute difference 0.1-0.8 points on the 0-100 scale (brightness 0.14, hardness 0.74,
depth 0.58, roughness 0.82, boominess 0.54, warmth 0.24, sharpness 0.25), Pearson r >= 0.98.

`raw_attributes` gives the package-scale values; `normalise` maps them to [0, 1] with RAW_RANGES,
fixed constants: the 1st and 99th percentiles of the raw values over 1200 tonal and 1080 drum
notes spread over every program and kit of FluidR3_GM (`vqsynth data build --limit 1200`), rounded.
A generated clip is scored on the same scale as the corpus; values outside are clipped.
"""

from __future__ import annotations

import numpy as np

from vqsynth.model.constants import TIMBRE_ATTRIBUTES

ATTRIBUTES = [name for name, _ in TIMBRE_ATTRIBUTES]

# Raw-value ranges mapped to [0, 1] (values outside are clipped). See the module docstring.
RAW_RANGES = {
    "brightness": (24.0, 84.0),
    "hardness": (18.0, 77.0),
    "depth": (5.0, 81.0),
    "roughness": (0.0, 75.0),
    "boominess": (-24.0, 56.0),
    "warmth": (12.0, 65.0),
    "sharpness": (20.0, 88.0),
}

_REF_SR = 44100.0  # the rate the package analyses at; window lengths below are given at this rate


def _n(samples_at_44k, sr, fast=False):
    """A length given at 44.1 kHz, at rate sr; `fast` rounds it up to a fast FFT size (< 1 % longer)."""
    from scipy.fft import next_fast_len

    n = max(2, int(round(samples_at_44k * sr / _REF_SR)))
    return next_fast_len(n, real=True) if fast else n


def _log10(v):
    """log10 with a floor, so a silent feature gives a very low value instead of -inf."""
    return float(np.log10(max(float(v), 1e-9)))


# --------------------------------------------------------------------------------------- loudness

def _biquad_k_weighting(sr):
    """ITU-R BS.1770 K-weighting (shelf + high-pass) for any rate, as pyloudnorm designs it."""
    def design(kind, g, q, fc):
        a_ = 10 ** (g / 40.0)
        w0 = 2 * np.pi * fc / sr
        alpha, c = np.sin(w0) / (2 * q), np.cos(w0)
        if kind == "shelf":
            b = [a_ * ((a_ + 1) + (a_ - 1) * c + 2 * np.sqrt(a_) * alpha), -2 * a_ * ((a_ - 1) + (a_ + 1) * c),
                 a_ * ((a_ + 1) + (a_ - 1) * c - 2 * np.sqrt(a_) * alpha)]
            a = [(a_ + 1) - (a_ - 1) * c + 2 * np.sqrt(a_) * alpha, 2 * ((a_ - 1) - (a_ + 1) * c),
                 (a_ + 1) - (a_ - 1) * c - 2 * np.sqrt(a_) * alpha]
        else:
            b = [(1 + c) / 2, -(1 + c), (1 + c) / 2]
            a = [1 + alpha, -2 * c, 1 - alpha]
        return np.r_[b, a] / a[0]
    return np.stack([design("shelf", 4.0, 1 / np.sqrt(2), 1500.0), design("hp", 0.0, 0.5, 38.0)])


def loudness_lufs(x, sr) -> float:
    """Integrated loudness (ITU-R BS.1770-4: K-weighting, 400 ms blocks, -70 LUFS and -10 LU gates)
    of a mono clip in LUFS; -inf only for digital silence. Clips shorter than 0.4 s are zero-padded."""
    from scipy.signal import sosfilt

    x = np.asarray(x, np.float64).ravel()
    block, step = int(round(0.4 * sr)), int(round(0.1 * sr))
    if len(x) < block:
        x = np.pad(x, (0, block - len(x)))
    y = sosfilt(_biquad_k_weighting(sr), x)
    c = np.r_[0.0, np.cumsum(y * y)]
    starts = np.arange(0, len(x) - block + 1, step)
    z = (c[starts + block] - c[starts]) / block
    if not (z > 0).any():
        return float("-inf")
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10 * np.log10(z)
    if (lk > -70.0).any():  # absolute gate; a clip quieter than -70 LUFS throughout is measured ungated
        z, lk = z[lk > -70.0], lk[lk > -70.0]
    relative = -0.691 + 10 * np.log10(z.mean()) - 10.0
    return float(-0.691 + 10 * np.log10(z[lk > relative].mean()))


def _prepare(x, sr):
    """The package's input stage: mono float64 loudness-normalised to -24 LUFS (peak at most 1),
    and that clip at 44.1 kHz (soxr HQ, as librosa resamples) for the loudness-based features."""
    x = np.asarray(x, np.float64).ravel()
    lufs = loudness_lufs(x, sr)
    if not np.isfinite(lufs):
        raise ValueError("silent clip: timbral attributes are undefined")
    x = x * 10 ** ((-24.0 - lufs) / 20.0)
    x = x / max(1.0, np.abs(x).max())
    if sr == _REF_SR:
        return x, x
    import soxr

    return x, soxr.resample(x, sr, int(_REF_SR), quality="HQ")


# ------------------------------------------------------------------------------- shared analysis

def _power_spectrogram(x, sr, n, hop, window="hamming", scaling="spectrum"):
    """scipy's spectrogram as the package calls it; the FFT is zero-padded to a fast length (the
    windows stay as long as the package's: only the bin grid gets finer)."""
    from scipy.fft import next_fast_len
    from scipy.signal import spectrogram

    if len(x) < n:  # the package takes one FFT of the whole clip when it is shorter than a window
        n, hop = len(x), len(x) - 1
    f, _, s = spectrogram(x, sr, window, n, n - hop, next_fast_len(n, real=True), "constant", True, scaling)
    return f, s  # [bins], [bins, frames]


def _butter(x, fc, kind, sr):
    """Three passes of a 2nd-order Butterworth filter (-18 dB/octave), as the package filters."""
    from scipy.signal import butter, sosfilt

    return sosfilt(np.tile(butter(2, fc / (sr / 2), kind, output="sos"), (3, 1)), x)


def _peaks(spectrum, threshold):
    """Peak picking as the package's MIRtoolbox-style `detect_peaks` (height and contrast both at
    least `threshold` on a 0-1 normalised spectrum): indices sorted by level, loudest first."""
    from scipy.signal import find_peaks

    idx, _ = find_peaks(np.r_[-2.0, spectrum, -2.0], height=threshold, prominence=threshold)
    idx = idx - 1
    return idx[np.argsort(spectrum[idx])[::-1]]


# Zwicker loudness tables (ISO 532 B / DIN 45631, from the BASIC program in J. Acoust. Soc. Jpn (E)
# 12(1), 1991, as transcoded in the package's specific_loudness).
_FR = np.array([25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250,
                1600, 2000, 2500, 3150, 4000, 5000, 6300, 8000, 10000, 12500])
_FF = 1000.0 * 2.0 ** (np.arange(-16, 12) / 3.0)  # exact third-octave mid frequencies
_RAP = np.array([45, 55, 65, 71, 80, 90, 100, 120])
_DLL = np.array([[-32, -24, -16, -10, -5, 0, -7, -3, 0, -2, 0], [-29, -22, -15, -10, -4, 0, -7, -2, 0, -2, 0],
                 [-27, -19, -14, -9, -4, 0, -6, -2, 0, -2, 0], [-25, -17, -12, -9, -3, 0, -5, -2, 0, -2, 0],
                 [-23, -16, -11, -7, -3, 0, -4, -1, 0, -1, 0], [-20, -14, -10, -6, -3, 0, -4, -1, 0, -1, 0],
                 [-18, -12, -9, -6, -2, 0, -3, -1, 0, -1, 0], [-15, -10, -8, -4, -2, 0, -3, -1, 0, -1, 0]])
_LTQ = np.array([30, 18, 12, 8, 7, 6, 5, 4, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3])
_A0 = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.5, -1.6, -3.2, -5.4, -5.6, -4, -1.5, 2, 5, 12])
_DCB = np.array([-0.25, -0.6, -0.8, -0.8, -0.5, 0, 0.5, 1.1, 1.5, 1.7, 1.8, 1.8, 1.7, 1.6, 1.4, 1.2, 0.8,
                 0.5, 0, -0.5])
_ZUP = np.array([0.9, 1.8, 2.8, 3.5, 4.4, 5.4, 6.6, 7.9, 9.2, 10.6, 12.3, 13.8, 15.2, 16.7, 18.1, 19.3, 20.6,
                 21.8, 22.7, 23.6, 24])
_RNS = np.array([21.5, 18, 15.1, 11.5, 9, 6.1, 4.4, 3.1, 2.13, 1.36, 0.82, 0.42, 0.30, 0.22, 0.15, 0.10, 0.035, 0])
_USL = np.array([[13.0, 8.2, 6.3, 5.5, 5.5, 5.5, 5.5, 5.5], [9.0, 7.5, 6.0, 5.1, 4.5, 4.5, 4.5, 4.5],
                 [7.8, 6.7, 5.6, 4.9, 4.4, 3.9, 3.9, 3.9], [6.2, 5.4, 4.6, 4.0, 3.5, 3.2, 3.2, 3.2],
                 [4.5, 3.8, 3.6, 3.2, 2.9, 2.7, 2.7, 2.7], [3.7, 3.0, 2.8, 2.35, 2.2, 2.2, 2.2, 2.2],
                 [2.9, 2.3, 2.1, 1.9, 1.8, 1.7, 1.7, 1.7], [2.4, 1.7, 1.5, 1.35, 1.3, 1.3, 1.3, 1.3],
                 [1.95, 1.45, 1.3, 1.15, 1.1, 1.1, 1.1, 1.1], [1.5, 1.2, 0.94, 0.86, 0.82, 0.82, 0.82, 0.82],
                 [0.72, 0.67, 0.64, 0.63, 0.62, 0.62, 0.62, 0.62], [0.59, 0.53, 0.51, 0.50, 0.42, 0.42, 0.42, 0.42],
                 [0.40, 0.33, 0.26, 0.24, 0.24, 0.22, 0.22, 0.22], [0.27, 0.21, 0.20, 0.18, 0.17, 0.17, 0.17, 0.17],
                 [0.16, 0.15, 0.14, 0.12, 0.11, 0.11, 0.11, 0.11], [0.12, 0.11, 0.10, 0.08, 0.08, 0.08, 0.08, 0.08],
                 [0.09, 0.08, 0.07, 0.06, 0.06, 0.06, 0.06, 0.05], [0.06, 0.05, 0.03, 0.02, 0.02, 0.02, 0.02, 0.02]])
_Z = np.arange(1, 241) * 0.1  # critical-band rate grid of the specific loudness, 0.1 Bark steps
_ZBAND = np.searchsorted(_ZUP, _Z - 1e-9)


def _third_octave_levels(frames):
    """Levels (dB re 100 dB Pref) of the 28 third-octave bands 25 Hz-12.5 kHz of 44.1 kHz frames
    [W, n], with the package's filter bank: 4th-order Butterworth band-passes, the top four at full
    rate, the rest on a signal halved in rate once per octave (2nd-order Chebyshev anti-aliasing)."""
    from scipy.signal import butter, cheby1, lfilter

    def level(y):
        with np.errstate(divide="ignore"):
            return np.where(y.max(1) > 0, 10 * np.log10((y * y).mean(1)), -np.inf)

    def band(i, fs):
        lo, hi = _FF[i] * 2 ** (-1 / 6) / (fs / 2), min(_FF[i] * 2 ** (1 / 6) / (fs / 2), 0.9999999999)
        return butter(4, [lo, hi], "bandpass")

    p = np.empty((len(frames), 28))
    x = frames
    for i in range(27, 23, -1):
        p[:, i] = level(lfilter(*band(i, _REF_SR), x, axis=1))
    top = [band(i, _REF_SR) for i in (26, 25, 24)]  # reused an octave lower after each halving
    c, d = cheby1(2, 0.1, 0.4)
    for i in range(23, 1, -3):
        x = lfilter(c, d, x, axis=1)[:, 1::2]
        for k, (b, a) in enumerate(top):
            p[:, i - k] = level(lfilter(b, a, x, axis=1))
    return p + 100.0


def _specific_loudness(x44):
    """Zwicker specific loudness N'(z) [windows, 240] (sone/Bark) of consecutive 4096-sample windows
    of 44.1 kHz audio, and each window's RMS."""
    frames = np.pad(x44, (0, -len(x44) % 4096)).reshape(-1, 4096)
    band = _third_octave_levels(frames)
    # low-frequency equal-loudness correction of the first 11 bands, then 3 lowest critical bands
    j = (band[:, None, :11] > (_RAP[:7, None] - _DLL[:7])[None]).sum(1)
    ti = 10 ** ((band[:, :11] + _DLL[j, np.arange(11)]) / 10)
    gi = np.stack([ti[:, :6].sum(1), ti[:, 6:9].sum(1), ti[:, 9:11].sum(1)], 1)
    with np.errstate(divide="ignore"):
        le = np.concatenate([np.where(gi > 0, 10 * np.log10(gi), 0.0), band[:, 11:28]], 1)  # [W, 20]
    over = le > _LTQ
    le2 = np.where(over, le - _A0 - _DCB, _LTQ)
    nm = 0.0635 * 10 ** (0.025 * _LTQ) * ((0.75 + 0.25 * 10 ** (0.1 * (le2 - _LTQ))) ** 0.25 - 1)
    nm = np.concatenate([np.where(over, np.maximum(nm, 0.0), 0.0), np.zeros((len(nm), 1))], 1)
    nm[:, 0] *= np.minimum(1.0, 0.4 + 0.32 * nm[:, 0] ** 0.2)
    # main loudness per band, then the upper masking slopes (steeper at high loudness), step by step
    out = np.empty((len(nm), 240))
    n = np.zeros(len(nm))
    for k, i in enumerate(_ZBAND):
        jj = np.minimum((_RNS[None, :] >= n[:, None]).sum(1), 17)
        n = np.maximum(np.maximum(nm[:, i], n - 0.1 * _USL[jj, min(i - 1, 7)]), 0.0)
        out[:, k] = n
    return out, np.sqrt((frames * frames).mean(1))


def _bark_weights(lo, hi):
    """The package's weighting over 0.1-Bark bins lo..hi (its `normal_dist`, quirk included)."""
    a = np.arange(lo, hi, dtype=np.float64)
    g = np.exp(-((a - (lo + hi) / 2.0) ** 2) / 2.0 * 0.01 ** 2)
    w = np.zeros(240)
    w[lo:hi] = (g - g.min()) / (g.max() - g.min())
    return w


def _avg(values, weights):
    weights = np.asarray(weights, np.float64)
    return float(np.average(values, weights=weights)) if weights.sum() > 0 else 0.0


# ------------------------------------------------------------------------------------ attributes

def _brightness(x, sr):
    x = _butter(x, 20.0, "high", sr)
    n, hop = _n(2048, sr), _n(512, sr)
    f, p = _power_spectrogram(x, sr, n, hop)
    total = p.sum(0)
    hf = _power_spectrogram(_butter(x, 2000.0, "high", sr), sr, n, hop)[1].sum(0)
    pc = _power_spectrogram(_butter(x, 100.0, "high", sr), sr, n, hop)[1]
    pct = pc.sum(0)
    ok, okc = total > 0, pct > 0
    ratio = _avg(hf[ok] / total[ok], total[ok])
    centroid = _avg((f @ pc)[okc] / pct[okc], pct[okc])
    return 4.613128018020465 * _log10(ratio) + 17.378889309312974 * _log10(centroid) + 17.434733750553022


def _depth(x, sr):
    x = _butter(x, 20.0, "high", sr)
    x = x / np.abs(x).max()
    n, hop = _n(4096, sr), _n(1024, sr)
    f, p = _power_spectrogram(x, sr, n, hop)
    tpower = p.sum(0)
    live = tpower > 10 ** (-60 / 20)
    lc = _power_spectrogram(_butter(x, 2000.0, "low", sr), sr, n, hop)[1]
    lr = _power_spectrogram(_butter(x, 500.0, "low", sr), sr, n, hop)[1].sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = np.where(live, (f @ lc) / lc.sum(0), 0.0)
        ratio = np.where(live, lr / tpower, 0.0)
    m1 = min(_avg(centroid, tpower), 2000.0)
    m2 = _avg(ratio, tpower)
    # approximate decay time: from the RMS-envelope maximum until it falls 40 dB
    step = _n(256, sr)
    rms = np.sqrt((np.pad(x, (0, -len(x) % step)).reshape(-1, step) ** 2).mean(1))
    tail = rms[np.argmax(rms):] / rms.max()
    below = np.flatnonzero(tail < 0.01)
    m3 = _log10((below[0] if below.size else len(tail)) * step / sr)
    # lowest peak of the long-term spectrum; one in the DC bin is skipped (the package takes its
    # log10 and returns an infinite depth)
    spec = p.sum(1)
    spec = (spec - spec.min()) / max(spec.max() - spec.min(), 1e-30)
    peak_hz = f[_peaks(spec, 0.01)]  # loudest first
    m4 = _log10(peak_hz[peak_hz > 0].min()) if peak_hz.size and peak_hz[0] > 0 else 0.0
    sig = m2 ** 10 / (m2 ** 10 + 0.2)
    c = [-0.0043703565847874465, 32.83743202462131, 4.750862716905235, -14.217438690256062,
         3.8782339862813924, -0.8544826091735516, 66.69534393444391]
    return float(np.dot(c, [m1, m2, m3, m4, m2 * m3, sig * m3, 1.0]))


def _hold_envelope(x, sr, decay_time=0.1, hold_time=0.01):
    """The package's sample-and-hold envelope (|x| held 10 ms, then a linear decay reaching zero
    from the clip peak in `decay_time`), as a max-plus filter instead of a per-sample loop."""
    from scipy.ndimage import maximum_filter1d

    a = np.abs(x)
    hold = int(hold_time * sr)
    rate = a.max() / (decay_time * sr)
    held = maximum_filter1d(a, hold + 1, origin=hold // 2, mode="constant")
    idx = np.arange(len(a))
    decayed = np.maximum.accumulate(a + rate * idx) - rate * idx  # value `hold` samples later
    return np.maximum(held, np.r_[np.zeros(hold), decayed[:len(a) - hold]])


def _attack(env, rate, fixed=False, max_time=0.1):
    """Attack of an envelope as the package's calculate_attack_time: on the rise from the last
    minimum before the peak to the peak, either CUIDADO 'minimum effort' thresholds or the fixed
    20 %/90 % ones. Returns (attack time in s, start index); None when the peak is at 0."""
    peak = int(np.argmax(env))
    if peak == 0:
        return None
    pre = env[:peak]
    lo = int(np.flatnonzero(pre == pre.min())[-1])
    seg = env[lo:peak + 1] / env.max()
    base, rng = seg.min(), seg.max() - seg.min()
    if fixed:
        start = int(np.argmax(seg >= base + 0.2 * rng))
        end = start + int(np.argmax(seg[start:] >= base + 0.9 * rng))
    else:
        levels = base + rng * np.linspace(0.1, 0.9, 9)
        idx = np.argmax(seg[None, :] >= levels[:, None], axis=1)
        effort = np.diff(idx)
        thr = 3 * effort.mean()
        s = int(np.argmax(effort <= thr))
        e = int(np.argmax(effort[s:] >= thr))
        e = (len(effort) - s - 1 if e == 0 else e) + s
        start, end = idx[s], idx[e]
        if start == end:
            start, end = idx[0], idx[-1]
    t = (end - start + 1.0) / rate if end != start else 1.0 / rate
    return min(t, max_time + 1.0 / rate), int(start) + lo


def _onset_strength_max(x, sr):
    """Maximum of librosa's default onset strength (mean positive flux of a 128-band Slaney mel
    dB spectrogram, 2048/512 at 44.1 kHz, 80 dB floor) with the mel bank spanning 0-22.05 kHz."""
    from scipy.fft import rfft, rfftfreq

    n, hop, nfft = _n(2048, sr), _n(512, sr), _n(2048, sr, fast=True)
    xp = np.pad(x, (n // 2, n // 2))
    frames = np.lib.stride_tricks.sliding_window_view(xp, n)[::hop]
    s = np.abs(rfft(frames * np.hanning(n + 1)[:-1], nfft, axis=1)) ** 2
    f = rfftfreq(nfft, 1.0 / sr)

    def hz_to_mel(h):
        h = np.asarray(h, np.float64)
        return np.where(h >= 1000, 15 + np.log(np.maximum(h, 1e-9) / 1000) / (np.log(6.4) / 27), h / (200 / 3))

    def mel_to_hz(m):
        return np.where(m >= 15, 1000 * np.exp((np.log(6.4) / 27) * (m - 15)), m * 200 / 3)

    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(_REF_SR / 2), 130))
    lower = (f[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    upper = (edges[2:, None] - f[None, :]) / np.diff(edges)[1:, None]
    bank = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    db = 10 * np.log10(np.maximum(s @ bank.T, 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    return float(np.maximum(np.diff(db, axis=0), 0).mean(1).max())


def _median31(s, axis):
    """Running median over 31 values along `axis`, edges mirrored (scipy.ndimage 'reflect')."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (15, 15)
    w = np.lib.stride_tricks.sliding_window_view(np.pad(s, pad, mode="symmetric"), 31, axis=axis)
    return np.partition(w, 15, axis=-1)[..., 15]


def _hp_ratio(x, sr):
    """Percussive share of the energy after librosa-style HPSS (31-bin median filters, soft masks)."""
    from scipy.fft import rfft

    n, hop = _n(2048, sr), _n(512, sr)
    xp = np.pad(x, (n // 2, n // 2)).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(xp, n)[::hop]
    window = np.hanning(n + 1)[:-1].astype(np.float32)
    s = np.abs(rfft(frames * window, _n(2048, sr, fast=True), axis=1)).T  # [bins, frames]
    h, p = _median31(s, 1), _median31(s, 0)
    with np.errstate(invalid="ignore"):
        mp = np.nan_to_num(p ** 2 / (h ** 2 + p ** 2))
    pe = np.sqrt(((s * mp) ** 2).sum(0, dtype=np.float64))
    he = np.sqrt(((s * (1 - mp)) ** 2).sum(0, dtype=np.float64))
    return float(pe.sum() / max((pe + he).sum(), 1e-30))


def _bandwidth_max(x, sr):
    """Largest spectral bandwidth (rolloff at -75 dB minus 5 % roll-on) in the 0.1 s after the
    bandwidth attack starts; boxcar 4096-sample spectrogram with a 128-sample hop (at 44.1 kHz)."""
    from scipy.fft import rfft

    n, hop = _n(4096, sr, fast=True), _n(128, sr)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float32), n)[::hop]
    frames = frames - frames.mean(1, keepdims=True)
    mag = np.abs(rfft(frames, axis=1)) * np.float32(np.sqrt(1.0 / (sr * n)))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    level = mag.sum(1)
    live = level > level.min() + 0.1 * (level.max() - level.min())
    above = mag >= 10 ** (-75 / 20)
    top = np.where(above.any(1), f[len(f) - 1 - np.argmax(above[:, ::-1], axis=1)], np.nan)
    cum = np.cumsum(mag, axis=1)
    low = f[np.minimum(np.argmax(cum >= 0.05 * level[:, None], axis=1), len(f) - 1)]
    bw = np.where(live & np.isfinite(top), top - low, 0.0)
    bw = np.where(live & ~np.isfinite(top), 0.0, bw)
    rate = sr / hop
    att = _attack(bw, rate, fixed=True) if bw.max() > 0 else None
    if att is None:
        return _REF_SR / 512.0
    start = att[1]
    value = bw[start:start + int(0.1 * rate)].max()
    return value if value > 512.0 else _REF_SR / 512.0


def _hardness(x, sr, x44, loud, rms):
    midband = _avg(loud @ _bark_weights(70, 140), rms)
    hp = _hp_ratio(x, sr)
    xp = np.pad(x, (_n(4097, sr), 0))
    # attack time and the centroid of the 125 ms after the attack start, at 44.1 kHz: the
    # minimum-effort thresholds resolve attacks of a few samples
    x44p = np.pad(x44, (4097, 0))
    att = _attack(_hold_envelope(x44p, _REF_SR, decay_time=0.1), _REF_SR)
    attack_time, start = att if att else (1.0 / _REF_SR, 0)
    seg = x44p[start:start + int(0.125 * _REF_SR)]
    centroid = 200.0
    if len(seg) > 512:
        spec = np.abs(np.fft.rfft(seg, 1 << int(np.ceil(np.log2(len(seg))))))
        f = np.fft.rfftfreq(2 * (len(spec) - 1), 1.0 / _REF_SR)
        keep = f >= 20
        if spec[keep].sum() > 0:
            centroid = max(200.0, float((spec[keep] * f[keep]).sum() / spec[keep].sum()))
    m = [_log10(_bandwidth_max(xp, sr)), _log10(centroid), _log10(midband), _log10(hp),
         _log10(_onset_strength_max(xp, sr)), _log10(attack_time), 1.0]
    c = [12.079781720638145, 18.52100377170042, 14.139883645260355, 5.567690321917516, 3.9346817690405635,
         -4.326890461087848, -85.60352209068202]
    return float(np.dot(c, m))


def _roughness(x, sr):
    """Vassilakis roughness summed over spectral-peak pairs of 50 ms frames (25 ms hop)."""
    from scipy.fft import rfft, rfftfreq

    step = int(0.05 * _REF_SR)
    n, nfft = _n(step, sr), _n(4096, sr)  # the exact bin grid: peak picking is sensitive to it
    window = np.hamming(n + 2)[1:-1]
    xp = np.pad(x, (_n(512, sr), 0))
    if len(xp) < n:
        xp = np.pad(xp, (0, n - len(xp)))
    frames = np.lib.stride_tricks.sliding_window_view(xp, n)[::n // 2]
    spec = np.abs(rfft(frames * window, nfft, axis=1)) * (_REF_SR / sr)  # 44.1 kHz magnitudes
    f = rfftfreq(nfft, 1.0 / sr)
    norm = (spec - spec.min()) / max(spec.max() - spec.min(), 1e-30)
    total = 0.0
    for frame, level in zip(norm, spec):
        pk = _peaks(frame, 0.01)
        if pk.size < 2:
            continue
        fr, v = f[pk], level[pk]
        r, c = np.tril_indices(len(pk), -1)  # pairs, the package's level-sorted lower triangle
        fmin = np.minimum(fr[r], fr[c])
        s = 0.24 / (0.0207 * fmin + 18.96)
        d = np.abs(fr[r] - fr[c])
        z = np.exp(-3.51 * s * d) - np.exp(-5.75 * s * d)
        total += float(((v[r] * v[c]) ** 0.1 * 0.5 * (2 * v[c] / (v[r] + v[c])) ** 3.11 * z).sum())
    mean = total / len(frames)
    return 0.0 if mean < 0.01 else float(np.log10(mean) * 13.98779569 + 48.97606571545886)


_ZHZ = 600 * np.sinh(_Z / 6.0)
_BOOM_W = 2.13 * np.exp(-0.151 * ((np.log10(_ZHZ) - np.log10(25)) / (np.log10(31.5) - np.log10(25)) + 1))
_BOOM_W[:4] = [0.8, 1.05, 1.10, 1.18]
_BELOW_280 = int(np.argmax(_ZHZ >= 280))
_SHARP_G = np.r_[np.ones(140), [0.00012 * z ** 4 - 0.0056 * z ** 3 + 0.1 * z ** 2 - 0.81 * z + 3.5
                                for z in np.arange(141, 241) / 10.0]]


def _boominess(loud, rms):
    """Hatano & Hashimoto booming index per window (rms^2-weighted) and the low-band level."""
    total = loud.sum(1)
    live = total > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        bandsum = 10 * np.log10((10 ** (loud * _BOOM_W / 10)).sum(1))
        index = np.where(live, bandsum * loud[:, :_BELOW_280].sum(1) / total, 0.0)
    low = float((loud @ _bark_weights(0, 70)).mean())
    return 43.67402696195865 * _log10(_avg(index, rms ** 2)) - 10.90054738389845 * _log10(low) + 26.836530575185435


def _sharpness(loud, rms):
    """Fastl sharpness per window (acum), rms^2-weighted."""
    total = loud.sum(1)
    with np.errstate(invalid="ignore"):
        s = np.where(total > 0, 0.11 * (loud * _SHARP_G * _Z).sum(1) / total, 0.0)
    return 102.50508921364404 * _log10(_avg(s, rms ** 2)) + 34.432655185001735


def _warmth(x44, loud, rms):
    wr = float((loud @ _bark_weights(10, 40)).mean())
    hf = _avg(loud @ _bark_weights(80, 240), rms)
    f, p = _power_spectrogram(x44, _REF_SR, 8192, 8192 - 1024, window=("tukey", 0.25), scaling="density")
    spec = p.sum(1)
    spec = spec / spec.max()
    pk = _peaks(spec, 0.2)
    fund_idx = int(pk.min()) if pk.size else 1
    fund = f[fund_idx]
    upper = min(fund * 3.5, 12000.0)
    ratio = spec[fund_idx:np.searchsorted(f, 260, "right")].sum() / spec.sum() if fund < 260 else 0.0
    centroid = float((f * spec).sum() / spec.sum())
    sel = (f > upper) & (f > 0)
    decay = 0.0
    if sel.sum() > 2:  # R^2 of a straight line through the log-log spectrum above the warm region
        lx, ly = np.log10(f[sel]), np.log10(np.maximum(spec[sel], 1e-300))
        fit = np.polyval(np.polyfit(lx, ly, 1), lx)
        decay = 1.0 - ((ly - fit) ** 2).sum() / max(((ly - ly.mean()) ** 2).sum(), 1e-30)
    c = [-4.464258317026696, -0.08819320850778556, 0.29156539973575546, 17.274733561081554,
         8.403340066029507, 45.21212125085579]
    return float(np.dot(c, [_log10(centroid), hf, wr, decay, ratio, 1.0]))


# ---------------------------------------------------------------------------------------- public

def raw_attributes(x, sr, names=ATTRIBUTES) -> dict:
    """Attributes of a mono clip on the package's raw (about 0-100) scale; raises ValueError on
    silence."""
    x, x44 = _prepare(x, sr)
    loud, rms = _specific_loudness(x44) if {"hardness", "boominess", "warmth", "sharpness"} & set(names) else (0, 0)
    features = {"brightness": lambda: _brightness(x, sr), "hardness": lambda: _hardness(x, sr, x44, loud, rms),
                "depth": lambda: _depth(x, sr), "roughness": lambda: _roughness(x, sr),
                "boominess": lambda: _boominess(loud, rms), "warmth": lambda: _warmth(x44, loud, rms),
                "sharpness": lambda: _sharpness(loud, rms)}
    return {name: features[name]() for name in names}


def normalise(raw: dict) -> dict:
    """Raw values -> [0, 1] with the fixed RAW_RANGES (clipped)."""
    return {k: float(np.clip((v - RAW_RANGES[k][0]) / (RAW_RANGES[k][1] - RAW_RANGES[k][0]), 0.0, 1.0))
            for k, v in raw.items()}


def attributes(x, sr) -> dict:
    """The seven attributes of a mono clip in [0, 1], in ATTRIBUTES order."""
    return normalise(raw_attributes(x, sr))


def brightness(x, sr):
    return raw_attributes(x, sr, ["brightness"])["brightness"]


def hardness(x, sr):
    return raw_attributes(x, sr, ["hardness"])["hardness"]


def depth(x, sr):
    return raw_attributes(x, sr, ["depth"])["depth"]


def roughness(x, sr):
    return raw_attributes(x, sr, ["roughness"])["roughness"]


def boominess(x, sr):
    return raw_attributes(x, sr, ["boominess"])["boominess"]


def warmth(x, sr):
    return raw_attributes(x, sr, ["warmth"])["warmth"]


def sharpness(x, sr):
    return raw_attributes(x, sr, ["sharpness"])["sharpness"]
