"""The OSC address space: one table that the dispatcher, the README and OSCQuery all read.

Each row names an address, the arguments it takes (checked and converted before the handler
runs, so a handler only sees good values), the handler, what is sent back, and a line of doc.
Numbers are accepted as int or float everywhere (Max, Pd and TouchOSC send floats); an
argument that must be whole (an id, a seed) accepts a float with no fraction.
"""

from __future__ import annotations

import math
import re
from typing import Callable, NamedTuple

from vqsynth.control.follow import MODES, UNVOICED
from vqsynth.control.lograte import kind_key

TAGS = {"number": "i\\|f", "int": "i\\|f", "string": "s", "int|string": "i\\|f\\|s"}


class Arg(NamedTuple):
    name: str
    kind: str  # number | int | string | int|string
    optional: bool = False
    many: bool = False  # this argument and all that follow (at least one)
    range: tuple[float, float] | None = None


class Address(NamedTuple):
    address: str  # a <name> part matches one path segment and reaches the handler by keyword
    args: tuple[Arg, ...]
    handler: Callable
    doc: str
    reply: str = ""


class ArgError(ValueError):
    pass


class Request(NamedTuple):
    """What a handler gets besides its arguments."""

    server: object  # the OscServer: .engine, .controller, .send, .subscribe
    sender: tuple[str, int]
    address: str
    t: float  # when it should sound, time.monotonic() scale

    def reply(self, address: str, *args):
        self.server.send(self.sender, address, *args)

    def done(self):
        self.reply("/done", self.address)


# ------------------------------------------------------------------ handlers

def _note_on(req, pitch, velocity, note_id=None):
    req.server.controller.note_on(0, pitch, round(velocity), req.t, note_id)


def _note_off(req, pitch, note_id=None):
    req.server.controller.note_off(0, pitch, req.t, note_id)


def _part(part: str) -> int:
    """A /vqsynth/part/<part>/... segment: 1..16 as in Pd, Max and DAWs -> the channel 0..15."""
    try:
        n = int(part)
    except ValueError:
        raise ArgError(f"part '{part[:16]}' is not a number 1..16") from None
    if not 1 <= n <= 16:
        raise ArgError(f"part {n} is outside 1..16")
    return n - 1


def _part_note_on(req, pitch, velocity, note_id=None, part="1"):
    req.server.controller.note_on(_part(part), pitch, round(velocity), req.t, note_id)


def _part_note_off(req, pitch, note_id=None, part="1"):
    req.server.controller.note_off(_part(part), pitch, req.t, note_id)


def _part_preset(req, preset, part="1"):
    req.server.engine.set_preset(preset, t=req.t, channel=_part(part))
    req.done()


def _part_attr(req, value, part="1", name=""):
    if name not in req.server.engine.model.attr_names:
        raise ArgError(f"unknown attribute '{name[:32]}' for a part (its level is /vqsynth/part/N/volume; "
                       f"attributes: {', '.join(req.server.engine.model.attr_names)})")
    req.server.engine.channel_attr(_part(part), name, value, t=req.t)


def _part_volume(req, value, part="1"):
    req.server.engine.part_level(_part(part), volume=value, t=req.t)


def _part_pan(req, value, part="1"):
    req.server.engine.part_level(_part(part), pan=value, t=req.t)


def _part_expression(req, value, part="1"):
    req.server.engine.part_level(_part(part), expression=value, t=req.t)


def _drum_hit(req, key, velocity):
    if not req.server.engine.drum_hit(round(key), round(velocity), req.server.engine.drum_channel, t=req.t):
        raise ArgError(f"drum key {round(key)}: the kit has no hit for it (yet)")


def _drum_kit(req, kit):
    req.server.engine.set_drums(kit=kit)
    req.done()


def _drum_variation(req, value):
    req.server.engine.set_drums(variation=value)


def _drum_class(req, value, name=""):
    req.server.engine.set_drums(morph={name: value})


def _drum_attr(req, value, name=""):
    req.server.engine.set_drums(offsets={name: value})


def _cc(req, number, value, channel=1):
    req.server.controller.control_change(channel - 1, number, value, req.t)


def _bend(req, amount, channel=1):
    req.server.controller.bend(channel - 1, amount, req.t)


def _attr(req, value, name):
    req.server.controller.set_target(name, value, req.t)


def _preset(req, preset):
    req.server.engine.set_preset(preset, t=req.t)
    req.done()


def _z(req, *values):
    if len(values) == 1:
        if values[0] != int(values[0]):
            raise ArgError(f"a single value is a seed and must be whole, got {values[0]}")
        req.server.engine.set_z(int(values[0]), t=req.t)
    else:
        if max(abs(v) for v in values) > Z_LIMIT:  # a generator fed z in the 1e8s outputs NaN
            raise ArgError(f"z values must be within ±{Z_LIMIT:g} (z is a standard normal vector), "
                           f"got {max(values, key=abs):g}")
        req.server.engine.set_z([float(v) for v in values], t=req.t)
    req.done()


def _tokens(req, *tokens):
    req.server.engine.set_tokens(list(tokens))
    req.done()


def _tokens_wav(req, path, note_id=None):
    """The envelope of a recording: its tokens from the first sounding frame on (the note starts
    at its note-on, not where the file's leading silence ends). Checked here, read on the file
    worker, answered when done (control/files.py)."""
    engine = req.server.engine
    files = req.server.files
    file = files.check(path)

    def work():
        tokens = engine.model.encode_file(file)
        sounding = ~engine.model.prior.silence[tokens]
        if not sounding.any():
            raise ValueError(f"{path}: silent (every frame encodes to a silence token)")
        tokens = tokens[int(sounding.argmax()):]
        engine.set_tokens(tokens.tolist(), note_id=note_id)
        req.reply("/done", req.address, len(tokens))

    files.submit(work, lambda why: req.server.fail(req.sender, req.address, why, "rejected"))


def _follower(req):
    follower = getattr(req.server, "follower", None)
    if follower is None:
        raise ValueError("no audio input: start the server with --audio jack --follow-input jack")
    return follower


def _follow_on(req, on):
    _follower(req).enabled = bool(on)
    req.done()


def _follow_gate(req, open_db, close_db=None):
    st = _follower(req).settings
    close_db = open_db - 10.0 if close_db is None else min(close_db, open_db)  # it cannot close above
    st.gate_on_db, st.gate_off_db = float(open_db), float(close_db)
    req.done()


def _follow_flag(name):
    """The handler that turns one of the follower's on/off settings on (1) or off (0)."""
    def handler(req, on):
        setattr(_follower(req).settings, name, bool(on))
        req.done()
    return handler


def _follow_choice(name, choices):
    """The handler that sets one of the follower's named settings to one of `choices`."""
    def handler(req, value):
        if value not in choices:
            raise ValueError(f"{name} '{value}': {' or '.join(choices)}")
        setattr(_follower(req).settings, name, value)
        req.done()
    return handler


def _follow_status(req):
    f = _follower(req)
    c, st = f.counters, f.settings
    req.reply("/follow.reply", int(f.enabled), st.channel + 1, st.mode, int(c["notes"]), int(c["frames"]),
              float(st.gate_on_db), float(st.gate_off_db), st.unvoiced, int(st.level), int(st.tokens),
              int(st.timbre))


def _panic(req):
    req.server.controller.panic()
    req.done()


def _status(req):
    s = req.server.engine.status()
    preset = s["preset"] if s["preset"] is not None else -1
    name = req.server.engine.model.presets[preset] if preset >= 0 else "(custom z)"
    req.reply("/status.reply", int(s["voices"]), float(s["cpu_load"]), int(s["underruns"]),
              int(s["sample_rate"]), float(s["latency_ms"]), int(preset), name)


def _counters(req):
    """Every counter that is not zero as name value pairs: osc.*, midi.* (per-number kinds summed),
    engine.* (zeros left out: a quiet server answers a few dozen bytes, not a reflector's 600)."""
    midi = {}
    for kind, n in list(req.server.controller.counters.items()):
        kind = kind_key(kind)  # "unmapped CC 40" -> "unmapped CC"
        midi[kind] = midi.get(kind, 0) + n
    pairs = [(f"osc.{k}", v) for k, v in list(req.server.counters.items())]
    pairs += [(f"midi.{k}", v) for k, v in midi.items()]
    pairs += [(f"engine.{k}", v) for k, v in list(req.server.engine.counters.items())]
    req.reply("/counters.reply", *[x for k, v in sorted(pairs) if v for x in (k, int(v))])


def _subscribe(req, on=1, rate=10.0, port=None):
    req.server.subscribe((req.sender[0], port) if port else req.sender, bool(on), rate)
    req.done()


def _learn(req, parameter):
    from vqsynth.control.learn import MidiLearn

    server, controller = req.server, req.server.controller
    if parameter == "off":
        if controller.learner is not None:
            controller.learner.cancel()
        return req.done()

    if not server.may_write(req.sender):
        raise ValueError("MIDI learn changes the performer's mapping file: this sender may not "
                         f"(serve --allow-writes is '{server.allow_writes}')")

    def failed(why):
        server._count("learn failures", why)
        req.reply("/fail", req.address, why)
    MidiLearn(controller, parameter, server.learn_file,
              done=lambda target, cc, channel, path: req.reply("/vqsynth/learned", target, cc, channel + 1, str(path)),
              failed=failed).start()
    req.done()


def _state_file(req):
    path = req.server.state_file
    if path is None:
        raise ValueError("no state file: start the server with --state FILE")
    return path


def _state_save(req):
    from vqsynth.engine.state_file import save

    if not req.server.may_write(req.sender):
        raise ValueError(f"saving the state changes a file: this sender may not (serve --allow-writes is "
                         f"'{req.server.allow_writes}')")
    try:
        save(_state_file(req), req.server.engine, getattr(req.server, "follower", None))
    except OSError as exc:
        raise ValueError(f"cannot save the state: {exc.strerror or exc}") from None
    req.done()


def _state_load(req):
    from vqsynth.engine.state_file import load

    load(_state_file(req), req.server.engine, getattr(req.server, "follower", None))
    req.done()


def _sync(req, sync_id):
    req.reply("/synced", sync_id)


NUMBER, INT = "number", "int"
Z_LIMIT = 100.0
INT32 = (-2**31, 2**31 - 1)  # what an OSC `i` carries, so a reply can echo it
MAX_SUBSCRIBERS = 16  # a stage has a few phones and tablets; more are refused, so pushes stay bounded
SUBSCRIPTION_S = 600.0  # a subscription lapses after this long without a datagram from its host
_SUBSCRIBE_DOC = ("1 (default): push the instrument's state to the sender, first all of it, then what "
                  "changed, `rate` times a second (default 10; changes in between are merged, the latest "
                  "wins): `/vqsynth/attr/<name> value` for each attribute and `volume`, each OSC address "
                  "the mapping binds (in its input range, so a TouchOSC fader follows), `/vqsynth/state/"
                  "preset index name` (-1 after /vqsynth/z), `/vqsynth/state/z values...`, and `/vqsynth/level db voices`; `port`: push to "
                  "that port of the sender's host instead (for senders that cannot listen on their own "
                  "port: Max's udpsend, TouchOSC), never this server's own; 0: stop. At most "
                  f"{MAX_SUBSCRIBERS} subscribers; one lapses after {SUBSCRIPTION_S / 60:g} minutes without a "
                  "datagram from its host (any message renews it)")

_SUBSCRIBE_ARGS = (Arg("on", INT, optional=True, range=(0, 1)), Arg("rate", NUMBER, optional=True, range=(0.5, 100)),
                   Arg("port", INT, optional=True, range=(1, 65535)))

ADDRESSES = [
    Address("/vqsynth/note/on", (Arg("pitch", NUMBER, range=(0, 127)), Arg("velocity", NUMBER, range=(0, 127)),
                                 Arg("id", INT, optional=True)), _note_on,
            "start a note: MIDI pitch (fractions are microtones), velocity 0..127 (0 = note off), "
            "optional id to stop that very note later"),
    Address("/vqsynth/note/off", (Arg("pitch", NUMBER, range=(0, 127)), Arg("id", INT, optional=True)), _note_off,
            "release a note (by id when one is given)"),
    Address("/vqsynth/cc", (Arg("number", INT, range=(0, 127)), Arg("value", INT, range=(0, 127)),
                            Arg("channel", INT, optional=True, range=(1, 16))), _cc,
            "a MIDI control change, exactly as if it came from MIDI (sustain, RPN, mapped CCs); "
            "channel 1..16 as in Pd and Max, default 1"),
    Address("/vqsynth/bend", (Arg("amount", NUMBER, range=(-1, 1)), Arg("channel", INT, optional=True, range=(1, 16))),
            _bend, "pitch bend, -1..1 of the channel's bend range"),
    Address("/vqsynth/attr/<name>", (Arg("value", NUMBER),), _attr,
            "set a model attribute (brightness, hardness, ..., family soft labels) or `volume`, "
            "in its own range (the mapping targets table)"),
    Address("/vqsynth/preset", (Arg("preset", "int|string"),), _preset,
            "choose every part's preset by number or name: its z, and the attributes it recalls (they glide "
            "there)", "/done /vqsynth/preset"),
    Address("/vqsynth/part/<part>/note/on", (Arg("pitch", NUMBER, range=(0, 127)), Arg("velocity", NUMBER, range=(0, 127)),
                                             Arg("id", INT, optional=True)), _part_note_on,
            "a note on part 1..16 (MIDI channel N: its instrument, level and pan); /vqsynth/note/on is part 1"),
    Address("/vqsynth/part/<part>/note/off", (Arg("pitch", NUMBER, range=(0, 127)), Arg("id", INT, optional=True)),
            _part_note_off, "release a note of part 1..16"),
    Address("/vqsynth/part/<part>/preset", (Arg("preset", "int|string"),), _part_preset,
            "part 1..16's instrument only (as a program change on its channel); /vqsynth/preset sets every part's",
            "/done /vqsynth/part/<part>/preset"),
    Address("/vqsynth/part/<part>/attr/<name>", (Arg("value", NUMBER),), _part_attr,
            "one part's own value of an attribute (the others keep the global one), in its range"),
    Address("/vqsynth/part/<part>/volume", (Arg("value", NUMBER, range=(0, 127)),), _part_volume,
            "part volume as CC7: 0..127, 100 (the default) is unity"),
    Address("/vqsynth/part/<part>/pan", (Arg("value", NUMBER, range=(-1, 1)),), _part_pan,
            "part pan -1 (left) .. 1 (right), equal power"),
    Address("/vqsynth/part/<part>/expression", (Arg("value", NUMBER, range=(0, 127)),), _part_expression,
            "part expression as CC11: 0..127, 127 (the default) is unity"),
    Address("/vqsynth/drums/hit", (Arg("key", NUMBER, range=(0, 127)), Arg("velocity", NUMBER, range=(1, 127))),
            _drum_hit, "a hit of the drum part: GM key (36 kick, 38 snare, 42 closed hi-hat, ...), velocity 1..127 "
            "(as a note on the drum channel, 10)"),
    Address("/vqsynth/drums/kit", (Arg("kit", "int|string"),), _drum_kit,
            "the drum part's kit by number or name (as a program change on channel 10)", "/done /vqsynth/drums/kit"),
    Address("/vqsynth/drums/variation", (Arg("value", NUMBER, range=(0, 1)),), _drum_variation,
            "0: every hit of a key the same; up to 1: each hit drawn anew near the key's sound"),
    Address("/vqsynth/drums/class/<name>", (Arg("value", NUMBER, range=(0, 1)),), _drum_class,
            "class morph 0..1: pull every key of the kit towards kick, snare, tom, hihat_closed, hihat_pedal, "
            "hihat_open, crash, ride, clap_rim or other (DrumGAN's kickness, snareness, ...)"),
    Address("/vqsynth/drums/attr/<name>", (Arg("value", NUMBER, range=(-1, 1)),), _drum_attr,
            "shift one Audio Commons feature (brightness, hardness, ...) of every key of the kit, -1..1"),
    Address("/vqsynth/z", (Arg("values", NUMBER, many=True),), _z,
            "the instrument: one whole number is a seed, otherwise the z vector itself", "/done /vqsynth/z"),
    Address("/vqsynth/tokens", (Arg("tokens", INT, many=True),), _tokens,
            "a drawn envelope (one token per frame) for the next note", "/done /vqsynth/tokens"),
    Address("/vqsynth/tokens/wav", (Arg("path", "string"), Arg("id", INT, optional=True, range=INT32)), _tokens_wav,
            "the envelope of an audio file in the folder `serve --files DIR` opens (off without it; through "
            "encoder.onnx) for the next note, or for the sounding note with that id; answered once read",
            "/done /vqsynth/tokens/wav frames"),
    Address("/vqsynth/follow/on", (Arg("on", INT, range=(0, 1)),), _follow_on,
            "1: the audio input (`serve --follow-input jack`) plays its part; 0: it is not heard (a note it "
            "holds is released)", "/done /vqsynth/follow/on"),
    Address("/vqsynth/follow/mode", (Arg("mode", "string"),), _follow_choice("mode", MODES),
            "follow: the input plays notes (its onsets, pitch, level and envelope); gate: the part's keys "
            "(MIDI on its channel) play them and the input's level shapes them (a held key sounds while the "
            "input does)", "/done /vqsynth/follow/mode"),
    Address("/vqsynth/follow/gate", (Arg("open_db", NUMBER, range=(-100, 0)),
                                     Arg("close_db", NUMBER, optional=True, range=(-100, 0))), _follow_gate,
            "the input level (dBFS, RMS over 10 ms) that opens a note, and that closes it after 50 ms under "
            "(default 10 dB below; never above the first)", "/done /vqsynth/follow/gate"),
    Address("/vqsynth/follow/unvoiced", (Arg("mode", "string"),), _follow_choice("unvoiced", UNVOICED),
            "where the input has no pitch inside a note: hold (the last pitch) or release (end the note if it "
            "is also quiet)", "/done /vqsynth/follow/unvoiced"),
    Address("/vqsynth/follow/level", (Arg("on", INT, range=(0, 1)),), _follow_flag("level"),
            "1: the part's expression follows the input's level; 0: notes play at their velocity",
            "/done /vqsynth/follow/level"),
    Address("/vqsynth/follow/tokens", (Arg("on", INT, range=(0, 1)),), _follow_flag("tokens"),
            "1: each note's envelope from the encoder on the input, frame by frame; 0: the prior's (from the "
            "next note)", "/done /vqsynth/follow/tokens"),
    Address("/vqsynth/follow/timbre", (Arg("on", INT, range=(0, 1)),), _follow_flag("timbre"),
            "1: the part's brightness follows the input's (Audio Commons brightness of its last 46 ms); 0: it "
            "stays where the part's controls put it", "/done /vqsynth/follow/timbre"),
    Address("/vqsynth/follow/status", (), _follow_status, "ask for the follow part's state",
            "/follow.reply on part mode notes frames open_db close_db unvoiced level tokens timbre"),
    Address("/vqsynth/panic", (), _panic, "all sound off, every controller and channel state reset",
            "/done /vqsynth/panic"),
    Address("/vqsynth/status", (), _status, "ask for the engine's state",
            "/status.reply voices cpu_load underruns sample_rate latency_ms preset preset_name"),
    Address("/vqsynth/counters", (), _counters,
            "every counter: OSC packets, messages, refusals by kind and datagrams dropped when the receive "
            "buffer was full; MIDI messages, malformed, dropped, refusals; the engine's notes, steals, "
            "underruns (JACK xruns), late callbacks, starved and late blocks, uncached notes; those at zero are "
            "left out (a name missing is 0)", "/counters.reply name value ..."),
    Address("/vqsynth/subscribe", _SUBSCRIBE_ARGS, _subscribe, _SUBSCRIBE_DOC, "/done /vqsynth/subscribe"),
    Address("/vqsynth/notify", _SUBSCRIBE_ARGS, _subscribe, "scsynth-style alias of /vqsynth/subscribe",
            "/done /vqsynth/notify"),
    Address("/vqsynth/learn", (Arg("parameter", "string"),), _learn,
            "MIDI learn: the next CC moved (any channel) is bound to this parameter (an attribute or `volume`; "
            "its other CCs are unbound) and saved to the user's mapping file (`serve`: --learn-file); `off` cancels; "
            "only from senders `serve --allow-writes` permits (default: this machine)",
            "/done /vqsynth/learn, then /vqsynth/learned parameter cc channel file (or /fail)"),
    Address("/vqsynth/state/save", (), _state_save,
            "save the instrument (preset, z, attributes, volume) to the `serve --state` file; only from senders "
            "`--allow-writes` permits", "/done /vqsynth/state/save"),
    Address("/vqsynth/state/load", (), _state_load, "recall the instrument from the `serve --state` file",
            "/done /vqsynth/state/load"),
    Address("/vqsynth/sync", (Arg("id", INT, range=INT32),), _sync,
            "barrier: answered once everything sent before it has been handled", "/synced id"),
]

_EXACT = {a.address: a for a in ADDRESSES if "<" not in a.address}
_PATTERNS = [(re.compile("^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", a.address) + "$"), a)
             for a in ADDRESSES if "<" in a.address]


def lookup(address: str) -> tuple[Address, dict] | None:
    """The table row for an incoming address, with its path parameters."""
    if address in _EXACT:
        return _EXACT[address], {}
    for pattern, row in _PATTERNS:
        m = pattern.match(address)
        if m:
            return row, m.groupdict()
    return None


def convert(row: Address, args: list) -> list:
    """Check the argument count and types; return the values the handler takes."""
    required = sum(1 for a in row.args if not a.optional)
    variadic = bool(row.args) and row.args[-1].many
    if len(args) < required or (not variadic and len(args) > len(row.args)):
        optional = len(row.args) - required
        expected = (f"{required} or more" if variadic else str(required) if not optional else
                    f"{required} or {len(row.args)}" if optional == 1 else f"{required} to {len(row.args)}")
        raise ArgError(f"wrong number of arguments: got {len(args)}, expected {expected} ({signature(row)})")
    specs = [row.args[min(i, len(row.args) - 1)] for i in range(len(args))]
    return [_value(spec, v) for spec, v in zip(specs, args)]


def _value(arg: Arg, v):
    if isinstance(v, float) and not math.isfinite(v):  # whatever the slot, NaN and inf are never meant
        raise ArgError(f"{arg.name} must be a finite number, got {v}")
    if isinstance(v, str):
        if "string" in arg.kind:
            return v
        raise ArgError(f"{arg.name} must be a number, got the string '{v}'")
    if not isinstance(v, (int, float)) or "number" not in arg.kind and "int" not in arg.kind:
        raise ArgError(f"{arg.name} must be {arg.kind.replace('|', ' or ')}, got {type(v).__name__} {v!r}")
    if not math.isfinite(v):
        raise ArgError(f"{arg.name} must be a finite number, got {v}")
    if "int" in arg.kind:
        if v != int(v):
            raise ArgError(f"{arg.name} must be a whole number, got {v}")
        v = int(v)
    if arg.range and not arg.range[0] <= v <= arg.range[1]:
        raise ArgError(f"{arg.name} {v:g} is outside {arg.range[0]:g}..{arg.range[1]:g}")
    return v


def signature(row: Address) -> str:
    parts = []
    for a in row.args:
        text = f"{a.name}..." if a.many else a.name
        parts.append(f"[{text}]" if a.optional else text)
    return " ".join(parts)


def addresses_markdown(rows=ADDRESSES) -> str:
    """The README's OSC table, rendered from ADDRESSES."""
    lines = ["| Address | Arguments (type tags) | Reply | What it does |", "|---|---|---|---|"]
    for r in rows:
        cells = [f"{a.name}{'...' if a.many else ''} `{TAGS[a.kind]}`" for a in r.args]
        args = " ".join(f"[{c}]" if a.optional else c for a, c in zip(r.args, cells))
        lines.append(f"| `{r.address}` | {args or '—'} | {f'`{r.reply}`' if r.reply else '—'} | {r.doc} |")
    return "\n".join(lines)
