"""perf/compare_heads.py measures the cost of the STFT heads with a streaming numpy synthesis: it
must render what the torch version trained on renders, and the causal overlap-add must be able to
reproduce any sound (otherwise the comparison would be unfair to those heads)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "perf"))
import compare_heads  # noqa: E402

HOP, N_FFT = 16, 64
BINS = N_FFT // 2 + 1


def torch_audio(kind, out):
    window = torch.hann_window(N_FFT, periodic=True)
    spec = compare_heads.spectra(kind, torch.from_numpy(out), BINS, HOP, N_FFT)
    return compare_heads.overlap_add(torch.fft.irfft(spec, n=N_FFT) * window, HOP).numpy()


@pytest.mark.parametrize("kind", ["stft", "magif"])
def test_streaming_numpy_synthesis_matches_the_trained_one(kind):
    rng = np.random.default_rng(1)
    out = rng.standard_normal((2, 12, 2 * BINS)).astype(np.float32)
    stream = compare_heads.SpectralStream(kind, 2, HOP, N_FFT)
    chunked = np.concatenate([stream.render(out[:, :5]), stream.render(out[:, 5:])], axis=1)
    np.testing.assert_allclose(chunked, torch_audio(kind, out), atol=1e-4)


def test_overlap_add_is_causal_and_reconstructs_a_signal():
    rng = np.random.default_rng(2)
    T = 20
    x = rng.standard_normal(T * HOP).astype(np.float32)
    window = np.hanning(N_FFT + 1)[:-1]
    padded = np.concatenate([x, np.zeros(N_FFT)])
    # grain t analyses the n_fft samples from the start of hop t on
    grains = np.stack([padded[t * HOP:t * HOP + N_FFT] * window for t in range(T)])[None]
    y = compare_heads.overlap_add(torch.from_numpy(grains * window / 1.5).float(), HOP).numpy()[0]
    # Hann^2 at 75 % overlap sums to 1.5 wherever four grains overlap (after the first three hops)
    np.testing.assert_allclose(y[3 * HOP:], x[3 * HOP:], atol=1e-4)
    grains[0, 10:] = 0.0  # frames from t = 10 on change nothing before sample 10 * HOP
    y2 = compare_heads.overlap_add(torch.from_numpy(grains * window / 1.5).float(), HOP).numpy()[0]
    np.testing.assert_allclose(y2[:10 * HOP], y[:10 * HOP], atol=1e-6)
