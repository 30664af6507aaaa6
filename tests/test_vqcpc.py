"""VQCPC encoder and token prior: the exported encoder is the trained one, and the tokens of the
shipped model mean what they should (a change at the onset and at the release, silence tokens
only where it is silent; the shipped prior holds for a minute and ends silent)."""

import numpy as np
import pytest

from vqsynth.model.folder import load_model, resolve_model


def _structured_audio(sr, seconds, seed):
    """Notes, chirps, noise bursts and silence: inputs that spread over many codes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f = 110 * 2 ** (3 * t / seconds)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr) * (np.sin(2 * np.pi * 1.5 * t) > -0.3)
    x += 0.05 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 0.7 * t) > 0.5)
    return x.astype(np.float32)


def test_encoder_onnx_matches_torch(tmp_path):
    import onnxruntime as ort
    import torch

    from vqsynth.train.export import export_encoder
    from vqsynth.train.vqcpc import Encoder

    sr, hop = 16000, 160
    torch.manual_seed(3)
    enc = Encoder(sr, hop).eval()
    audio = np.stack([_structured_audio(sr, 3.0, seed) for seed in (0, 1)])
    with torch.no_grad():  # codes drawn from the latents themselves, so most of them are used
        frames = enc.latent(torch.from_numpy(audio)).transpose(1, 2).reshape(-1, enc.vq.codebook.shape[1])
        enc.vq.codebook.copy_(frames[torch.randperm(frames.shape[0])[:enc.vq.codebook.shape[0]]])
    export_encoder(enc, tmp_path / "encoder.onnx", sr)
    session = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = enc(torch.from_numpy(audio)).numpy()
        latent = enc.latent(torch.from_numpy(audio))
        dist = (latent.transpose(1, 2).unsqueeze(2) - enc.vq.codebook).pow(2).sum(-1).sort(-1).values
    got = session.run(None, {"audio": audio})[0]
    assert got.shape == ref.shape == (2, audio.shape[1] // hop)
    assert len(np.unique(ref)) > 3  # the comparison covers several codes, not one
    # equal wherever the nearest code is not a near-tie (float rounding may pick either there)
    clear = (dist[..., 1] - dist[..., 0]).numpy() > 1e-4 * dist[..., 1].numpy()
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(got[clear], ref[clear])


@pytest.fixture(scope="module")
def shipped():
    return load_model(resolve_model(None))


def test_shipped_encoder_changes_token_at_onset_and_release(shipped):
    """A synthetic note with a known envelope: silence, a 10 ms attack at 0.5 s, a hold, a 50 ms
    release at 2.0 s, silence. The CQT's longest kernels (4096 samples) are centred, so the
    encoder sees an onset up to ~13 frames early; a change must fall inside that window."""
    sr, hop = shipped.sample_rate, shipped.hop
    t = np.arange(3 * sr) / sr
    env = np.clip((t - 0.5) / 0.01, 0, 1) * np.clip(1 - (t - 2.0) / 0.05, 0, 1)
    for f0 in (110.0, 440.0):
        x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8)) * env * 0.3
        tokens = shipped.encode(x.astype(np.float32))
        silent = shipped.prior.silence[tokens]
        onset, release = int(0.5 * sr / hop), int(2.05 * sr / hop)
        assert silent[:onset - 14].all() and silent[release + 14:].all(), tokens.tolist()
        assert not silent[onset + 3:release - 14].any(), tokens.tolist()
        first_sound = int(np.flatnonzero(~silent)[0])
        last_sound = int(np.flatnonzero(~silent)[-1])
        assert onset - 14 <= first_sound <= onset + 2, (f0, first_sound)
        assert release - 14 <= last_sound <= release + 10, (f0, last_sound)


def test_shipped_prior_holds_a_minute_and_ends_silent(shipped):
    prior = shipped.prior
    frames_per_minute = int(60 * shipped.sample_rate / shipped.hop)
    for velocity, seed in ((40, 1), (100, 2), (127, 3)):
        w = prior.note(velocity, seed=seed)
        held = np.array([w.next() for _ in range(frames_per_minute)])
        w.release()
        after = np.array([w.next() for _ in range(prior.release_frames + 50)])
        assert not prior.silence[held[prior.attack_frames:]].any(), "silence before the release"
        assert len(set(held[-2000:].tolist())) > 1, "the hold is stuck on one token"
        assert prior.silence[after[-20:]].all() and w.done


def test_probe_phase_labels_follow_a_known_envelope():
    from vqsynth.train.probes import frame_levels, phase_labels, window_indices

    sr, hop = 16000, 160
    t = np.arange(4 * sr) / sr
    env = np.clip((t - 0.5) / 0.1, 0, 1) * np.where(t < 1.0, 1.0, np.exp(-(t - 1.0) * 2)) \
        * np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) * 40))
    x = (np.sin(2 * np.pi * 220 * t) * env)[None]
    labels = phase_labels(frame_levels(x, hop), note_off_frame=300)[0]
    assert (labels[:45] == 0).all()  # silence before the onset
    assert (labels[55:60] == 1).all()  # the 100-ms rise is the attack
    # the release: 60 dB under the peak ~70 ms after the note-off (the hold had decayed 35 dB by then)
    assert (labels[110:300] == 2).all() and (labels[300:306] == 3).all() and (labels[310:] == 0).all()
    ids = window_indices(np.array([[3, 5]]), radius=1, n_tokens=16)
    assert ids.tolist() == [[48, 16 + 3, 32 + 5], [3, 16 + 5, 48]]  # padding id 48 beyond the ends
