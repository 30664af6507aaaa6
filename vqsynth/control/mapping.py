"""Mapping files: which MIDI CC or OSC address moves which parameter, and how.

Everything a mapping file may say is described as data (FluidSynth-settings style): SETTINGS
(file-wide keys), BINDING_KEYS (the keys of one CC, NRPN, OSC or MPE binding), CURVES, and the
targets a binding may move (FIXED_TARGETS plus the loaded model's attributes, see `targets_for`;
MPE bindings move one channel's `level` or attribute, see `channel_targets`). The parser, the
error messages and the README tables all read those tables.

A bad file is refused as a whole with `file:line: key: what is wrong`, never half applied.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, NamedTuple

from vqsynth.control.follow import MODES, UNVOICED, FollowSettings
from vqsynth.control.midi_spec import FIXED, LSB_OFFSET

DEFAULT_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "default.toml"


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file, line and key."""


# ------------------------------------------------------------------ tables

class Target(NamedTuple):
    name: str
    default: float
    range: tuple[float, float]
    doc: str
    apply: Callable  # apply(engine, value, t, smooth_ms=None)


def _set_volume(engine, value, t=None, smooth_ms=None):
    engine.set_volume(value, t=t, smooth_ms=20.0 if smooth_ms is None else smooth_ms)


def _set_attr(name):
    return lambda engine, value, t=None, smooth_ms=None: engine.set_attr(name, value, t=t, smooth_ms=smooth_ms)


FIXED_TARGETS = [
    Target("volume", 0.5, (0.0, 1.0), "master gain (linear); the `exp` curve makes a fader feel even",
           _set_volume),
]


def _drum_target(kind, name=None):
    """A drum-part control: engine.set_drums takes effect at once (it rebuilds the hit cache)."""
    def apply(engine, value, t=None, smooth_ms=None):
        if kind == "variation":
            engine.set_drums(variation=value)
        elif kind == "class":
            engine.set_drums(morph={name: value})
        else:
            engine.set_drums(offsets={name: value})
    return apply


def drum_targets() -> list[Target]:
    """The drum part's controls a CC may move: variation, the class morphs, the feature offsets."""
    from vqsynth.data.gm import DRUM_CLASSES
    from vqsynth.data.timbre import ATTRIBUTES

    out = [Target("drums.variation", 0.0, (0.0, 1.0), "drum part: 0 every hit of a key the same, up to 1 each "
                  "hit drawn anew", _drum_target("variation"))]
    out += [Target(f"drums.{c}", 0.0, (0.0, 1.0), f"drum part: pull every key towards {c}", _drum_target("class", c))
            for c in DRUM_CLASSES]
    out += [Target(f"drums.{a}", 0.0, (-1.0, 1.0), f"drum part: shift every key's {a}", _drum_target("attr", a))
            for a in ATTRIBUTES]
    return out


def _channel_level(engine, channel, value, t=None):
    engine.channel_expression(channel, value, t=t)


def _channel_attr(name):
    return lambda engine, channel, value, t=None: engine.channel_attr(channel, name, value, t=t)


def channel_targets(targets: dict[str, Target]) -> dict[str, Target]:
    """What an MPE binding may move on one member channel (one note): its level or any model
    attribute. `apply` here is apply(engine, channel, value, t)."""
    out = {"level": Target("level", 1.0, (0.0, 1.0), "the note's own level (a multiplier on velocity)",
                           _channel_level)}
    fixed = {t.name for t in FIXED_TARGETS}
    for t in targets.values():
        if t.name not in fixed and not t.name.startswith("drums."):
            out[t.name] = t._replace(apply=_channel_attr(t.name))
    return out


def targets_for(model) -> dict[str, Target]:
    """Every target a binding may name: FIXED_TARGETS plus the model's attributes."""
    targets = {t.name: t for t in FIXED_TARGETS}
    for a in model.attributes:
        lo, hi = (float(x) for x in a["range"])
        targets[a["name"]] = Target(a["name"], float(a["default"]), (lo, hi),
                                    a.get("doc", "model attribute"), _set_attr(a["name"]))
    targets.update({t.name: t for t in drum_targets()})
    return targets


CURVE_SPAN = 100.0  # exp/log curves cover 40 dB: half travel of an `exp` fader is about -21 dB
CURVES = {
    "lin": (lambda x: x, "straight line"),
    "exp": (lambda x: (CURVE_SPAN ** x - 1.0) / (CURVE_SPAN - 1.0),
            "slow start, fine control at the low end (gain, like an audio-taper fader)"),
    "log": (lambda x: math.log1p((CURVE_SPAN - 1.0) * x) / math.log(CURVE_SPAN),
            "fast start, fine control at the high end (the inverse of exp)"),
}


class Setting(NamedTuple):
    key: str
    kind: str  # number | choice | string | pair
    default: object
    allowed: tuple | None  # (lo, hi) for numbers, the choices for choice
    doc: str


SETTINGS = [
    Setting("midi.bend_range", "number", 2.0, (0.0, 48.0),
            "pitch-bend range in semitones each way, for every channel until RPN 0 sets it"),
    Setting("midi.out_of_range", "choice", "clamp", ("clamp", "fold", "ignore"),
            "notes outside the model's pitch range: clamp to the nearest edge, fold by octaves "
            "into the range, or ignore; every such note is counted"),
    Setting("midi.drum_channel", "number", 10, (0.0, 16.0),
            "the General MIDI percussion channel (1..16; 0: none): its notes play the drum kit (without a drum "
            "model they are counted and not played, never sounded as pitched notes of the channel's "
            "preset); set 0 to play that channel like any other"),
    Setting("mpe.zone", "choice", "off", ("off", "lower", "upper"),
            "the MPE zone until a sender's MPE configuration message (RPN 6) changes it: lower = "
            "manager channel 1, members 2.., upper = manager 16, members 15 down"),
    Setting("mpe.members", "number", 15, (1.0, 15.0), "member channels of that zone"),
    Setting("mpe.bend_range", "number", 48.0, (0.0, 48.0),
            "member channels' pitch-bend range in semitones (the MPE default; the manager keeps "
            "`midi.bend_range`); RPN 0 on any member sets it for the zone"),
]

_F = FollowSettings()
SETTINGS += [  # the follow part (control/follow.py): what an audio input's part does, from the file
    Setting("follow.mode", "choice", _F.mode, MODES,
            "follow: the input plays the part's notes (onsets, pitch, level, envelope); gate: the part's keys "
            "play them and the input's level shapes them"),
    Setting("follow.gate_on_db", "number", _F.gate_on_db, (-120.0, 0.0),
            "the input level (dBFS, RMS over 10 ms) that opens a note"),
    Setting("follow.gate_off_db", "number", _F.gate_off_db, (-120.0, 0.0),
            "the level a note's input must stay under for `follow.release_ms` to close it (at most gate_on_db)"),
    Setting("follow.release_ms", "number", _F.release_ms, (10.0, 2000.0),
            "how long the input stays under gate_off_db before its note ends"),
    Setting("follow.unvoiced", "choice", _F.unvoiced, UNVOICED,
            "where the input has no pitch inside a note: hold its last pitch, or release the note if it is "
            "also under the gate"),
    Setting("follow.level", "choice", _F.level, (True, False), "the part's expression follows the input's level"),
    Setting("follow.tokens", "choice", _F.tokens, (True, False),
            "each note's envelope from the model's encoder on the input, frame by frame (false: the prior's)"),
    Setting("follow.timbre", "choice", _F.timbre, (True, False),
            "the part's brightness follows the input's (Audio Commons brightness of its last 46 ms)"),
]

FOLLOW_KEYS = tuple(s.key.split(".")[1] for s in SETTINGS if s.key.startswith("follow."))  # FollowSettings fields

# the MPE dimensions a mapping may point elsewhere; their defaults when the file says nothing
MPE_BINDINGS = {
    "pressure": {"target": "level", "range": [0.3, 1.0]},  # channel pressure: never silent before it arrives
    "timbre": None,  # CC74 on a member: by default the target of midi.cc.74, for that note only
}

BINDING_KEYS = [
    Setting("target", "string", None, None, "the parameter moved: `volume` or a model attribute"),
    Setting("range", "pair", None, None,
            "[lo, hi] swept by the control, inside the target's range (default: all of it); "
            "hi < lo inverts"),
    Setting("curve", "choice", "lin", tuple(CURVES), "response curve from control to range"),
    Setting("smooth_ms", "number", 20.0, (0.0, 2000.0),
            "glide time of the parameter (the engine smooths attributes per frame and volume per sample)"),
    Setting("input", "pair", (0.0, 1.0), None,
            "OSC bindings only: the sender's values for lo..hi ([0, 127] for Max/Pd sliders)"),
    Setting("bits", "choice", 7, (7, 14),
            "CC 0..31 and NRPN only: 14 reads MSB + LSB (CC n+32, or data entry 6 + 38) as one 0..16383 "
            "value; with 7 the MSB alone spans the range and an LSB, if one comes, refines it"),
]
KEYS_FOR = {  # which binding keys each kind of binding takes
    "cc": ("target", "range", "curve", "smooth_ms", "bits"),
    "nrpn": ("target", "range", "curve", "smooth_ms", "bits"),
    "osc": ("target", "range", "curve", "smooth_ms", "input"),
    "mpe": ("target", "range", "curve"),
}


# ------------------------------------------------------------------ values

@dataclass(frozen=True)
class Binding:
    """One control -> one target, with the shape of the response."""

    key: tuple[str, ...]  # where it sits in the file, for error messages
    target: str
    range: tuple[float, float] | None
    curve: str = "lin"
    smooth_ms: float = 20.0
    input: tuple[float, float] = (0.0, 1.0)
    bits: int = 7

    def value(self, x: float) -> float:
        """The target value for a control position x in 0..1 (clamped)."""
        lo, hi = self.range
        return lo + CURVES[self.curve][0](min(max(x, 0.0), 1.0)) * (hi - lo)

    def value_from_input(self, v: float) -> float:
        """The target value for a raw OSC value in the binding's input range."""
        a, b = self.input
        return self.value((v - a) / (b - a))

    def input_from_value(self, v: float) -> float | None:
        """The inverse of value_from_input, so feedback moves the sender's own fader; None when
        the value lies outside the binding's range."""
        lo, hi = self.range
        if lo == hi or not min(lo, hi) <= v <= max(lo, hi):
            return None
        inverse = {"lin": "lin", "exp": "log", "log": "exp"}[self.curve]
        x = CURVES[inverse][0]((v - lo) / (hi - lo))
        a, b = self.input
        return a + x * (b - a)


@dataclass(frozen=True)
class Mapping:
    source: str
    bend_range: float
    out_of_range: str
    cc: dict[int, Binding] = field(default_factory=dict)
    osc: dict[str, Binding] = field(default_factory=dict)
    text: str = ""
    nrpn: dict[int, Binding] = field(default_factory=dict)
    mpe_zone: str = "off"
    mpe_members: int = 15
    mpe_bend_range: float = 48.0
    mpe: dict[str, Binding] = field(default_factory=dict)  # pressure, timbre
    drum_channel: int = 10  # 1..16, 0: none
    follow: dict = field(default_factory=dict)  # FollowSettings fields the file sets (follow.*)

    def resolve(self, targets: dict[str, Target]) -> "Mapping":
        """Check every binding's target against the model's and fill in default ranges."""
        def fix(b: Binding, targets=targets) -> Binding:
            if b.target not in targets:
                raise self.error(b.key + ("target",), f"unknown target '{b.target}' "
                                 f"(here: {', '.join(targets)})")
            lo, hi = targets[b.target].range
            if b.range is None:
                return replace(b, range=(lo, hi))
            if not all(min(lo, hi) <= v <= max(lo, hi) for v in b.range):
                raise self.error(b.key + ("range",), f"{list(b.range)} is outside {b.target}'s "
                                 f"range [{lo:g}, {hi:g}]")
            return b
        mpe = dict(self.mpe)
        per_note = channel_targets(targets)
        if "timbre" not in mpe and 74 in self.cc and self.cc[74].target in per_note:
            mpe["timbre"] = replace(self.cc[74], key=("midi", "cc", "74"), bits=7)
        return replace(self, cc={n: fix(b) for n, b in self.cc.items()},
                       osc={a: fix(b) for a, b in self.osc.items()},
                       nrpn={n: fix(b) for n, b in self.nrpn.items()},
                       mpe={k: fix(b, per_note) for k, b in mpe.items()})

    def error(self, key: tuple[str, ...], message: str) -> MappingError:
        line = _line_of(self.text, list(key))
        where = f"{self.source}:{line}" if line else self.source
        return MappingError(f"{where}: {_dotted(key)}: {message}")


def place_pitch(pitch: float, lo: float, hi: float, policy: str) -> float | None:
    """Where a note outside the model's pitch range plays, or None to drop it."""
    if lo <= pitch <= hi:
        return pitch
    if policy == "ignore":
        return None
    if policy == "fold":
        octaves = math.ceil((lo - pitch) / 12) if pitch < lo else -math.ceil((pitch - hi) / 12)
        pitch += 12 * octaves
    return min(max(pitch, lo), hi)


# ------------------------------------------------------------------ loading

def load_mapping(path: str | Path | None = None) -> Mapping:
    """Read and check a mapping file (default: mappings/default.toml)."""
    path = Path(path) if path is not None else DEFAULT_MAPPING
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read mapping file ({exc})") from None
    return parse_mapping(text, str(path))


def parse_mapping(text: str, source: str = "<mapping>") -> Mapping:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        lines = text.splitlines()
        if m and 0 < int(m.group(1)) <= len(lines):
            raise MappingError(f"{source}:{m.group(1)}: {exc} in `{lines[int(m.group(1)) - 1].strip()}`") from None
        raise MappingError(f"{source}: {exc}") from None
    blank = Mapping(source, 2.0, "clamp", text=text)
    _only(blank, (), data, {"midi", "osc", "mpe", "follow"})
    sections = {name: _table(blank, (name,), data.get(name, {})) for name in ("midi", "mpe", "follow")}
    for name, extra in (("midi", {"cc", "nrpn"}), ("mpe", set(MPE_BINDINGS)), ("follow", set())):
        _only(blank, (name,), sections[name], {s.key.split(".")[1] for s in SETTINGS if s.key.startswith(name)} | extra)
    midi = sections["midi"]
    file_wide = {s.key: _check(blank, tuple(s.key.split(".")), s,
                               sections[s.key.split(".")[0]].get(s.key.split(".")[1], s.default))
                 for s in SETTINGS}
    follow = follow_values(blank, sections["follow"])
    cc = {}
    for num, spec in _table(blank, ("midi", "cc"), midi.get("cc", {})).items():
        key = ("midi", "cc", num)
        if not (num.isascii() and num.isdigit()) or not 0 <= int(num) <= 127:  # "²".isdigit(), yet int("²") fails
            raise blank.error(key, "a CC number must be 0..127")
        if int(num) in FIXED:
            raise blank.error(key, f"CC {num} is {FIXED[int(num)].name} ({FIXED[int(num)].doc}); "
                                   "the MIDI spec fixes it")
        cc[int(num)] = _binding(blank, key, spec, "cc")
        if cc[int(num)].bits == 14 and int(num) >= LSB_OFFSET:
            raise blank.error(key + ("bits",), f"a 14-bit CC is 0..31 (its LSB is CC n+{LSB_OFFSET}); "
                                               f"CC {num} has no LSB partner")
    for n in cc:
        if n < LSB_OFFSET and n + LSB_OFFSET in cc:
            raise blank.error(("midi", "cc", str(n + LSB_OFFSET)),
                              f"CC {n + LSB_OFFSET} is the fine (LSB) half of CC {n}, which is mapped")
    nrpn = {}
    for num, spec in _table(blank, ("midi", "nrpn"), midi.get("nrpn", {})).items():
        key = ("midi", "nrpn", num)
        if not (num.isascii() and num.isdigit()) or not 0 <= int(num) <= 16383:
            raise blank.error(key, "an NRPN number is 0..16383 (MSB * 128 + LSB)")
        if int(num) == 16383:
            raise blank.error(key, "NRPN 16383 (127/127) is the null parameter: it selects nothing")
        nrpn[int(num)] = _binding(blank, key, spec, "nrpn")
    mpe = {}
    for name, default in MPE_BINDINGS.items():
        spec = sections["mpe"].get(name, default)
        if spec is not None:
            mpe[name] = _binding(blank, ("mpe", name), spec, "mpe")
    osc = {}
    for address, spec in _table(blank, ("osc",), data.get("osc", {})).items():
        key = ("osc", address)
        if not address.startswith("/") or address.startswith("/vqsynth/"):
            raise blank.error(key, "an OSC address must start with '/' and not with /vqsynth/ "
                                   "(the built-in addresses)")
        osc[address] = _binding(blank, key, spec, "osc")
    return Mapping(source, file_wide["midi.bend_range"], file_wide["midi.out_of_range"], cc, osc, text,
                   nrpn=nrpn, mpe_zone=file_wide["mpe.zone"], mpe_members=file_wide["mpe.members"],
                   mpe_bend_range=file_wide["mpe.bend_range"], mpe=mpe,
                   drum_channel=int(file_wide["midi.drum_channel"]), follow=follow)


def follow_values(m: Mapping, table: dict) -> dict:
    """The follow-part settings `table` names (a mapping file's [follow], a state file's "follow"),
    checked against SETTINGS; what it does not name is left out (the FollowSettings default)."""
    table = _table(m, ("follow",), table)
    names = {s.key.split(".")[1]: s for s in SETTINGS if s.key.split(".")[1] in FOLLOW_KEYS}
    _only(m, ("follow",), table, set(names))
    values = {k: _check(m, ("follow", k), names[k], v) for k, v in table.items()}
    on, off = (values.get(k, names[k].default) for k in ("gate_on_db", "gate_off_db"))
    if off > on:
        raise m.error(("follow", "gate_off_db" if "gate_off_db" in values else "gate_on_db"),
                      f"gate_off_db {off:g} is above follow.gate_on_db ({on:g}): a note would close as it opens")
    return values


def _binding(m: Mapping, key, spec, kind: str) -> Binding:
    spec = _table(m, key, spec)
    allowed = set(KEYS_FOR[kind])
    _only(m, key, spec, allowed)
    if "target" not in spec:
        raise m.error(key, "missing 'target' (the parameter this control moves)")
    values = {s.key: _check(m, key + (s.key,), s, spec.get(s.key, s.default))
              for s in BINDING_KEYS if s.key in allowed}
    if "input" in values and values["input"][0] == values["input"][1]:
        raise m.error(key + ("input",), "the two input values must differ")
    return Binding(key, **values)


def _check(m: Mapping, key, s: Setting, value):
    if s.kind == "pair" and value is not None:
        if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value)):
            raise m.error(key, f"expected [lo, hi] (two numbers), got {value!r}")
        return (float(value[0]), float(value[1]))
    if s.kind == "number":
        if not _is_number(value):
            raise m.error(key, f"expected a number, got {value!r}")
        if not s.allowed[0] <= value <= s.allowed[1]:
            raise m.error(key, f"{value} is outside {s.allowed[0]:g}..{s.allowed[1]:g}")
        if isinstance(s.default, int):
            if value != int(value):
                raise m.error(key, f"expected a whole number, got {value}")
            return int(value)
        return float(value)
    if s.kind == "string" and not isinstance(value, str):
        raise m.error(key, f"expected a string, got {value!r}")
    if s.kind == "choice" and (type(value) not in {type(a) for a in s.allowed} or value not in s.allowed):
        shown = _toml(value) if isinstance(value, bool) else repr(value)
        raise m.error(key, f"{shown} is not one of {', '.join(map(_toml, s.allowed))}")
    return value


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _table(m: Mapping, key, value) -> dict:
    if not isinstance(value, dict):
        raise m.error(key, f"expected a table, got {value!r}")
    return value


def _only(m: Mapping, key, table: dict, allowed: set):
    for k in table:
        if k not in allowed:
            raise m.error(key + (k,), f"unknown key (expected one of: {', '.join(sorted(allowed))})")


# ------------------------------------------------------------------ where a key sits in the text

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_KEY_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)')


def _dotted(key) -> str:
    return ".".join(k if _BARE.match(k) else f'"{k}"' for k in key) or "(top level)"


def _split_key(s: str) -> list[str]:
    return [a or b or c for a, b, c in _KEY_PART.findall(s)]


def _line_of(text: str, key: list[str]) -> int | None:
    """The line that defines `key` (or its nearest enclosing table) in the usual TOML layout."""
    best, table = None, []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = re.match(r"^\[\[?(.+?)\]\]?\s*(#.*)?$", line)
        assign = re.match(r"^([^=#\[]+?)\s*=", line)
        if header:
            table = _split_key(header.group(1))
            here = table
        elif assign:
            here = table + _split_key(assign.group(1))
        else:
            continue
        if here[:len(key)] == key:  # the key itself, or the first thing defined inside it
            return number
        if len(here) < len(key) and here == key[:len(here)] and (best is None or len(here) > best[1]):
            best = (number, len(here))
    return best[0] if best else None


# ------------------------------------------------------------------ docs

def settings_markdown() -> str:
    rows = [f"| `{s.key}` | {_fmt(s.default)} | {_allowed(s)} | {s.doc} |" for s in SETTINGS]
    where = {"cc": "midi.cc.N", "nrpn": "midi.nrpn.N", "osc": 'osc."/addr"', "mpe": "mpe.pressure\\|timbre"}
    for s in BINDING_KEYS:
        keys = " / ".join(f"`{where[kind]}.{s.key}`" for kind in where if s.key in KEYS_FOR[kind])
        rows.append(f"| {keys} | {_fmt(s.default)} | {_allowed(s)} | {s.doc} |")
    rows += [f"| `mpe.{name}` | {default} | table | {doc} |" for name, (default, doc) in MPE_DOCS.items()]
    return "\n".join(["| Key | Default | Allowed | Meaning |", "|---|---|---|---|", *rows])


def targets_markdown(targets: dict[str, Target] | None = None) -> str:
    rows = [f"| `{t.name}` | {t.default:g} | {t.range[0]:g}..{t.range[1]:g} | {t.doc} |"
            for t in (targets or {t.name: t for t in FIXED_TARGETS}).values()]
    return "\n".join(["| Target | Default | Range | Meaning |", "|---|---|---|---|", *rows])


MPE_DOCS = {  # name: (default as the README shows it, what it does)
    "pressure": ("`level` over [0.3, 1]", "channel pressure on a member channel moves that note only: `level` (0.3..1 by default, so "
                "a note is heard before any pressure comes) or a model attribute"),
    "timbre": ("as `midi.cc.74`", "CC74 on a member channel moves that note only (same target, range and curve "
                                  "as `midi.cc.74` unless given)"),
}


def _toml(v) -> str:
    """A value as a TOML file writes it (true, not True)."""
    return str(v).lower() if isinstance(v, bool) else str(v)


def _fmt(v) -> str:
    return "—" if v is None else f"`{_toml(v) if isinstance(v, bool) else repr(v)}`"


def _allowed(s: Setting) -> str:
    if s.kind == "choice":
        return " \\| ".join(f"`{_toml(c)}`" for c in s.allowed)
    if s.kind == "number":
        return f"{s.allowed[0]:g}..{s.allowed[1]:g}"
    return "[lo, hi]" if s.kind == "pair" else "name"
