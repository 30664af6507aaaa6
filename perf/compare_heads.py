"""Which output representation for G: quality per CPU cost, measured side by side (the GAN issue).

The same causal trunk (vqsynth.train.generator.Generator: static condition by FiLM, one VQCPC
token per frame, six dilated causal blocks) is trained from scratch for the same wall time, on the
same notes, batches and seed, with the same multi-scale spectral loss, ending in one of three heads:

- dsp   (shipped): per frame an amplitude, a 64-harmonic distribution and 32 noise bands,
        synthesised at any sample rate (vqsynth.train.synth in training, vqsynth.model.dsp live):
        pitch bend is exact and no resampler sits in the live path;
- stft: the complex STFT of each frame (n_fft = 4 hops, real and imaginary part per bin; the
        thesis's best representation for tonal sounds), inverse FFT, Hann window, causal overlap-add;
- magif: log magnitude and instantaneous frequency per bin (GANSynth); the phase accumulates the
        IF frame by frame, then as stft.

Quality, on notes of held-out programs (the corpus's valid split): the multi-scale spectral
distance to the real note (the training loss, L1 of magnitudes and log magnitudes over six FFT
sizes) and pitch within 50 cents (pYIN). Cost per voice on one thread, as the render thread runs
it: trunk and head in onnxruntime (32 voices batched, 10-frame chunks) plus the synthesis in numpy
to 48 kHz (the STFT heads synthesise at the model rate and go through soxr; the DSP head
synthesises at 48 kHz directly). The machine must be otherwise idle.

    .venv/bin/vqsynth data build --out corpus-heads --subset tonal --velocities 100 --pitches 21,24,...,108
    .venv/bin/python perf/compare_heads.py --corpus corpus-heads --minutes 8 --json perf/results/heads.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soxr
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vqsynth.eval.metrics import pitch_accuracy, track_pitch  # noqa: E402
from vqsynth.model.constants import FAMILIES  # noqa: E402
from vqsynth.model.dsp import VoiceSynth, midi_to_hz  # noqa: E402
from vqsynth.model.folder import _session, load_model  # noqa: E402
from vqsynth.train.export import export_generator  # noqa: E402
from vqsynth.train.gan import multiscale_spectral_loss  # noqa: E402
from vqsynth.train.generator import Generator, GeneratorConfig  # noqa: E402
from vqsynth.train.pipeline import Notes  # noqa: E402
from vqsynth.train.synth import synthesize  # noqa: E402

HEADS = ("dsp", "stft", "magif")
DEVICE_RATE = 48000


class SpectralHead(nn.Module):
    """The trunk of a Generator with an STFT-frame head instead of the DSP one."""

    def __init__(self, cfg: GeneratorConfig, bins: int):
        super().__init__()
        self.cfg = cfg
        self.g = Generator(cfg)
        self.g.head = nn.Identity()  # unused: this module's own head replaces it
        self.head = nn.Conv1d(cfg.channels, 2 * bins, 1)

    def initial_state(self, batch):
        return self.g.initial_state(batch)

    def forward(self, z, pitch, attrs, tokens, state):
        x, next_state = self.g.trunk(z, pitch, attrs, tokens, state)
        return self.head(x).transpose(1, 2), next_state


class SpectralStream:
    """The STFT heads' synthesis in numpy, chunk by chunk with carried phase and overlap-add tail:
    what a live engine would run (tests/test_compare_heads.py holds it to the torch version)."""

    def __init__(self, kind, voices, hop, n_fft):
        self.kind, self.hop, self.n_fft, self.bins = kind, hop, n_fft, n_fft // 2 + 1
        self.window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
        self.tail = np.zeros((voices, n_fft - hop), np.float32)
        self.phase = np.zeros((voices, self.bins))

    def render(self, frames):
        """Head output [B,T,2*bins] -> audio [B,T*hop] at the model rate."""
        B, T, _ = frames.shape
        hop, n_fft, bins = self.hop, self.n_fft, self.bins
        a, b = frames[..., :bins].astype(np.float64), frames[..., bins:].astype(np.float64)
        if self.kind == "stft":
            spec = (a + 1j * b) * 0.1
        else:
            k = np.arange(bins)
            advance = np.mod(2 * np.pi * k * hop / n_fft + np.pi * np.tanh(b), 2 * np.pi)
            phase = self.phase[:, None] + np.cumsum(advance, axis=1)
            spec = np.exp(a - 4.0) * np.exp(1j * phase)
            self.phase = np.mod(phase[:, -1], 2 * np.pi)
        grains = np.fft.irfft(spec, n=n_fft, axis=-1).astype(np.float32) * self.window
        out = np.zeros((B, T * hop + n_fft - hop), np.float32)
        out[:, :n_fft - hop] = self.tail
        for t in range(T):
            out[:, t * hop:t * hop + n_fft] += grains[:, t]
        self.tail = out[:, T * hop:].copy()
        return out[:, :T * hop]


def overlap_add(grains, hop):
    """grains [B,T,n_fft] -> audio [B,T*hop]; grain t starts at the first sample of hop t, so hop t
    is complete once frame t is known (causal; what spills past the end is the stream's tail)."""
    B, T, n_fft = grains.shape
    out = nn.functional.fold(grains.transpose(1, 2), output_size=(1, (T - 1) * hop + n_fft),
                             kernel_size=(1, n_fft), stride=(1, hop)).reshape(B, -1)
    return out[:, :T * hop]


def spectra(kind, out, bins, hop, n_fft):
    """Head output [B,T,2*bins] -> complex spectra [B,T,bins] (stft: re/im; magif: log-mag/IF)."""
    a, b = out[..., :bins], out[..., bins:]
    if kind == "stft":
        return torch.complex(a, b) * 0.1
    mag = torch.exp(a - 4.0)
    k = torch.arange(bins, dtype=out.dtype)
    advance = 2 * math.pi * k * hop / n_fft + math.pi * torch.tanh(b)  # bin centre + deviation
    phase = torch.cumsum(torch.remainder(advance, 2 * math.pi), dim=1)
    return torch.polar(mag, phase)


def audio_of(kind, model, batch, cfg, hop, sr, n_fft):
    B = batch["pitch"].shape[0]
    out, _ = model(torch.zeros(B, cfg.z_size), batch["pitch"], batch["attrs"], batch["tokens"],
                   model.initial_state(B))
    if kind == "dsp":
        f0 = (440.0 * 2.0 ** ((batch["pitch"] - 69.0) / 12.0))[:, None].expand(-1, out.shape[1])
        return synthesize(out, f0, cfg.n_harmonics, hop, sr, sr / 2)
    window = torch.hann_window(n_fft, periodic=True)
    grains = torch.fft.irfft(spectra(kind, out, n_fft // 2 + 1, hop, n_fft), n=n_fft) * window
    return overlap_add(grains, hop)


def make_batches(notes: Notes, tokens, hop, seconds):
    T = int(seconds * notes.sample_rate / hop)
    onehot = np.eye(len(FAMILIES), dtype=np.float32)[notes.family]
    attrs = np.concatenate([notes.timbre, onehot], 1).astype(np.float32)

    def batch(rows):
        rows = np.asarray(rows)
        return {"audio": torch.from_numpy(notes.audio(rows)[:, :T * hop]),
                "pitch": torch.from_numpy(notes.pitch[rows].astype(np.float32)),
                "attrs": torch.from_numpy(attrs[rows]), "tokens": torch.from_numpy(tokens[rows, :T])}
    return batch


def encode(notes: Notes, model):
    """Tokens of every note through the shipped model's encoder (Model.encode)."""
    return np.stack([model.encode(notes.audio([i])[0]) for i in range(len(notes))]).astype(np.int64)


def train(kind, cfg, batch_of, n_train, minutes, hop, sr, n_fft, batch=8, seed=0, lr=5e-4):
    torch.manual_seed(seed)
    model = Generator(cfg) if kind == "dsp" else SpectralHead(cfg, n_fft // 2 + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    curve, steps, started = [], 0, time.process_time()
    while time.process_time() - started < 60 * minutes:  # CPU time: fair even if the machine is shared
        b = batch_of(rng.integers(0, n_train, batch))
        loss = multiscale_spectral_loss(audio_of(kind, model, b, cfg, hop, sr, n_fft), b["audio"])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        steps += 1
        curve.append(loss.item())
    return model.eval(), steps, curve


def quality(kind, model, cfg, batch_of, n_valid, hop, sr, n_fft, n_notes=48, n_pitch=16):
    rows = np.linspace(0, n_valid - 1, n_notes).astype(int)
    dists, acc = [], []
    with torch.no_grad():
        for i in range(0, n_notes, 8):
            b = batch_of(rows[i:i + 8])
            fake = audio_of(kind, model, b, cfg, hop, sr, n_fft)
            dists += [multiscale_spectral_loss(f[None], r[None]).item() for f, r in zip(fake, b["audio"])]
            for f, p in zip(fake.numpy(), b["pitch"].numpy()):
                if len(acc) < n_pitch and 36 <= p <= 96:
                    target = float(midi_to_hz(p))
                    acc.append(pitch_accuracy(*track_pitch(f[int(0.2 * sr):int(2.8 * sr)], sr, target), target)[0])
    return {"spectral_distance": float(np.mean(dists)), "spectral_distance_median": float(np.median(dists)),
            "pitch_within_50_cents": float(np.mean(acc)), "pitch_notes": len(acc)}


def cost(kind, model, cfg, hop, sr, n_fft, voices=32, chunk=10, seconds=3.0):
    """Core-seconds per voice per second of 48 kHz audio on one thread: model + synthesis."""
    B = voices
    args = (torch.zeros(B, cfg.z_size), torch.full((B,), 60.0), torch.rand(B, cfg.n_attrs),
            torch.randint(0, cfg.n_tokens, (B, chunk)), model.initial_state(B))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.onnx"
        export_generator(model, path)
        sess = _session(path, threads=1)
    feed = {k: v.numpy() for k, v in zip(["z", "pitch", "attrs", "tokens", "state"], args)}
    pitches = np.linspace(40, 80, B)

    def model_step():
        frames, state = sess.run(None, feed)
        feed["state"] = state
        return frames

    frames = model_step()
    if kind == "dsp":
        synth = VoiceSynth(B, cfg.n_harmonics, cfg.n_noise, DEVICE_RATE, hop * DEVICE_RATE // sr, sr / 2)
        slots = np.arange(B)
        synth.reset(slots, midi_to_hz(pitches))
        f0 = np.repeat(midi_to_hz(pitches)[:, None], chunk, 1)

        def synth_step(fr):
            return synth.render(slots, fr, f0)
    else:
        stream = SpectralStream(kind, B, hop, n_fft)
        resampler = soxr.ResampleStream(sr, DEVICE_RATE, B, dtype="float32", quality="HQ")

        def synth_step(fr):
            return resampler.resample_chunk(stream.render(fr).T)

    def timed(fn, arg=None):
        n, t0 = 0, time.process_time()
        while time.process_time() - t0 < seconds:
            fn() if arg is None else fn(arg)
            n += 1
        return (time.process_time() - t0) / n

    audio_s = chunk * hop / sr  # seconds of audio per call
    t_model, t_synth = timed(model_step), timed(synth_step, frames)
    per_voice = lambda t: t / (B * audio_s)  # noqa: E731
    return {"model_core_s_per_voice_s": per_voice(t_model), "synth_core_s_per_voice_s": per_voice(t_synth),
            "total_core_s_per_voice_s": per_voice(t_model + t_synth),
            "voices_per_core": 1.0 / per_voice(t_model + t_synth),
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="corpus-heads")
    ap.add_argument("--model", default=str(ROOT / "models/vqsynth-gm"), help="whose encoder makes the tokens")
    ap.add_argument("--minutes", type=float, default=8.0, help="CPU minutes of training per head")
    ap.add_argument("--heads", default=",".join(HEADS))
    ap.add_argument("--seconds", type=float, default=4.0, help="length of the training notes")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    train_notes, valid_notes = Notes(args.corpus, "train"), Notes(args.corpus, "valid")
    sr, hop = train_notes.sample_rate, train_notes.sample_rate // 100
    n_fft = 4 * hop
    cfg = GeneratorConfig()
    t0 = time.time()
    shipped = load_model(args.model)
    train_batch = make_batches(train_notes, encode(train_notes, shipped), hop, args.seconds)
    valid_batch = make_batches(valid_notes, encode(valid_notes, shipped), hop, args.seconds)
    print(f"{len(train_notes)} train / {len(valid_notes)} valid notes encoded in {time.time() - t0:.0f} s", flush=True)
    results = {"corpus": args.corpus, "train_notes": len(train_notes), "valid_notes": len(valid_notes),
               "minutes_per_head": args.minutes, "heads": {}}
    for kind in args.heads.split(","):
        model, steps, curve = train(kind, cfg, train_batch, len(train_notes), args.minutes, hop, sr, n_fft)
        r = {"steps": steps, "train_loss_first_20": float(np.mean(curve[:20])),
             "train_loss_last_20": float(np.mean(curve[-20:]))}
        r.update(quality(kind, model, cfg, valid_batch, len(valid_notes), hop, sr, n_fft))
        r.update(cost(kind, model, cfg, hop, sr, n_fft))
        results["heads"][kind] = r
        print(kind, json.dumps(r), flush=True)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(results, indent=2))
    print("\n| head | steps | train loss first/last 20 | held-out spectral distance | pitch within 50 c "
          "| core-s per voice-s (model + synth) | voices per core |")
    print("|---|---|---|---|---|---|---|")
    for kind, r in results["heads"].items():
        print(f"| {kind} | {r['steps']} | {r['train_loss_first_20']:.2f} / {r['train_loss_last_20']:.2f} "
              f"| {r['spectral_distance']:.3f} | {100 * r['pitch_within_50_cents']:.0f} % "
              f"| {r['model_core_s_per_voice_s']:.4f} + {r['synth_core_s_per_voice_s']:.4f} "
              f"| {r['voices_per_core']:.0f} |")


if __name__ == "__main__":
    main()
