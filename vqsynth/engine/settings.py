"""Every engine and server setting in one registry, FluidSynth's way: a name, a default, what it
takes, a line of doc, and whether (and how) it can change while the server runs.

argparse is built from it (so a bad value is one line naming the setting, exit code 2, before any
work), `serve --config FILE` reads the same names (config_file.py goes through the parser), and
the README's table is rendered from it (tests/test_docs.py holds the two together)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from vqsynth.engine.backends import BACKENDS


@dataclass(frozen=True)
class Setting:
    name: str  # the long option and the config file's key
    kind: str  # int | float | str | choice | flag | list | count
    default: object
    allowed: tuple | None  # (lo, hi) for numbers, the choices for a choice
    doc: str
    live: str = ""  # how it changes while running ("": at start only)
    metavar: str | None = None
    short: str | None = None
    unit: str = ""  # said in a refusal: "0 milliseconds is outside 0.001..1000"


ENGINE = [  # serve and render
    Setting("model", "str", None, None, "model folder or name under models/ (default: the one models/DEFAULT names)"),
    Setting("sample-rate", "int", 48000, (8000, 192000), "output sample rate in Hz"),
    Setting("block-size", "int", 128, (16, 8192), "audio block size in frames (a power of two avoids PipeWire crackle)"),
    Setting("polyphony", "int", 16, (1, 256), "number of voices"),
    Setting("mapping", "str", None, None, "MIDI/OSC mapping file (TOML; default: mappings/default.toml)",
            "MIDI learn rebinds it"),
    Setting("prior", "choice", None, ("markov", "resample"), "token prior mode (default: the model's)"),
    Setting("seed", "int", 0, (0, 2 ** 63 - 1), "seed of the token prior and the noise"),
    Setting("preset", "str", None, None, "preset of every part at the start: number, name or unique prefix "
            "(`vqsynth presets`)", "OSC /vqsynth/preset, /vqsynth/part/N/preset; MIDI program change"),
    Setting("no-attack-cache", "flag", False, None, "render every note-on fresh (adds latency)"),
    Setting("drums", "str", None, None, "drum model folder or name under models/ for the GM drum part (default: "
            "models/vqsynth-drums if it is there; none: no drum kit, drum notes are counted and not played)"),
    Setting("kit", "str", None, None, "drum kit at the start: number, name or unique prefix",
            "OSC /vqsynth/drums/kit; MIDI program change on the drum channel"),
]

SERVE = [
    Setting("config", "str", None, None, "TOML file of serve settings (keys: these names); the command line wins",
            metavar="FILE"),
    Setting("audio", "choice", "sounddevice", BACKENDS, "audio backend: sounddevice (PortAudio), jack (native JACK "
            "client with its own MIDI in: sample-accurate notes), null (no device, paced), file (with --record)"),
    Setting("device", "str", None, None, "audio output: index or name fragment (see `vqsynth devices`)"),
    Setting("latency", "str", "low", None, "PortAudio output latency: low, high or seconds"),
    Setting("record", "str", None, None, "also record the output to this WAV file (stereo)", metavar="FILE"),
    Setting("follow-input", "choice", None, ("jack", "sounddevice"), "an audio input plays one part (its pitch "
            "bends a voice, its level opens notes and moves them, the encoder gives their envelope): jack, an input "
            "port audio_in on the JACK client (with --audio jack); sounddevice, a PortAudio input device (any --audio)"),
    Setting("input-device", "str", None, None, "the PortAudio input device of --follow-input sounddevice: index or "
            "name fragment (default: the system's; one that cannot open leaves the follow part silent, the rest plays)"),
    Setting("follow-channel", "int", 16, (1, 16), "the MIDI channel (part) the audio input plays; its instrument "
            "is that part's (OSC /vqsynth/part/N/preset, a program change on that channel)"),
    Setting("midi-port", "list", [], None, "open MIDI input ports whose name starts with this (repeatable; '' opens "
            "all)", "ports that leave and come back are reopened"),
    Setting("midi-api", "choice", None, ("alsa", "jack", "coremidi", "winmm"), "MIDI system (default: the first "
            "that works)"),
    Setting("no-midi", "flag", False, None, "no MIDI input at all"),
    Setting("virtual-port", "str", "vqsynth", None, "name of the virtual MIDI input port"),
    Setting("osc-host", "str", "127.0.0.1", None, "address OSC and OSCQuery bind: 127.0.0.1 lets only this machine "
            "in; 0.0.0.0 opens them to the LAN (a phone or tablet running TouchOSC)"),
    Setting("allow-hosts", "str", None, None, "hosts or networks that may play it over OSC and read OSCQuery, "
            "comma-separated (192.168.1.0/24,10.0.0.7); this machine always may; others are dropped unanswered "
            "and counted (default: any host that reaches --osc-host)", metavar="LIST"),
    Setting("allow-writes", "choice", "local", ("none", "local", "any"), "who may make the server change files "
            "over OSC (MIDI learn saving to the mapping, state saving): nobody, senders on this machine, or anyone"),
    Setting("osc-port", "int", 9000, (0, 65535), "OSC UDP port, 0 for any free one"),
    Setting("oscquery-port", "int", None, (0, 65535), "TCP port of the OSCQuery HTTP server (default: the OSC "
            "port's number; any free one if taken)"),
    Setting("no-discovery", "flag", False, None, "no Zeroconf adverts (_osc._udp, _oscjson._tcp) and no OSCQuery "
            "HTTP server"),
    Setting("state", "str", None, None, "the instrument's state (presets, z, attributes, volume, parts): recalled at "
            "start if the file exists, saved at a clean stop", "OSC /vqsynth/state/save, /vqsynth/state/load",
            metavar="FILE"),
    Setting("files", "str", None, None, "folder whose audio files OSC's /vqsynth/tokens/wav may read (none: that "
            "command is off)", metavar="DIR"),
    Setting("learn-file", "str", None, None, "where MIDI learn saves (default: the --mapping file, else "
            "~/.config/vqsynth/mapping.toml, which is then loaded when no --mapping is given)"),
    Setting("no-gc-freeze", "flag", False, None, "leave the start-up objects to the garbage collector (for "
            "measuring; see gc_policy.py)"),
    Setting("gil-switch-ms", "float", 5.0, (0.001, 1000.0), "how long another Python thread may hold the GIL while "
            "the audio callback waits for it (sys.setswitchinterval; 5 is Python's default)", unit="milliseconds"),
    Setting("status-every", "float", 0.0, (0.0, 86400.0), "print a status line every N seconds (0: never)"),
    Setting("dump-midi", "flag", False, None, "print every MIDI message received, one a line"),
    Setting("dump-osc", "flag", False, None, "print every OSC message received, one a line"),
    Setting("verbose", "count", 0, None, "more log lines (-vv: debug)", short="-v"),
    Setting("quiet", "flag", False, None, "errors only: no warnings about bad input", short="-q"),
    Setting("duration", "float", 0.0, (0.0, 10 ** 9), "stop after N seconds (0: run until stopped)"),
]


def ranged(typ, lo, hi, unit=""):
    """An argparse type that also checks lo <= value <= hi (NaN is refused too)."""
    def parse(text):
        try:
            value = typ(text)
        except ValueError:
            what = f"a number of {unit}" if unit else "an integer" if typ is int else "a number"
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value}{' ' + unit if unit else ''} is outside {lo}..{hi}")
        return value
    parse.__name__ = typ.__name__
    return parse


def add_settings(parser, rows):
    """One argparse option per setting, its type and range checked by the parser."""
    for s in rows:
        flags = [f"--{s.name}"] + ([s.short] if s.short else [])
        shown = "" if s.default in (None, False, []) else f" [{s.default}]"
        if s.kind == "flag":
            parser.add_argument(*flags, action="store_true", help=s.doc)
        elif s.kind == "count":
            parser.add_argument(*flags, action="count", default=0, help=s.doc)
        elif s.kind == "list":
            parser.add_argument(*flags, action="append", default=[], metavar=s.metavar, help=s.doc)
        elif s.kind == "choice":
            parser.add_argument(*flags, choices=s.allowed, default=s.default, help=s.doc + shown)
        else:
            typ = {"int": int, "float": float, "str": str}[s.kind]
            kind = ranged(typ, *s.allowed, unit=s.unit) if s.allowed else typ
            where = f" {s.allowed[0]}..{s.allowed[1]}" if s.allowed and s.name != "seed" else ""
            parser.add_argument(*flags, type=kind, default=s.default, metavar=s.metavar, help=f"{s.doc}{where}{shown}")


def server_settings_markdown(rows=ENGINE + SERVE) -> str:
    """The README's settings table, rendered from the registry."""
    lines = ["| Setting | Default | Takes | Changes while running | What it does |", "|---|---|---|---|---|"]
    for s in rows:
        takes = (f"{s.allowed[0]}..{s.allowed[1]}" if s.kind in ("int", "float") and s.allowed else
                 " \\| ".join(s.allowed) if s.kind == "choice" else
                 {"flag": "on/off", "count": "repeat", "list": "repeatable"}.get(s.kind, s.kind))
        default = "—" if s.default in (None, []) else f"`{s.default}`"
        lines.append(f"| `--{s.name}` | {default} | {takes} | {s.live or 'at start'} | {s.doc} |")
    return "\n".join(lines)
