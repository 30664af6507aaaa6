"""The torch DSP head used in training renders the same samples as the numpy one used live."""

import numpy as np
import pytest

import torch  # noqa: E402

from vqsynth.model.dsp import VoiceSynth  # noqa: E402
from vqsynth.train.synth import synthesize  # noqa: E402


@pytest.mark.parametrize("sr, hop", [(16000, 160), (48000, 480)])
def test_torch_twin_matches_numpy(sr, hop):
    rng = np.random.default_rng(0)
    V, T, H, Nb = 3, 9, 24, 8
    frames = rng.random((V, T, 1 + H + Nb)).astype(np.float32)
    frames[..., 1:1 + H] /= frames[..., 1:1 + H].sum(-1, keepdims=True)
    f0 = np.stack([np.linspace(110, 130, T), np.full(T, 440.0), np.linspace(900, 700, T)])
    live = VoiceSynth(V, H, Nb, sr, hop, 8000.0, seed=4)
    live.reset(np.arange(V), f0[:, 0])
    expected = live.render(np.arange(V), frames, f0)
    voice_rngs = [np.random.default_rng((4, v)) for v in range(V)]  # each voice's own noise, as live
    white = np.stack([np.stack([r.standard_normal(2 * hop, dtype=np.float32) for r in voice_rngs])
                      for _ in range(T)], axis=1)
    got = synthesize(torch.from_numpy(frames), torch.from_numpy(f0), H, hop, sr, 8000.0,
                     white=torch.from_numpy(white)).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-3)
