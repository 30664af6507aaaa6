"""VQCPC encoder (thesis ch. 2.3 / 8.2.1): audio -> one discrete envelope token per frame.

Front end: a constant-Q transform written as one strided conv1d (complex kernels as two real
banks), so it exports to ONNX. 6 octaves x 24 bins from C1; the longest kernels are capped at
`max_kernel` samples, which lowers Q in the lowest octave (a variable-Q transform) to keep the
cost sane. Then f_enc: four 1x1 conv blocks (512, 512, 256, 32) and a vector quantiser of C codes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def cqt_kernels(sample_rate, fmin=32.70, octaves=6, bins_per_octave=24, max_kernel=4096):
    """Real and imaginary CQT kernels [bins, L] (Hann-windowed complex exponentials, centred)."""
    n_bins = octaves * bins_per_octave
    q = 1.0 / (2.0 ** (1.0 / bins_per_octave) - 1.0)
    freqs = fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)
    lengths = np.minimum(np.ceil(q * sample_rate / freqs), max_kernel).astype(int)
    L = int(lengths.max())
    real = np.zeros((n_bins, L), dtype=np.float32)
    imag = np.zeros((n_bins, L), dtype=np.float32)
    for i, (f, n) in enumerate(zip(freqs, lengths)):
        t = np.arange(n) - n / 2
        w = np.hanning(n) / n
        start = (L - n) // 2
        real[i, start:start + n] = w * np.cos(2 * np.pi * f * t / sample_rate)
        imag[i, start:start + n] = w * np.sin(2 * np.pi * f * t / sample_rate)
    return real, imag, freqs


class CQT(nn.Module):
    """Log-magnitude CQT, one column per hop, centred frames."""

    def __init__(self, sample_rate, hop):
        super().__init__()
        real, imag, self.freqs = cqt_kernels(sample_rate)
        self.hop = hop
        self.pad = real.shape[1] // 2
        self.register_buffer("kernels", torch.from_numpy(np.concatenate([real, imag]))[:, None, :])

    def forward(self, audio):  # [B, N] -> [B, bins, N // hop]
        x = nn.functional.pad(audio.unsqueeze(1), (self.pad, self.pad))
        y = nn.functional.conv1d(x, self.kernels, stride=self.hop)
        n = audio.shape[1] // self.hop
        re, im = y[:, :, :n].chunk(2, dim=1)
        return torch.log(re * re + im * im + 1e-8)


class VectorQuantizer(nn.Module):
    def __init__(self, n_codes=16, dim=32):
        super().__init__()
        self.codebook = nn.Parameter(torch.randn(n_codes, dim) / math.sqrt(dim))

    def codes(self, x):  # x [B, D, T] -> token [B, T]
        d = (x.transpose(1, 2).unsqueeze(2) - self.codebook).pow(2).sum(-1)
        return d.argmin(-1)

    def forward(self, x, beta=0.25):
        """Returns quantised x (straight-through), tokens, and the VQ loss with commitment beta."""
        tokens = self.codes(x)
        q = self.codebook[tokens].transpose(1, 2)
        loss = (q - x.detach()).pow(2).mean() + beta * (q.detach() - x).pow(2).mean()
        return x + (q - x).detach(), tokens, loss


class Encoder(nn.Module):
    """audio [B, N] -> latent [B, 32, N // hop] and tokens [B, N // hop]."""

    def __init__(self, sample_rate, hop, n_codes=16, widths=(512, 512, 256, 32)):
        super().__init__()
        self.cqt = CQT(sample_rate, hop)
        self.norm = nn.InstanceNorm1d(self.cqt.kernels.shape[0] // 2, affine=True)
        layers, c = [], self.cqt.kernels.shape[0] // 2
        for i, w in enumerate(widths):
            layers.append(nn.Conv1d(c, w, 1))
            if i < len(widths) - 1:
                layers.append(nn.ReLU())
            c = w
        self.f_enc = nn.Sequential(*layers)
        self.vq = VectorQuantizer(n_codes, widths[-1])

    def latent(self, audio):
        return self.f_enc(self.norm(self.cqt(audio)))

    def forward(self, audio):  # what encoder.onnx computes
        return self.vq.codes(self.latent(audio))


class VQCPC(nn.Module):
    """Encoder + autoregressive context + K step predictors, trained with intra-sequence InfoNCE.

    Negatives come from other frames of the same excerpt, so what the tokens must tell apart is
    what changes inside a note (onset, decay, release, tremolo), not pitch or instrument, which
    are constant within an excerpt and so do not help to pick the right future frame.
    """

    def __init__(self, sample_rate, hop, n_codes=16, k_ahead=5, n_negatives=16, beta=0.25):
        super().__init__()
        self.encoder = Encoder(sample_rate, hop, n_codes)
        self.gru = nn.GRU(32, 256, num_layers=2, batch_first=True)
        self.context = nn.Linear(256, 512)
        self.predictors = nn.ModuleList(nn.Linear(512, 32, bias=False) for _ in range(k_ahead))
        self.k_ahead, self.n_negatives, self.beta = k_ahead, n_negatives, beta

    def forward(self, audio):
        z = self.encoder.latent(audio)  # [B,32,T]
        self.last_latent = z.detach().transpose(1, 2).reshape(-1, z.shape[1])
        q, tokens, vq_loss = self.encoder.vq(z, self.beta)
        q = q.transpose(1, 2)  # [B,T,32]
        c = self.context(self.gru(q)[0])  # [B,T,512]
        B, T, _ = q.shape
        nce, correct = 0.0, 0.0
        for k, predictor in enumerate(self.predictors, start=1):
            pred = predictor(c[:, :T - k])  # [B,T-k,32]
            target = q[:, k:]  # positives
            neg_idx = torch.randint(0, T, (B, T - k, self.n_negatives), device=audio.device)
            negatives = q[torch.arange(B)[:, None, None], neg_idx]  # [B,T-k,N,32]
            cands = torch.cat([target.unsqueeze(2), negatives], dim=2)
            logits = (cands * pred.unsqueeze(2)).sum(-1)
            labels = torch.zeros(B * (T - k), dtype=torch.long, device=audio.device)
            nce = nce + nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels)
            correct = correct + (logits.argmax(-1) == 0).float().mean()
        return nce / self.k_ahead, vq_loss, tokens, correct / self.k_ahead


def codebook_stats(tokens, n_codes):
    """Perplexity of code usage and the number of dead codes."""
    counts = torch.bincount(tokens.reshape(-1), minlength=n_codes).float()
    p = counts / counts.sum()
    perplexity = torch.exp(-(p[p > 0] * p[p > 0].log()).sum())
    return float(perplexity), int((counts == 0).sum())


def train_vqcpc(sample_batch, run_dir, sample_rate, hop, steps=3000, batch=16, lr=2e-4, n_codes=16):
    """sample_batch(batch, rng) -> float32 audio [B, N]. Resumes from run_dir."""
    from vqsynth.train.run import Run

    model = VQCPC(sample_rate, hop, n_codes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run = Run(run_dir, {"model": model, "opt": opt})
    rng = np.random.default_rng(run.step)
    while run.step < steps:
        audio = torch.from_numpy(sample_batch(batch, rng))
        nce, vq, tokens, acc = model(audio)
        loss = nce + vq
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step += 1
        if run.step % 50 == 0:  # revive dead codes on random encoder outputs (codebook reset)
            counts = torch.bincount(tokens.reshape(-1), minlength=n_codes)
            dead = torch.nonzero(counts == 0).flatten()
            if dead.numel():
                pick = torch.randint(0, model.last_latent.shape[0], (dead.numel(),))
                with torch.no_grad():
                    model.encoder.vq.codebook[dead] = model.last_latent[pick]
        if run.step % 25 == 0:
            perp, dead = codebook_stats(tokens, n_codes)
            run.log(nce=nce.item(), vq=vq.item(), accuracy=acc.item(), perplexity=perp, dead_codes=dead)
        run.maybe_save()
    run.save()
    return model
