"""How well the follow part follows: FluidSynth phrases (violin, flute: vibrato and glides) and
a sung and a spoken one (espeak-ng, where installed) played into `vqsynth render --input-file`, measured with
librosa (pYIN for f0, RMS at 10 ms frames), not with the follower's own tracker.

    .venv/bin/python perf/follow.py [--model NAME] [--json OUT]

Per phrase: the share of the input's voiced frames where the output's f0 is within 50 cents of
the input's (the issue's target: >= 90 %), the correlation of the two RMS envelopes in dB above
-60 (target >= 0.8) and the output's level where the input is silent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SR = 48000
HOP = 480  # 10 ms
PRESETS = {"violin": "violin", "flute": "flute", "sung": "choir-aahs", "spoken": "choir-aahs"}  # the follow part's instrument
NOTES = [(67, 0.3, 0.9), (69, 1.0, 1.5), (71, 1.6, 2.4), (74, 2.7, 3.6), (72, 3.9, 4.6)]


# a sung "la" line: (syllable, espeak-ng pitch 0-99 on the en+f3 voice, i.e. ~113-306 Hz, seconds)
SUNG = [("laa", 20, 0.9), ("lii", 40, 0.6), ("laa", 60, 0.9), ("loo", 40, 0.6), ("maa", 80, 1.2),
        ("laa", 60, 0.6), ("naa", 20, 1.0)]


def sing(espeak: str, folder: Path) -> np.ndarray:
    """A sung phrase at SR from espeak-ng, which only speaks: each syllable is said on one held pitch
    (SSML range 0%, slow rate), trimmed to its sound and cut to its length, then given a singer's
    vibrato (5.5 Hz, +-30 cents, after 200 ms) by a time-varying resampling, and joined with 30 ms
    between syllables (the consonant of the next one)."""
    import soundfile as sf
    import soxr

    out = []
    for k, (syllable, pitch, seconds) in enumerate(SUNG):
        wav = folder / f"syllable{k}.wav"
        ssml = f'<speak><prosody range="0%" rate="25%">{syllable}</prosody></speak>'
        subprocess.run([espeak, "-v", "en+f3", "-p", str(pitch), "-m", "-w", str(wav), ssml], check=True,
                       capture_output=True)
        y, sr = sf.read(wav, dtype="float64")
        y = soxr.resample(y, sr, SR)
        loud = np.flatnonzero(np.abs(y) > 0.01 * np.abs(y).max())
        y = y[loud[0]:loud[-1]][:int(seconds * SR)]
        t = np.arange(y.size) / SR
        depth = 30 / 1200 * np.clip((t - 0.2) / 0.2, 0, 1)  # vibrato grows in over 200 ms
        rate = 2 ** (depth * np.sin(2 * np.pi * 5.5 * t))
        read = np.cumsum(rate) - rate[0]
        y = np.interp(read[read < y.size - 1], np.arange(y.size), y)
        fade = np.minimum(1, np.minimum(np.arange(y.size), np.arange(y.size)[::-1]) / (0.01 * SR))
        out += [y * fade, np.zeros(int(0.03 * SR))]
    y = np.concatenate([np.zeros(int(0.2 * SR))] + out + [np.zeros(int(0.3 * SR))])
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def phrases(folder: Path) -> dict[str, Path]:
    """The input phrases, written to `folder`: FluidSynth violin and flute; where espeak-ng is
    installed, a sung line and (harder: speech glides 3 semitones in 100 ms) a spoken one."""
    import soundfile as sf

    from vqsynth.data.cli import DEFAULT_SOUNDFONT
    from vqsynth.data.render import Renderer

    out = {}
    with Renderer(DEFAULT_SOUNDFONT, SR) as r:
        for name, program in (("violin", 40), ("flute", 73)):
            out[name] = folder / f"{name}.wav"
            sf.write(out[name], r.phrase(program, NOTES, 5.0), SR)
    espeak = shutil.which("espeak-ng")
    if espeak:
        out["sung"] = folder / "sung.wav"
        sf.write(out["sung"], sing(espeak, folder), SR)
        out["spoken"] = folder / "spoken.wav"
        # espeak-ng speaking slowly, vowels drawn out: a voice with its own pitch contour
        subprocess.run([espeak, "-w", str(out["spoken"]), "-p", "40", "-s", "90", "laaa laa laaaa, la li lo"],
                       check=True, capture_output=True)
    return out


def f0_track(y, sr):
    import librosa

    f0, voiced, _ = librosa.pyin(y, fmin=60, fmax=1600, sr=sr, frame_length=2048, hop_length=HOP)
    return np.where(voiced, f0, np.nan)


def rms_db(y):
    import librosa

    return 20 * np.log10(librosa.feature.rms(y=y, frame_length=2 * HOP, hop_length=HOP)[0] + 1e-9)


def measure(inp, out):
    n = min(inp.size, out.size)
    inp, out = inp[:n], out[:n]
    fi, fo = f0_track(inp, SR), f0_track(out, SR)
    voiced = np.isfinite(fi)
    cents = 1200 * np.abs(np.log2(fo[voiced] / fi[voiced]))
    within = float(np.mean(np.nan_to_num(cents, nan=1e9) <= 50)) if voiced.any() else float("nan")
    li, lo = rms_db(inp), rms_db(out)
    m = min(li.size, lo.size)
    li, lo = np.maximum(li[:m], -60), np.maximum(lo[:m], -60)
    loud = li > -60
    corr = float(np.corrcoef(li, lo)[0, 1])
    silent = ~loud
    return {"pitch_within_50_cents": round(within, 3), "voiced_frames": int(voiced.sum()),
            "median_cents_off": round(float(np.nanmedian(cents)), 1) if voiced.any() else None,
            "envelope_corr_db": round(corr, 3),
            "output_db_where_input_silent": round(float(np.median(lo[silent])), 1) if silent.any() else None}


def main(argv=None):
    import soundfile as sf

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, path in phrases(tmp).items():
            out = tmp / f"{name}-out.wav"
            cmd = [sys.executable, "-m", "vqsynth", "render", "--input-file", str(path), "-o", str(out),
                   "--tail", "0.5", "--sample-rate", str(SR), "--follow-preset", PRESETS[name]] + \
                (["--model", args.model] if args.model else [])
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode:
                sys.exit(run.stderr)
            y_in, sr_in = sf.read(path, dtype="float32")
            if sr_in != SR:
                import soxr

                y_in = soxr.resample(y_in, sr_in, SR)
            y_out = sf.read(out, dtype="float32")[0].mean(axis=1)
            results[name] = measure(y_in, y_out) | {"render": run.stdout.strip().splitlines()[-1]}
            print(name, json.dumps(results[name]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
