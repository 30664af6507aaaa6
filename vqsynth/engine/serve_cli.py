"""`vqsynth serve`: the instrument. Audio out, MIDI in, OSC in/out, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from vqsynth.engine import gc_policy


def add_arguments(parser):
    from vqsynth.engine.settings import ENGINE, SERVE, add_settings

    add_settings(parser, SERVE[:1] + ENGINE + SERVE[1:])  # --config first in the help


def _latency(value):
    try:
        return float(value)
    except ValueError:
        return value


def _midi_description(args, midi):
    if args.no_midi:
        return "off"
    if args.audio == "jack":
        return "in the JACK client (port midi_in)"
    return f"port {args.virtual_port!r} via {midi.api_name}" if midi else "off"


def run(args):
    from vqsynth.cli import UserError
    from vqsynth.control.midi import MidiController
    from vqsynth.control.discovery import Discovery
    from vqsynth.control.midi_input import MidiInput, MidiUnavailable
    from vqsynth.control.osc_server import OscPortInUse, OscServer, parse_hosts
    from vqsynth.engine.backends import open_backend
    from vqsynth.engine.errors import AudioError
    from vqsynth.engine.options import build_engine, load_mapping_or_fail

    from vqsynth.control.learn import user_mapping_path

    import logging

    from vqsynth.control.dump import EventDump

    logging.basicConfig(format="vqsynth %(levelname)s %(name)s: %(message)s",
                        level=logging.ERROR if args.quiet else
                        (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)])
    started = time.perf_counter()
    learned = Path(args.learn_file) if args.learn_file else user_mapping_path()
    if args.mapping is None and learned.exists():
        args.mapping = str(learned)  # what MIDI learn saved last time (to --learn-file, or the user's file)
        print(f"vqsynth: mapping {learned} (MIDI learn's; --mapping to choose another)", flush=True)
    engine = build_engine(args)
    try:
        allow_hosts = parse_hosts(args.allow_hosts)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    mapping = load_mapping_or_fail(args.mapping, engine.model)
    controller = MidiController(engine, mapping)
    follower = audio_input = None
    if args.follow_input:
        from vqsynth.control.follow import FollowSettings, Follower, live_sender

        follower = Follower(engine, None, FollowSettings(channel=args.follow_channel - 1, **mapping.follow))
        follower.send = live_sender(follower)
    if args.state and Path(args.state).exists():  # over the mapping's: the state is where it was left
        from vqsynth.engine.state_file import load

        try:
            state = load(args.state, engine, follower)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        print(f"vqsynth: state {args.state} recalled (preset {state.get('preset_name') or 'custom z'})", flush=True)
    if args.follow_input == "sounddevice":
        from vqsynth.engine.audio_input import PortAudioInput

        try:
            audio_input = PortAudioInput(engine, follower, args.input_device)
        except AudioError as exc:  # the instrument still plays: only the follow part is silent
            print(f"vqsynth: audio input off: {exc}", flush=True)
            follower = None
    try:
        backend = open_backend(args.audio, engine, record=args.record, device=args.device,
                               latency=_latency(args.latency), controller=None if args.no_midi else controller,
                               follower=follower if args.follow_input == "jack" else None)
    except AudioError as exc:
        raise UserError(str(exc)) from None
    if args.files and not Path(args.files).is_dir():
        raise UserError(f"--files {args.files}: not a folder")
    osc = OscServer(engine, controller, host=args.osc_host, port=args.osc_port, files_dir=args.files,
                    allow_writes=args.allow_writes, state_file=args.state, allow_hosts=allow_hosts,
                    learn_file=args.learn_file or args.mapping or learned)
    osc.follower = follower
    dump = EventDump() if args.dump_midi or args.dump_osc else None
    controller.dump = dump if args.dump_midi else None
    osc.dump = dump if args.dump_osc else None
    try:
        osc.start()
    except OscPortInUse as exc:
        backend.close()
        raise UserError(str(exc)) from None
    discovery = None if args.no_discovery else Discovery(osc, port=args.oscquery_port).start()
    midi = None
    stop = threading.Event()
    audio_lost = False
    try:
        engine.start()  # warms the model and fills the attack cache before we say "ready"
        if not args.no_gc_freeze:
            gc_policy.freeze_startup_objects()
        gc_policy.watch(engine.counters)  # after the freeze: its own start-up collection is not counted
        sys.setswitchinterval(args.gil_switch_ms / 1000.0)
        backend.start()
        if audio_input is not None:
            audio_input.start()
        if args.audio == "jack" and not args.no_midi:
            midi = None  # the JACK client reads its own MIDI port (backends.JackBackend)
        elif not args.no_midi:
            try:
                midi = MidiInput(controller, virtual=args.virtual_port, ports=args.midi_port, api=args.midi_api).start()
            except MidiUnavailable as exc:
                print(f"vqsynth: MIDI off: {exc} (OSC still works; --no-midi silences this)", flush=True)
                midi = None
        s = engine.status()
        drums = f" + drums {engine.drums.model.name} ({s['drums']['name']})" if engine.drums is not None else ""
        print(f"vqsynth ready in {time.perf_counter() - started:.2f} s: model {engine.model.name}{drums}, "
              f"audio {backend.description}{f', {audio_input.description}' if audio_input else ''}, "
              f"{s['sample_rate']} Hz, block {s['block_size']}, "
              f"event latency {s['latency_ms']} ms, polyphony {s['polyphony']}; "
              f"MIDI {_midi_description(args, midi)}; "
              f"{f'OSCQuery http://{args.osc_host}:{discovery.port}/; ' if discovery else ''}"
              f"OSC udp {args.osc_host}:{osc.port}", flush=True)  # the OSC port stays last: scripts read it there
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        next_status = time.monotonic() + args.status_every
        while not stop.is_set():
            stop.wait(0.5 if args.status_every <= 0 else min(0.5, args.status_every))
            try:
                for line in backend.poll() + (audio_input.poll() if audio_input else []):  # a device lost
                    print(f"vqsynth: {line}", flush=True)  # or back, a connected port gone or back
            except AudioError as exc:
                print(f"vqsynth: {exc}", flush=True)
                audio_lost = True
                break
            if args.status_every > 0 and time.monotonic() >= next_status:
                next_status += args.status_every
                s = engine.status()
                print(f"voices {s['voices']}/{s['polyphony']} load {s['cpu_load']:.2f} underruns {s['underruns']} "
                      f"starved {s['starved']} level {s['level_db']} dB", flush=True)
            if deadline and time.monotonic() > deadline:
                break
    finally:
        if args.state:
            from vqsynth.engine.state_file import save

            try:
                save(args.state, engine, follower)
            except OSError as exc:
                print(f"vqsynth: could not save the state to {args.state}: {exc}", flush=True)
        if dump is not None:
            dump.close()
        if midi is not None:
            midi.stop()
        if discovery is not None:
            discovery.stop()
        osc.stop()
        if audio_input is not None:
            audio_input.stop()
        try:
            backend.stop()
        except Exception:
            pass
        engine.stop()
    s = engine.status()
    print(f"vqsynth stopped: {s['notes']} notes, {s['underruns']} underruns, {s['starved']} starved blocks", flush=True)
    if audio_lost:  # skip interpreter teardown: PortAudio's exit handler aborts on a dead JACK client
        sys.stderr.flush()
        os._exit(3)
    return 0
