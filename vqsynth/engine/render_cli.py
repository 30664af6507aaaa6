"""`vqsynth render in.mid -o out.wav`: a MIDI file through the live engine code, offline; with
`--input-file voice.wav`, an audio file played into the follow part (control/follow.py), alone
or with the MIDI file."""

from __future__ import annotations

import sys
import time

from vqsynth.engine.settings import ENGINE, add_settings

RENDER_BLOCK = 1024


def add_arguments(parser):
    parser.add_argument("midi", nargs="?", help="a standard MIDI file")
    parser.add_argument("-o", "--output", help="WAV file to write")
    parser.add_argument("--examples", metavar="DIR", help="instead: render the model's demo folder into DIR "
                        "(chromatic scale, 10 s held note, velocity sweep, attribute sweeps, latent walk)")
    parser.add_argument("--tail", type=float, default=2.0, help="seconds rendered after the last event [2.0]")
    parser.add_argument("--input-file", metavar="AUDIO", help="an audio file (WAV, FLAC, ...) that plays the follow "
                        "part: its pitch, level and envelope drive one voice")
    parser.add_argument("--follow-channel", type=int, default=16, metavar="1-16",
                        help="the follow part's MIDI channel [16]")
    parser.add_argument("--follow-preset", metavar="NAME|N", help="the follow part's instrument: a preset's name "
                        "or number (default: the part's, as for any part)")
    add_settings(parser, ENGINE)


def check_output(path):
    """Refuse, before any work, an output soundfile cannot write: a missing or read-only folder,
    a directory, or an extension that names no format it writes (.wav, .flac, .ogg, ...)."""
    import os
    from pathlib import Path

    import soundfile as sf

    from vqsynth.cli import UserError

    out = Path(path)
    if out.is_dir():
        raise UserError(f"-o {path}: is a directory: give a file name such as {out / 'out.wav'}")
    ext = out.suffix.lower().lstrip(".")
    formats = {k.lower() for k in sf.available_formats()}
    if ext not in formats:
        raise UserError(f"-o {path}: '{out.suffix or '(no extension)'}' is not a format this can write: "
                        "use .wav, .flac or .ogg")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"-o {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UserError(f"-o {path}: cannot write there (permission denied)")


def load_midi(path):
    """The MIDI file, or a UserError saying why it cannot be read."""
    import mido

    from vqsynth.cli import UserError

    try:
        return mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        why = str(exc) or ("empty or cut short" if isinstance(exc, EOFError) else type(exc).__name__)
        raise UserError(f"{path}: not a readable MIDI file ({why})") from None


def midi_events(midi, controller):
    """(time_s, deliver) pairs for every channel message of a loaded MIDI file, in file order."""
    events, now = [], 0.0
    for msg in midi:
        now += msg.time
        if not msg.is_meta and msg.type != "sysex":
            events.append((now, lambda t, m=msg: controller.handle(m, t)))
    return events, now


def run(args):
    import soundfile as sf

    from vqsynth.control.midi import MidiController
    from vqsynth.engine.offline import CHUNK, render
    from vqsynth.engine.options import build_engine, load_mapping_or_fail

    from vqsynth.cli import UserError

    if args.examples:
        from vqsynth.engine.examples import render_examples

        paths = render_examples(lambda: build_engine(args), args.examples)
        print(f"{args.examples}: {len(paths)} examples ({', '.join(p.stem for p in paths)})")
        return 0
    if not (args.midi or args.input_file) or not args.output:
        raise UserError("render needs a MIDI file or --input-file AUDIO, and -o OUT.wav (or --examples DIR)")
    if not 1 <= args.follow_channel <= 16:
        raise UserError(f"--follow-channel {args.follow_channel}: a MIDI channel is 1-16")
    check_output(args.output)
    midi = load_midi(args.midi) if args.midi else None
    # 1,024-sample blocks whatever --block-size says: the samples are the same at any block size
    # (tests/test_engine.py), and the callback's work per block is then 8x rarer than at 128
    args.block_size = max(int(args.block_size), RENDER_BLOCK)
    engine = build_engine(args)
    # every note from the model with the attributes of its own time: the attack cache hides
    # latency live, and offline there is none (attribute sweeps would only rebuild it)
    engine.attacks.enabled = False
    mapping = load_mapping_or_fail(args.mapping, engine.model)
    controller = MidiController(engine, mapping)
    events, length = midi_events(midi, controller) if midi is not None else ([], 0.0)
    chunk = CHUNK
    if args.input_file:
        from vqsynth.control.follow import FollowSettings, follow_file_events

        if args.follow_preset is not None:
            from vqsynth.engine.errors import InputError

            try:
                engine.set_preset(int(args.follow_preset) if args.follow_preset.isdigit() else args.follow_preset,
                                  channel=args.follow_channel - 1)
            except InputError as exc:
                raise UserError(f"--follow-preset {args.follow_preset}: {exc}") from None
        try:
            heard, heard_s, follower = follow_file_events(
                engine, args.input_file, FollowSettings(channel=args.follow_channel - 1, **mapping.follow))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        events, length = events + heard, max(length, heard_s)
        # the input's tokens come frame by frame, as live: the generator one frame a call, so
        # each frame has its token before it is made
        chunk = 1
    t0 = time.perf_counter()

    def progress(done, total):  # one line, rewritten in place, where a person watches
        rate = done / max(time.perf_counter() - t0, 1e-9)
        print(f"\r  {done:7.1f} / {total:.1f} s  ({rate:.1f}x real time)", end="" if done < total else "\n",
              file=sys.stderr, flush=True)

    audio = render(engine, events, length, tail=args.tail, channels=2, chunk=chunk,
                   progress=progress if sys.stderr.isatty() else None)
    took = time.perf_counter() - t0
    sf.write(args.output, audio, engine.sample_rate)  # the format's default: 16-bit WAV/FLAC, Vorbis OGG
    seconds = audio.shape[0] / engine.sample_rate
    print(f"{args.output}: {seconds:.2f} s rendered in {took:.2f} s ({seconds / max(took, 1e-9):.1f}x real time), "
          f"{len(events)} events, {engine.counters['notes']} notes, model {engine.model.name}")
    for kind, n in sorted(controller.counters.items()):
        print(f"  {n} x {kind}")
    if args.input_file:
        c = follower.counters
        print(f"  follow part (channel {args.follow_channel}): {c['notes']} notes ({c['reattacks']} re-attacks, {c['leaps']} leaps) "
              f"{c['frames']} frames in notes, from {args.input_file}, {c['unvoiced_frames']} unvoiced in notes")
    return 0
