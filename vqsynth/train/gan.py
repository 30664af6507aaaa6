"""Adversarial training of the generator, as in VQCPC-GAN, sized for a 2-core CPU.

- G: vqsynth.train.generator.Generator -> DSP frames -> vqsynth.train.synth (differentiable).
- Two critics on log-magnitude STFT frames (hop = the generator's frame hop):
  local: a per-frame critic (receptive field of a few frames) with an auxiliary token classifier;
  global: the whole note, with auxiliary pitch classification and attribute regression.
- Wasserstein loss with gradient penalty (lambda = 10) on both critics, plus ProGAN's drift
  penalty (epsilon * D(real)^2, as DrumGAN): without it the critics' scores ran away here
  (gap 6 -> 90 in 600 steps) and dragged G off (spectral loss 2.0 -> 2.6, runs/gan-adversarial-diverged).
- When the critics join a trained G, they first learn alone for `critic_warmup` steps, so G's
  first adversarial gradients come from a critic that already tells real from fake.
- z is the instrument (VQCPC-GAN): each GM program of the training split owns a Gaussian in z
  space (InstrumentTable, a variational embedding with a KL term towards N(0, I)), and G is fed a
  draw from its note's program. With z drawn from N(0, I) regardless of the note, the spectral
  term taught G to ignore z (z effect 0.47 in model 1.1); tied to the program, z is the one input
  that tells a violin's C4 from a flute's. Sampling N(0, I) at play time gives instruments in
  between; a program's mean is a preset.
- Attribute consistency (`attr_weight`): a frozen AttributeRegressor trained on real notes scores
  the first second of G's output against the attributes G was given. The critic's own attribute
  head is a poor regressor (MSE 0.15 on real notes, worse than the mean) and its weight rides on
  the small adversarial weight; model 1.1 lost the depth control under it.
- A multi-scale spectral reconstruction term (DDSP) towards the real note that G was given the
  conditioning of: on CPU it gets G to plausible spectra in minutes instead of hours, and the
  adversarial terms then sharpen what an L1 spectral loss blurs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vqsynth.train.generator import Generator, GeneratorConfig
from vqsynth.train.synth import synthesize

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def multiscale_spectral_loss(x, y, sizes=FFT_SIZES):
    loss = 0.0
    for n in sizes:
        w = torch.hann_window(n, device=x.device)
        X = torch.stft(x, n, n // 4, window=w, return_complex=True).abs()
        Y = torch.stft(y, n, n // 4, window=w, return_complex=True).abs()
        loss = loss + (X - Y).abs().mean() + (torch.log(X + 1e-5) - torch.log(Y + 1e-5)).abs().mean()
    return loss / len(sizes)


def stft_frames(audio, hop):
    """Log-magnitude STFT [B, bins, T] with one column per generator frame."""
    n = 4 * hop
    w = torch.hann_window(n, device=audio.device)
    X = torch.stft(audio, n, hop, window=w, return_complex=True, center=True).abs()
    T = audio.shape[1] // hop
    return torch.log(X[:, :, 1:T + 1] + 1e-4)


class LocalCritic(nn.Module):
    def __init__(self, bins, n_tokens, width=128):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(bins, width, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv1d(width, width, 3, padding=1), nn.LeakyReLU(0.2))
        self.score = nn.Conv1d(width, 1, 1)
        self.tokens = nn.Conv1d(width, n_tokens, 1)

    def forward(self, spec):
        h = self.body(spec)
        return self.score(h).squeeze(1), self.tokens(h)


class GlobalCritic(nn.Module):
    def __init__(self, bins, n_pitches, n_attrs, width=128):
        super().__init__()
        layers, c = [], bins
        for _ in range(4):
            layers += [nn.Conv1d(c, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = width
        self.body = nn.Sequential(*layers)
        self.score = nn.Linear(width, 1)
        self.pitch = nn.Linear(width, n_pitches)
        self.attrs = nn.Linear(width, n_attrs)

    def forward(self, spec):
        h = self.body(spec).mean(-1)
        return self.score(h).squeeze(1), self.pitch(h), self.attrs(h)


class InstrumentTable(nn.Module):
    """One diagonal Gaussian in z space per GM program: z = mu[p] + sigma[p] * eps."""

    def __init__(self, n_programs, z_size):
        super().__init__()
        self.mu = nn.Parameter(0.5 * torch.randn(n_programs, z_size))
        self.logvar = nn.Parameter(torch.full((n_programs, z_size), -2.0))

    def forward(self, program):
        mu, logvar = self.mu[program], self.logvar[program]
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(1).mean()
        return z, kl


def gradient_penalty(critic_score, real, fake):
    eps = torch.rand(real.shape[0], 1, 1)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad = torch.autograd.grad(critic_score(mix).sum(), mix, create_graph=True)[0]
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class GanTrainer:
    def __init__(self, cfg: GeneratorConfig, sample_rate, hop, n_timbre, lr=2e-4, spec_weight=1.0,
                 adv_weight=0.1, gp_weight=10.0, drift=1e-3, n_programs=0, kl_weight=0.01,
                 attr_judge=None, attr_weight=0.0):
        self.cfg, self.sr, self.hop = cfg, sample_rate, hop
        self.G = Generator(cfg)
        bins = 2 * hop + 1
        self.local = LocalCritic(bins, cfg.n_tokens)
        self.glob = GlobalCritic(bins, cfg.pitch_hi - cfg.pitch_lo + 1, n_timbre)
        self.n_timbre = n_timbre
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.5, 0.9))
        self.opt_d = torch.optim.Adam(list(self.local.parameters()) + list(self.glob.parameters()),
                                      lr=lr, betas=(0.5, 0.9))
        self.spec_weight, self.adv_weight, self.gp_weight, self.drift = spec_weight, adv_weight, gp_weight, drift
        self.instruments = InstrumentTable(n_programs, cfg.z_size) if n_programs else None
        if self.instruments is not None:
            self.opt_z = torch.optim.Adam(self.instruments.parameters(), lr=1e-3)
        self.kl_weight, self.attr_weight = kl_weight, attr_weight
        self.attr_judge = attr_judge
        if attr_judge is not None:
            attr_judge.eval().requires_grad_(False)

    def modules(self):
        out = {"G": self.G, "local": self.local, "global": self.glob, "opt_g": self.opt_g, "opt_d": self.opt_d}
        if self.instruments is not None:
            out.update(instruments=self.instruments, opt_z=self.opt_z)
        return out

    def generate(self, batch):
        """G's notes for the batch's conditions, and the KL of their z (0 without a table)."""
        B = batch["pitch"].shape[0]
        if self.instruments is not None:
            z, kl = self.instruments(batch["program"])
        else:
            z, kl = torch.randn(B, self.cfg.z_size), torch.zeros(())
        frames, _ = self.G(z, batch["pitch"], batch["attrs"], batch["tokens"], self.G.initial_state(B))
        f0 = 440.0 * 2.0 ** ((batch["pitch"] - 69.0) / 12.0)
        f0 = f0[:, None].expand(-1, frames.shape[1])
        return synthesize(frames, f0, self.cfg.n_harmonics, self.hop, self.sr, self.sr / 2), kl

    def _aux(self, spec, batch):
        _, tok_logits = self.local(spec)
        _, pitch_logits, attrs = self.glob(spec)
        T = min(tok_logits.shape[-1], batch["tokens"].shape[1])
        tok = nn.functional.cross_entropy(tok_logits[..., :T], batch["tokens"][:, :T])
        pitch = nn.functional.cross_entropy(pitch_logits, (batch["pitch"].long() - self.cfg.pitch_lo))
        attr = nn.functional.mse_loss(attrs, batch["attrs"][:, :self.n_timbre])
        return tok + pitch + attr, (tok, pitch, attr)

    def step(self, batch, adversarial=True, train_g_adversarially=True):
        real = batch["audio"]
        fake, kl = self.generate(batch)
        logs = {}
        if adversarial:
            rs, fs = stft_frames(real, self.hop), stft_frames(fake.detach(), self.hop)
            score_real = self.local(rs)[0].mean(-1) + self.glob(rs)[0]  # [B]
            d_real = score_real.mean()
            d_fake = self.local(fs)[0].mean() + self.glob(fs)[0].mean()
            gp = gradient_penalty(lambda s: self.local(s)[0].mean(-1) + self.glob(s)[0], rs, fs)
            aux_real, (tok, pitch, attr) = self._aux(rs, batch)
            loss_d = d_fake - d_real + self.gp_weight * gp + aux_real + self.drift * (score_real ** 2).mean()
            self.opt_d.zero_grad()
            loss_d.backward()
            self.opt_d.step()
            logs.update(wasserstein=(d_real - d_fake).item(), gp=gp.item(), d_token_ce=tok.item(),
                        d_pitch_ce=pitch.item(), d_attr_mse=attr.item())
        spec = multiscale_spectral_loss(fake, real)
        loss_g = self.spec_weight * spec + self.kl_weight * kl
        if self.instruments is not None:
            logs["kl"] = kl.item()
        if self.attr_judge is not None and self.attr_weight > 0:
            attr_err = nn.functional.mse_loss(self.attr_judge(fake[:, :self.sr]), batch["attrs"][:, :self.n_timbre])
            loss_g = loss_g + self.attr_weight * attr_err
            logs["g_attr_judge_mse"] = attr_err.item()
        if adversarial and train_g_adversarially:
            fs = stft_frames(fake, self.hop)
            adv = -(self.local(fs)[0].mean() + self.glob(fs)[0].mean())
            aux_fake, (tok, pitch, attr) = self._aux(fs, batch)
            loss_g = loss_g + self.adv_weight * (adv + aux_fake)
            logs.update(g_adv=adv.item(), g_token_ce=tok.item(), g_pitch_ce=pitch.item(), g_attr_mse=attr.item())
        self.opt_g.zero_grad()
        if self.instruments is not None:
            self.opt_z.zero_grad()
        loss_g.backward()
        nn.utils.clip_grad_norm_(self.G.parameters(), 5.0)
        self.opt_g.step()
        if self.instruments is not None:
            self.opt_z.step()
        logs["spectral"] = spec.item()
        return logs


def train_gan(sample_batch, run_dir, cfg: GeneratorConfig, sample_rate, hop, n_timbre, steps=5000,
              batch=8, warmup=500, log_every=20, max_minutes=None, adv_weight=0.1, drift=1e-3,
              critic_warmup=0, lr=2e-4, init_from=None, **options):
    """sample_batch(batch, rng) -> dict of tensors (audio, pitch, attrs, tokens, program). Resumable;
    stops early (and saves) after max_minutes of this session's wall time. Spectral-only until
    `warmup`, then the critics alone for `critic_warmup` steps, then both. A new run can start
    from another run's checkpoint (`init_from`): the parts both have, and its step count.
    `options`: n_programs, kl_weight, attr_judge, attr_weight (GanTrainer)."""
    import time
    from pathlib import Path

    started = time.time()
    from vqsynth.train.run import Run

    trainer = GanTrainer(cfg, sample_rate, hop, n_timbre, lr=lr, adv_weight=adv_weight, drift=drift, **options)
    fresh = not (Path(run_dir) / "checkpoint.pt").exists()
    run = Run(run_dir, trainer.modules(), every=100)
    if fresh and init_from is not None:
        state = torch.load(Path(init_from) / "checkpoint.pt", map_location="cpu", weights_only=False)
        loaded = [name for name in trainer.modules() if name in state]
        for name in loaded:
            trainer.modules()[name].load_state_dict(state[name])
        run.step, run.elapsed_before = state["step"], state.get("elapsed", 0.0)  # the model's whole history
        run.log_line({"event": "initialised", "from": str(init_from), "step": run.step, "parts": loaded})
    rng = np.random.default_rng(run.step + 1)
    acc = {}
    while run.step < steps:
        if max_minutes is not None and time.time() - started > 60 * max_minutes:
            run.log_line({"event": "time budget reached", "step": run.step})
            break
        logs = trainer.step(sample_batch(batch, rng), adversarial=run.step >= warmup,
                            train_g_adversarially=run.step >= warmup + critic_warmup)
        for k, v in logs.items():
            acc.setdefault(k, []).append(v)
        run.step += 1
        if run.step % log_every == 0:
            run.log(**{k: float(np.mean(v)) for k, v in acc.items()})
            acc = {}
        run.maybe_save()
    run.save()
    return trainer.G
