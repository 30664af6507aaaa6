"""Start-up time: process start -> "ready" (model loaded, warmed up, attack cache filled), and
-> first sound of a note sent over OSC the moment it is ready (found in a --record WAV).

    .venv/bin/python perf/startup.py [--model NAME] [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from pythonosc.udp_client import SimpleUDPClient


def once(model):
    wav = Path(tempfile.mkdtemp()) / "out.wav"
    cmd = [sys.executable, "-m", "vqsynth", "serve", "--audio", "null", "--no-midi", "--osc-port", "0",
           "--record", str(wav)] + (["--model", model] if model else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("vqsynth ready"):
            break
    ready = time.perf_counter() - t0
    port = int(re.search(r"OSC udp [\d.]+:(\d+)", line).group(1))
    SimpleUDPClient("127.0.0.1", port).send_message("/vqsynth/note/on", [60, 100])
    sent = time.perf_counter() - t0
    time.sleep(0.5)
    proc.terminate()
    proc.wait(10)
    audio, sr = sf.read(wav)
    loud = np.flatnonzero(np.abs(audio) > 1e-4)
    # the recording starts with the audio stream, just before "ready"; sound lands at the note
    first_sound = (loud[0] / sr) if loud.size else float("nan")
    return ready, sent, first_sound


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = [once(args.model) for _ in range(args.runs)]
    ready = np.array([r[0] for r in rows])
    print(f"process start -> ready: median {np.median(ready):.2f} s (min {ready.min():.2f}, max {ready.max():.2f}) "
          f"over {args.runs} runs; a note sent at ready sounded {np.median([r[2] for r in rows]) * 1000:.0f} ms "
          "into the audio stream")


if __name__ == "__main__":
    main()
