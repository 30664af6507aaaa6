"""The DSP head in torch (differentiable), the twin of vqsynth/model/dsp.py for training.

Same conventions (see that module): frame values ramp linearly from the previous frame and are
reached at the last sample of the hop, the first frame starting at its own values; harmonics at or above the band limit are silent; noise is
Hann-windowed white noise shaped per band in the STFT domain and overlap-added at hop steps.
tests/test_train_synth.py holds the two to the same samples.
"""

from __future__ import annotations

import math

import torch


def _ramp(values, hop, first=None):
    """values [B,T,...] per frame -> [B,T*hop,...] per sample, ramping from the previous frame."""
    prev = torch.cat([values[:, :1] if first is None else first, values[:, :-1]], dim=1)
    r = torch.arange(1, hop + 1, dtype=values.dtype, device=values.device) / hop
    shape = (1, 1, hop) + (1,) * (values.dim() - 2)
    out = prev.unsqueeze(2) + (values - prev).unsqueeze(2) * r.view(shape)
    return out.reshape(values.shape[0], -1, *values.shape[2:])


def harmonic_synth(amp, harm, f0, hop, sample_rate, band_limit_hz):
    """amp [B,T], harm [B,T,H] (distribution), f0 [B,T] Hz -> audio [B,T*hop]."""
    H = harm.shape[-1]
    k = torch.arange(1, H + 1, dtype=f0.dtype, device=f0.device)
    limit = min(band_limit_hz, 0.5 * sample_rate)
    amps = amp.unsqueeze(-1) * harm * (f0.unsqueeze(-1) * k < limit).to(harm.dtype)
    a = _ramp(amps, hop)  # [B,N,H]; the first frame starts at its own values (no fade-in)
    f = _ramp(f0.double(), hop)  # [B,N]
    phase = torch.remainder(torch.cumsum(f * (2 * math.pi / sample_rate), dim=1), 2 * math.pi).float()
    return (a * torch.sin(phase.unsqueeze(-1) * k.float())).sum(-1)


def noise_synth(bands, hop, sample_rate, band_limit_hz, white=None, generator=None):
    """bands [B,T,Nb] -> audio [B,T*hop]; `white` [B,T,2*hop] makes it reproducible."""
    B, T, Nb = bands.shape
    n_fft = 2 * hop
    if white is None:
        white = torch.randn(B, T, n_fft, generator=generator, device=bands.device)
    window = torch.hann_window(n_fft, periodic=True, device=bands.device)
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate).to(bands.device)
    idx = torch.floor(freqs / band_limit_hz * Nb).long()
    inside = (idx < Nb).to(bands.dtype)
    gains = bands[..., idx.clamp(max=Nb - 1)] * inside
    grain = torch.fft.irfft(torch.fft.rfft(white * window) * gains, n=n_fft)
    grain = grain * math.sqrt(4.0 / 3.0 * sample_rate / (2.0 * band_limit_hz))
    head, tail = grain[..., :hop], grain[..., hop:]
    tail = torch.cat([torch.zeros_like(tail[:, :1]), tail[:, :-1]], dim=1)
    return (head + tail).reshape(B, T * hop)


def synthesize(frames, f0, n_harmonics, hop, sample_rate, band_limit_hz, white=None, generator=None):
    """Generator frames [B,T,1+H+Nb] and f0 [B,T] -> audio [B,T*hop] (harmonics + noise)."""
    amp, harm, bands = frames[..., 0], frames[..., 1:1 + n_harmonics], frames[..., 1 + n_harmonics:]
    return (harmonic_synth(amp, harm, f0, hop, sample_rate, band_limit_hz)
            + noise_synth(bands, hop, sample_rate, band_limit_hz, white, generator))
