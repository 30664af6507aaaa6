"""Offline render speed, vqsynth and FluidSynth side by side on the same MIDI file, in one run.

    .venv/bin/python perf/render_speed.py [--model NAME] [--seconds 180]

The file is written here (perf/results/piece.mid): a deterministic General MIDI piece on four
parts (piano chords with CC74 sweeps, a flute melody with pitch bend, a bass, drums on channel
10; up to 9 voices and a hit at once), so both instruments render the same events.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import mido

HERE = Path(__file__).resolve().parent


def write_piece(path: Path, seconds: float, bpm: int = 120):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    beats = int(seconds * bpm / 60)
    chords = [(48, 55, 60, 64), (45, 52, 57, 60), (41, 48, 53, 57), (43, 50, 55, 59)]
    events = []  # (tick, message)
    for b in range(0, beats, 4):
        for p in chords[(b // 4) % 4]:
            events.append((b * 480, mido.Message("note_on", note=p, velocity=70)))
            events.append(((b + 4) * 480 - 10, mido.Message("note_off", note=p)))
        events.append((b * 480, mido.Message("control_change", control=74, value=(b * 13) % 128)))
    events += [(0, mido.Message("program_change", channel=1, program=73)),   # flute
               (0, mido.Message("program_change", channel=2, program=33)),   # finger bass
               (0, mido.Message("control_change", channel=1, control=10, value=90)),
               (0, mido.Message("control_change", channel=2, control=10, value=40))]
    for b in range(beats * 2):
        p = 67 + [0, 2, 4, 7, 9, 7, 4, 2][b % 8]
        events.append((b * 240, mido.Message("note_on", channel=1, note=p, velocity=60 + (b * 7) % 60)))
        events.append((b * 240 + 200, mido.Message("note_off", channel=1, note=p)))
        events.append((b * 240 + 100, mido.Message("pitchwheel", channel=1, pitch=((b * 1000) % 8000) - 4000)))
        drum = (36, 42, 38, 42)[b % 4]
        events.append((b * 240, mido.Message("note_on", channel=9, note=drum, velocity=90 + (b % 3) * 10)))
        events.append((b * 240 + 60, mido.Message("note_off", channel=9, note=drum)))
    for b in range(beats):
        p = (36, 33, 29, 31)[(b // 4) % 4] + (7 if b % 2 else 0)
        events.append((b * 480, mido.Message("note_on", channel=2, note=p, velocity=100)))
        events.append((b * 480 + 400, mido.Message("note_off", channel=2, note=p)))
    events.sort(key=lambda e: e[0])
    last = 0
    for tick, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    mid.save(path)


def timed(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--seconds", type=float, default=180.0)
    args = ap.parse_args()
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    piece = out / "piece.mid"
    write_piece(piece, args.seconds)
    length = mido.MidiFile(piece).length
    vq = [sys.executable, "-m", "vqsynth", "render", str(piece), "-o", str(out / "piece-vqsynth.wav"), "--tail", "1"]
    if args.model:
        vq += ["--model", args.model]
    fs = ["fluidsynth", "-ni", "-g", "1", "-r", "48000", "-F", str(out / "piece-fluidsynth.wav"),
          "/usr/share/sounds/sf2/FluidR3_GM.sf2", str(piece)]
    startup = timed([sys.executable, "-c", "import vqsynth.engine.engine, vqsynth.control.midi"])
    t_vq, t_fs = timed(vq), timed(fs)
    print(f"{length:.1f} s of MIDI, rendered at 48 kHz (wall time includes process start and model load)")
    print("| renderer | wall time | x real time |")
    print("|---|---|---|")
    print(f"| vqsynth render | {t_vq:.2f} s | {length / t_vq:.1f}x |")
    print(f"| fluidsynth -F | {t_fs:.2f} s | {length / t_fs:.1f}x |")
    print(f"ratio (FluidSynth speed / vqsynth speed): {t_vq / t_fs:.1f}; python import alone: {startup:.2f} s")


if __name__ == "__main__":
    main()
