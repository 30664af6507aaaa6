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


def _two_instruments(frames=20):
    """One pitch, one set of attributes and tokens, two programs with different spectra: only z
    can tell G which one to make."""
    t = torch.arange(frames * HOP) / SR
    f0 = 440 * 2 ** ((60 - 69) / 12)
    pure = 0.3 * torch.sin(2 * np.pi * f0 * t)
    rich = 0.3 * sum(torch.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 9))
    return {"audio": torch.stack([pure, rich]), "pitch": torch.tensor([60.0, 60.0]),
            "attrs": torch.full((2, 23), 0.5), "tokens": torch.full((2, frames), 3, dtype=torch.long),
            "program": torch.tensor([73, 81])}


def test_instrument_z_lets_g_tell_programs_apart():
    """With z drawn from its note's program G can fit both notes; with z ~ N(0, I) it can only
    make their average (the reason model 1.1 ignored z)."""
    def final_loss(**kw):
        tr, batch = _trainer(lr=3e-3, **kw), _two_instruments()
        for _ in range(150):
            logs = tr.step(batch, adversarial=False)
        return logs["spectral"], logs
    tied, logs = final_loss(n_programs=128, kl_weight=1e-3)
    free, _ = final_loss()
    assert "kl" in logs and np.isfinite(logs["kl"])
    assert tied < 0.8 * free, (tied, free)


def test_attribute_regressor_term_steers_g():
    """A regressor taught that a pure tone scores 0.1 and a rich one 0.9 pulls G, asked for 0.9
    and given no spectral target, towards what it scores 0.9."""
    from vqsynth.train.classifier import AttributeRegressor

    torch.manual_seed(1)
    judge = AttributeRegressor(SR)
    tones = _two_instruments(frames=100)["audio"]  # 1 s each: pure, rich
    opt = torch.optim.Adam(judge.parameters(), lr=3e-3)
    for _ in range(40):
        loss = torch.nn.functional.mse_loss(judge(tones), torch.tensor([[0.1] * 7, [0.9] * 7]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    tr, batch = _trainer(lr=3e-3, attr_judge=judge, attr_weight=1.0), _batch(frames=100)
    batch["attrs"][:, :7] = 0.9
    tr.spec_weight = 0.0  # the attribute term alone
    first = tr.step(batch, adversarial=False)["g_attr_judge_mse"]
    for _ in range(30):
        last = tr.step(batch, adversarial=False)["g_attr_judge_mse"]
    assert last < 0.5 * first, (first, last)
    assert not any(p.requires_grad for p in judge.parameters())  # frozen: only G learns


def test_a_new_run_starts_from_another_runs_checkpoint(tmp_path):
    from vqsynth.train.gan import train_gan

    cfg = GeneratorConfig(n_attrs=23, channels=16, n_layers=2, n_harmonics=8, n_noise=4)
    batch = _two_instruments()
    sample = lambda b, rng: batch  # noqa: E731
    base = train_gan(sample, tmp_path / "a", cfg, SR, HOP, 7, steps=3, batch=2, warmup=10)
    grown = train_gan(sample, tmp_path / "b", cfg, SR, HOP, 7, steps=4, batch=2, warmup=10,
                      init_from=tmp_path / "a", n_programs=128)
    log = (tmp_path / "b" / "log.jsonl").read_text()
    assert '"event": "initialised"' in log and '"step": 3' in log and "instruments" not in log.split("parts")[1][:80]
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 4 and "instruments" in state
    assert any((p - q).abs().max() > 0 for p, q in zip(base.parameters(), grown.parameters()))  # one step more
