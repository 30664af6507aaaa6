"""The project's own Inception-style networks on 1-s log-mel spectrograms.

MelClassifier has two uses: the teacher whose tempered family probabilities become the
generator's soft labels (DarkGAN's knowledge distillation), and the judge of the evaluation suite
(PIS, IIS, KID and Frechet distance on its embeddings, thesis ch. 4.3).

AttributeRegressor, the same body with a regression head, learns the seven Audio Commons
attributes from real notes; frozen, it tells the generator whether its output carries the
attributes it was asked for (the evaluation measures them with the real Audio Commons code, not
with this network, so the figures stay independent of it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def mel_filterbank(sample_rate, n_fft, n_mels, fmin=30.0, fmax=None):
    """Triangular HTK-mel filters [n_mels, n_fft//2+1] (Slaney-style area normalisation)."""
    fmax = fmax or sample_rate / 2

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:, None] - edges[1:-1, None])
    fb = np.maximum(0.0, np.minimum(lower, upper))
    return (fb * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


class LogMel(nn.Module):
    def __init__(self, sample_rate=16000, n_fft=1024, hop=160, n_mels=64):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)))
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, audio):  # [B,N] -> [B,1,mels,frames]
        X = torch.stft(audio, self.n_fft, self.hop, window=self.window, return_complex=True).abs() ** 2
        return torch.log(torch.matmul(self.fb, X) + 1e-6).unsqueeze(1)


def _block(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.MaxPool2d(2))


class MelClassifier(nn.Module):
    """Log-mel CNN with a pitch head (MIDI 21..108) and a GM-family head; embed() gives 128-d."""

    def __init__(self, sample_rate=16000, n_pitches=88, n_families=16):
        super().__init__()
        self.mel = LogMel(sample_rate)
        self.body = nn.Sequential(_block(1, 16), _block(16, 32), _block(32, 64), _block(64, 128))
        self.pitch = nn.Linear(128, n_pitches)
        self.family = nn.Linear(128, n_families)

    def embed(self, audio):
        m = self.mel(audio)
        m = (m - m.mean(dim=(2, 3), keepdim=True)) / (m.std(dim=(2, 3), keepdim=True) + 1e-5)
        return self.body(m).amax(dim=(2, 3))

    def forward(self, audio):
        e = self.embed(audio)
        return self.pitch(e), self.family(e)


class AttributeRegressor(nn.Module):
    """Log-mel CNN -> the seven timbral attributes in [0, 1], from the first second of a note."""

    def __init__(self, sample_rate=16000, n_attrs=7):
        super().__init__()
        self.mel = LogMel(sample_rate)
        self.body = nn.Sequential(_block(1, 16), _block(16, 32), _block(32, 64), _block(64, 128))
        self.head = nn.Linear(128, n_attrs)

    def forward(self, audio):
        m = self.mel(audio)
        m = (m - m.mean(dim=(2, 3), keepdim=True)) / (m.std(dim=(2, 3), keepdim=True) + 1e-5)
        return torch.sigmoid(self.head(self.body(m).amax(dim=(2, 3))))


def train_regressor(sample_batch, run_dir, sample_rate=16000, steps=1000, batch=32, lr=1e-3):
    """sample_batch(batch, rng) -> (audio [B,N] float32, attributes [B,7] float32). Resumable."""
    from vqsynth.train.run import Run

    model = AttributeRegressor(sample_rate)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run = Run(run_dir, {"model": model, "opt": opt})
    rng = np.random.default_rng(run.step + 11)
    model.train()
    while run.step < steps:
        audio, target = sample_batch(batch, rng)
        audio = torch.from_numpy(audio) * torch.exp(torch.empty(len(audio), 1).uniform_(-2.0, 0.5))
        loss = nn.functional.mse_loss(model(audio), torch.from_numpy(target))
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step += 1
        if run.step % 25 == 0:
            run.log(mse=loss.item())
        run.maybe_save()
    run.save()
    return model.eval()


def train_classifier(sample_batch, run_dir, sample_rate=16000, steps=2000, batch=32, lr=1e-3):
    """sample_batch(batch, rng) -> (audio [B,N] float32, pitch index [B], family [B]). Resumable."""
    from vqsynth.train.run import Run

    model = MelClassifier(sample_rate)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run = Run(run_dir, {"model": model, "opt": opt})
    rng = np.random.default_rng(run.step + 7)
    model.train()
    while run.step < steps:
        audio, pitch, family = sample_batch(batch, rng)
        audio = torch.from_numpy(audio)
        audio = audio * torch.exp(torch.empty(audio.shape[0], 1).uniform_(-2.0, 0.5))  # loudness augmentation
        p_logits, f_logits = model(audio)
        p = torch.from_numpy(pitch).long()
        f = torch.from_numpy(family).long()
        loss = nn.functional.cross_entropy(p_logits, p) + nn.functional.cross_entropy(f_logits, f)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step += 1
        if run.step % 25 == 0:
            run.log(loss=loss.item(), pitch_acc=(p_logits.argmax(1) == p).float().mean().item(),
                    family_acc=(f_logits.argmax(1) == f).float().mean().item())
        run.maybe_save()
    run.save()
    return model.eval()
