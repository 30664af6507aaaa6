"""`vqsynth serve`: the instrument. Audio out, MIDI in, OSC in/out, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from vqsynth.engine import gc_policy
from vqsynth.engine.backends import BACKENDS
from vqsynth.engine.options import add_engine_arguments


def _positive_ms(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value <= 1000.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r}: milliseconds, more than 0 and at most 1000")
    return value


def add_arguments(parser):
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="TOML file of serve settings (keys: these options' long names); the command line wins")
    add_engine_arguments(parser)
    parser.add_argument("--audio", choices=BACKENDS, default="sounddevice",
                        help="audio backend: sounddevice (PortAudio), jack (native JACK client with its own MIDI in: "
                             "sample-accurate notes), null (no device, paced), file (with --record)")
    parser.add_argument("--device", default=None, help="audio output: index or name fragment (see `vqsynth devices`)")
    parser.add_argument("--latency", default="low", help="PortAudio output latency: low, high or seconds [low]")
    parser.add_argument("--record", default=None, help="also record the output to this WAV file")
    parser.add_argument("--midi-port", action="append", default=[],
                        help="open MIDI input ports whose name starts with this (repeatable; '' opens all)")
    parser.add_argument("--midi-api", default=None, help="alsa | jack | coremidi | winmm (default: the first that works)")
    parser.add_argument("--no-midi", action="store_true", help="no MIDI input at all")
    parser.add_argument("--virtual-port", default="vqsynth", help="name of the virtual MIDI input port [vqsynth]")
    parser.add_argument("--osc-host", default="127.0.0.1",
                        help="address OSC and OSCQuery bind: 127.0.0.1 lets only this machine in; 0.0.0.0 opens "
                             "them to the LAN (a phone or tablet running TouchOSC) [127.0.0.1]")
    parser.add_argument("--allow-hosts", default=None, metavar="LIST",
                        help="hosts or networks that may play it over OSC and read OSCQuery, comma-separated "
                             "(192.168.1.0/24,10.0.0.7); this machine always may; others are dropped unanswered "
                             "and counted [any host that reaches --osc-host]")
    parser.add_argument("--allow-writes", choices=["none", "local", "any"], default="local",
                        help="who may make the server change files over OSC (MIDI learn saving to the mapping): "
                             "nobody, senders on this machine, or anyone who can reach it [local]")
    parser.add_argument("--osc-port", type=int, default=9000, help="OSC UDP port, 0 for any free one [9000]")
    parser.add_argument("--oscquery-port", type=int, default=None,
                        help="TCP port of the OSCQuery HTTP server [the OSC port's number; any free one if taken]")
    parser.add_argument("--no-discovery", action="store_true",
                        help="no Zeroconf adverts (_osc._udp, _oscjson._tcp) and no OSCQuery HTTP server")
    parser.add_argument("--state", default=None, metavar="FILE",
                        help="the instrument's state (preset, z, attributes, volume): recalled at start if the file "
                             "exists, saved at a clean stop and by OSC /vqsynth/state/save")
    parser.add_argument("--files", default=None, metavar="DIR",
                        help="folder whose audio files OSC's /vqsynth/tokens/wav may read (none: that command is off)")
    parser.add_argument("--learn-file", default=None,
                        help="where MIDI learn saves [the --mapping file, else ~/.config/vqsynth/mapping.toml, "
                             "which is then loaded when no --mapping is given]")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="leave the start-up objects to the garbage collector (for measuring; see gc_policy.py)")
    parser.add_argument("--gil-switch-ms", type=_positive_ms, default=5.0,
                        help="how long another Python thread may hold the GIL while the audio callback "
                             "waits for it (sys.setswitchinterval) [5, Python's default]")
    parser.add_argument("--status-every", type=float, default=0.0, help="print a status line every N seconds")
    parser.add_argument("--dump-midi", action="store_true", help="print every MIDI message received, one a line")
    parser.add_argument("--dump-osc", action="store_true", help="print every OSC message received, one a line")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only: no warnings about bad input")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (0: run until stopped)")


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
    learned = user_mapping_path()
    if args.mapping is None and args.learn_file is None and learned.exists():
        args.mapping = str(learned)  # what MIDI learn saved last time
        print(f"vqsynth: mapping {learned} (MIDI learn's; --mapping to choose another)", flush=True)
    engine = build_engine(args)
    if args.state and Path(args.state).exists():
        from vqsynth.engine.state_file import load

        try:
            state = load(args.state, engine)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        print(f"vqsynth: state {args.state} recalled (preset {state.get('preset_name') or 'custom z'})", flush=True)
    try:
        allow_hosts = parse_hosts(args.allow_hosts)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    controller = MidiController(engine, load_mapping_or_fail(args.mapping, engine.model))
    try:
        backend = open_backend(args.audio, engine, record=args.record, device=args.device,
                               latency=_latency(args.latency), controller=None if args.no_midi else controller)
    except AudioError as exc:
        raise UserError(str(exc)) from None
    if args.files and not Path(args.files).is_dir():
        raise UserError(f"--files {args.files}: not a folder")
    osc = OscServer(engine, controller, host=args.osc_host, port=args.osc_port, files_dir=args.files,
                    allow_writes=args.allow_writes, state_file=args.state, allow_hosts=allow_hosts,
                    learn_file=args.learn_file or args.mapping or learned)
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
        if args.audio == "jack" and not args.no_midi:
            midi = None  # the JACK client reads its own MIDI port (backends.JackBackend)
        elif not args.no_midi:
            try:
                midi = MidiInput(controller, virtual=args.virtual_port, ports=args.midi_port, api=args.midi_api).start()
            except MidiUnavailable as exc:
                print(f"vqsynth: MIDI off: {exc} (OSC still works; --no-midi silences this)", flush=True)
                midi = None
        s = engine.status()
        print(f"vqsynth ready in {time.perf_counter() - started:.2f} s: model {engine.model.name}, "
              f"audio {backend.description}, {s['sample_rate']} Hz, block {s['block_size']}, "
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
                for line in backend.poll():  # the device lost or back, a connected port gone or back
                    print(f"vqsynth: {line}", flush=True)
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
                save(args.state, engine)
            except OSError as exc:
                print(f"vqsynth: could not save the state to {args.state}: {exc}", flush=True)
        if dump is not None:
            dump.close()
        if midi is not None:
            midi.stop()
        if discovery is not None:
            discovery.stop()
        osc.stop()
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
