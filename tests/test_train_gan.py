"""The GAN trainer's phases and its drift penalty, on a tiny generator (seconds on a CPU)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vqsynth.train.gan import GanTrainer, stft_frames  # noqa: E402
from vqsynth.train.generator import GeneratorConfig  # noqa: E402

SR, HOP = 8000, 80


def _trainer(**kw):
    torch.manual_seed(0)
    cfg = GeneratorConfig(n_attrs=23, channels=16, n_layers=2, n_harmonics=8, n_noise=4)
    return GanTrainer(cfg, SR, HOP, n_timbre=7, **kw)


def _batch(B=2, frames=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames * HOP) / SR
    pitch = torch.tensor([60.0, 67.0][:B])
    f0 = 440 * 2 ** ((pitch - 69) / 12)
    audio = 0.3 * torch.sin(2 * np.pi * f0[:, None] * t) * torch.linspace(1, 0.2, t.numel())
    return {"audio": audio, "pitch": pitch, "attrs": torch.rand(B, 23, generator=g),
            "tokens": torch.randint(0, 16, (B, frames), generator=g)}


def test_spectral_phase_then_critics_alone_then_both():
    tr, batch = _trainer(), _batch()
    logs = tr.step(batch, adversarial=False)
    assert set(logs) == {"spectral"}
    before = [p.detach().clone() for p in tr.G.parameters()]
    logs = tr.step(batch, adversarial=True, train_g_adversarially=False)  # the critics' warm-up
    assert "wasserstein" in logs and "g_adv" not in logs
    assert any((p - q).abs().max() > 0 for p, q in zip(tr.G.parameters(), before))  # G still learns (spectral)
    logs = tr.step(batch, adversarial=True)
    assert {"g_adv", "g_token_ce", "g_pitch_ce", "g_attr_mse"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values())


def test_drift_penalty_keeps_the_critic_scores_near_zero():
    """Critics trained alone on the same real and fake: the drift term bounds their scores."""
    def scores(drift):
        tr, batch = _trainer(drift=drift, lr=1e-3), _batch()
        for _ in range(20):
            tr.step(batch, adversarial=True, train_g_adversarially=False)
        with torch.no_grad():
            rs = stft_frames(batch["audio"], HOP)
            return float((tr.local(rs)[0].mean(-1) + tr.glob(rs)[0]).abs().mean())
    free, held = scores(0.0), scores(1.0)
    assert held < 0.5 * free, (held, free)
