"""Fuzz targets: every path that parses outside input, each with the oracle DESIGN.md sets for it.

One object per parser; calling it with bytes runs one case and raises `ContractBroken` (or lets
an unexpected exception escape) when the contract is broken. perf/fuzz.py drives them with
atheris (coverage-guided, millions of cases); tests/test_fuzz.py drives the same objects with
hypothesis (bounded, CI-sized). Nothing here is mocked: a real Engine, a real OscServer with
real UDP replies, the real MidiController, the real mapping parser and model loader.

- `OscTarget`: a datagram -> OscServer.handle_packet. Each refused message is answered with
  exactly one `/fail <address> <reason>` to the sender and moves one counter; no handler ever
  hits an internal error; what the engine renders afterwards is finite and within [-1, 1].
- `MidiTarget`: a run of MIDI events (JACK and RtMidi hand over whole events) ->
  MidiController.handle_bytes. An event is accepted exactly when it is a well-formed MIDI 1.0
  message (checked against an independent table here), else counted as malformed; nothing raises.
- `MappingTarget`: text -> parse_mapping + resolve: a good Mapping or one MappingError that names
  the file; nothing else.
- `ModelJsonTarget`: model.json (raw bytes, or the valid file with parts replaced by other JSON)
  -> load_model: a Model or one ModelError that names the folder's file; nothing else.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

STRUCTURED = 4  # an OSC case whose first byte is below this is built by structured_osc from the rest
FAIL_COUNTERS = ("malformed", "too far ahead", "unknown address", "bad arguments", "rejected", "errors")


class ContractBroken(AssertionError):
    """The code under test answered an input in a way DESIGN.md does not allow."""


def check(ok, what):
    if not ok:
        raise ContractBroken(what)


# ------------------------------------------------------------------ a byte reader for structure

class Bytes:
    """Reads choices out of fuzz bytes (like atheris' FuzzedDataProvider, usable anywhere)."""

    def __init__(self, data: bytes):
        self.data, self.i = data, 0

    def left(self) -> int:
        return len(self.data) - self.i

    def byte(self) -> int:
        if self.i >= len(self.data):
            return 0
        self.i += 1
        return self.data[self.i - 1]

    def int(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def take(self, n: int) -> bytes:
        out = self.data[self.i:self.i + n]
        self.i += len(out)
        return out

    def pick(self, seq):
        return seq[self.byte() % len(seq)]


# ------------------------------------------------------------------ OSC

class OscTarget:
    """A real OscServer over a real Engine (not started: the harness renders synchronously, so a
    case is deterministic); replies go over real UDP to a sink socket that the oracle reads."""

    def __init__(self, model, render_every: int = 16, polyphony: int = 8, structured: bool = True, drums=None):
        from vqsynth.control.midi import MidiController
        from vqsynth.control.osc_server import OscServer
        from vqsynth.engine.engine import Engine

        self.engine = Engine(model, attack_cache=False, polyphony=polyphony, drums=drums)
        if drums is not None:  # the drum addresses reach a kit whose hits are cached
            for _ in self.engine.drums.builder():
                pass
        self.controller = MidiController(self.engine)
        self.server = OscServer(self.engine, self.controller, host="127.0.0.1", port=0,
                                files_dir=tempfile.gettempdir())  # where the fuzzers' recordings lie
        from vqsynth.control.follow import Follower, live_sender

        self.server.follower = Follower(self.engine, None)  # the /vqsynth/follow/* addresses reach one
        self.server.follower.send = live_sender(self.server.follower)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        self.server.sock = sock  # the server's own socket: replies leave from it, as when started
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sink.bind(("127.0.0.1", 0))
        self.sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sink.setblocking(False)
        self.sender = self.sink.getsockname()
        self.render_every = render_every
        self.structured = structured
        self.out = np.zeros(self.engine.block_size, dtype=np.float32)
        self.cases = 0
        self.outcomes = {k: 0 for k in FAIL_COUNTERS + ("accepted",)}

    def replies(self) -> list:
        from pythonosc.osc_message import OscMessage

        got = []
        while True:
            try:
                dgram = self.sink.recv(65536)
            except BlockingIOError:
                return got
            try:
                msg = OscMessage(dgram)
            except Exception as exc:
                raise ContractBroken(f"the server sent an unparsable reply {dgram[:80]!r}: {exc}")
            got.append((msg.address, msg.params))

    def __call__(self, data: bytes):
        """One case: `data` is the datagram; with `structured`, choices a datagram is built from."""
        if self.structured and data and data[0] < STRUCTURED:
            data = structured_osc(data[1:])
        s = self.server
        before = {k: s.counters[k] for k in FAIL_COUNTERS}
        messages = s.counters["messages"]
        t0 = time.thread_time()  # CPU time: a niced fuzzer may wait for the CPU, that is no hang
        s.handle_packet(data, self.sender, time.monotonic(), time.time())
        elapsed = time.thread_time() - t0
        fails = self.fails = [r for r in self.replies() if r[0] == "/fail"]  # the last case's, for tests
        moved = {k: s.counters[k] - before[k] for k in FAIL_COUNTERS}
        check(moved["errors"] == 0, f"internal error in a handler for {data[:120]!r}: {s.counters}")
        check(s.counters["send errors"] == 0, f"a reply could not be sent for {data[:120]!r}")
        check(len(fails) == sum(moved.values()),
              f"{sum(moved.values())} refusals counted but {len(fails)} /fail replies for {data[:120]!r}")
        for address, args in fails:
            check(len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], str) and args[1],
                  f"/fail must carry <address> <reason>, got {args!r}")
        check(elapsed < 5.0, f"one packet took {elapsed:.2f} s of CPU (a hang): {data[:120]!r}")
        for k, v in moved.items():
            self.outcomes[k] += v
        self.outcomes["accepted"] += s.counters["messages"] - messages - sum(
            v for k, v in moved.items() if k != "malformed")
        self.cases += 1
        if self.cases % self.render_every == 0:
            self.render()

    def render(self, blocks: int = 2):
        """What the render thread and the audio callback would do next: output must stay sane."""
        e = self.engine
        for _ in range(blocks):
            e.render_step(e.clock.now_sample() + e.lead)
            e.process(self.out)
            if not np.all(np.isfinite(self.out)):
                raise ContractBroken(f"non-finite audio out: {self.out[:8]}")
            check(np.abs(self.out).max() <= 1.0, "audio out beyond full scale")
        st = e.status()
        check(0 <= st["voices"] <= e.slots.n, f"voice count {st['voices']}")
        check(e.counters["callback_errors"] == 0, "the audio callback hit an error")
        check(e.counters["nonfinite"] == 0, "a voice rendered NaN/inf (input the table should have refused)")
        check(e.counters["render_errors"] == 0, "the render step failed")

    def close(self):
        self.server.sock.close()
        self.sink.close()


def osc_message(address: str, *args) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, tuple):  # (type tag, value)
            b.add_arg(a[1], a[0])
        else:
            b.add_arg(a)
    return b.build().dgram


def osc_bundle(timetag_ntp: int, *elements: bytes) -> bytes:
    out = b"#bundle\x00" + struct.pack(">Q", timetag_ntp)
    for e in elements:
        out += struct.pack(">i", len(e)) + e
    return out


def ntp(unix_seconds: float) -> int:
    return int((unix_seconds + 2208988800) * 2**32) & (2**64 - 1)


def _osc_string(b: bytes) -> bytes:
    b += b"\x00"
    return b + b"\x00" * (-len(b) % 4)


_NUMBERS = [0, 1, -1, 60, 64, 100, 127, 128, 16, 0.5, -0.5, 1.5, 3e38, -3e38, 1e-45, math.nan, math.inf, -math.inf,
            2**31 - 1, -2**31, 2**63 - 1, 1e300, 99.0, 21, 108, 123, 120, 121, 6, 38, 101, 100, 64.0, 7]


def _osc_arg(r: Bytes) -> tuple[str, bytes]:
    tag = r.pick("iiffdhssbTFNmrt[")
    n = r.pick(_NUMBERS)
    if tag in "ih":
        v = int(n) if math.isfinite(n) else 0
        return tag, (v & (2**64 - 1)).to_bytes(8, "big")[-4 if tag == "i" else -8:]
    if tag == "f":
        return tag, struct.pack(">f", n if not math.isfinite(n) or abs(n) < 3.4e38 else math.copysign(3e38, n))
    if tag == "d":
        return tag, struct.pack(">d", float(n))
    if tag == "s":
        text = r.pick([b"", b"random-1", b"brightness", b"7", b"\xff\xfe", b"x" * r.int(2), b"C4", b"1e999"])
        return tag, _osc_string(text)
    if tag == "b":
        blob = r.take(r.byte())
        return tag, struct.pack(">i", len(blob)) + blob + b"\x00" * (-len(blob) % 4)
    if tag in "mrt":
        return tag, r.take(8 if tag == "t" else 4).ljust(8 if tag == "t" else 4, b"\0")
    if tag == "[":
        inner = [_osc_arg(r) for _ in range(r.byte() % 3)]
        inner = [(t, b) for t, b in inner if t != "["]
        return "[" + "".join(t for t, _ in inner) + "]", b"".join(b for _, b in inner)
    return tag, b""


def structured_osc(data: bytes) -> bytes:
    """A packet built from the fuzz bytes as choices: real addresses, any type tags and values,
    wrong counts, bundles with timetags in the past, now, soon and far ahead, nested."""
    from vqsynth.control.osc_addresses import ADDRESSES

    r = Bytes(data)

    def message() -> bytes:
        address = r.pick([a.address for a in ADDRESSES] + ["/1/fader1", "/1/fader2", "/vqsynth/attr/volume", "/x"])
        address = address.replace("<name>", r.pick(["brightness", "volume", "warmth", "nope", "piano"]))
        address = address.replace("<part>", r.pick(["1", "16", "0", "17", "x", "2.5"]))
        args = [_osc_arg(r) for _ in range(r.byte() % (40 if r.byte() % 8 == 0 else 5))]
        packet = _osc_string(address.encode()) + _osc_string(("," + "".join(t for t, _ in args)).encode())
        packet += b"".join(b for _, b in args)
        if r.byte() % 16 == 0:  # truncated, or with trailing junk
            packet = packet[:len(packet) - r.byte() % 9] if r.byte() % 2 else packet + r.take(4)
        return packet

    def element(depth: int) -> bytes:
        if depth < 9 and r.byte() % 4 == 0:
            tag = r.pick([1, 0, ntp(time.time() - 10), ntp(time.time() + 0.05), ntp(time.time() + 30),
                          ntp(time.time() + 1e6), 2**64 - 1, 2**32])
            return osc_bundle(tag, *[element(depth + 1) for _ in range(r.byte() % 4)])
        return message()

    return element(0)


def osc_seeds() -> list[bytes]:
    """A starting corpus: one good packet per address, plus the classic bad ones."""
    from vqsynth.control.osc_addresses import ADDRESSES

    now = time.time()
    seeds = [
        osc_message("/vqsynth/note/on", 60, 100), osc_message("/vqsynth/note/on", 64.5, 90.0, 7),
        osc_message("/vqsynth/note/off", 60), osc_message("/vqsynth/note/off", 64.5, 7),
        osc_message("/vqsynth/cc", 64, 127), osc_message("/vqsynth/cc", 101, 0, 2), osc_message("/vqsynth/cc", 6, 12),
        osc_message("/vqsynth/cc", 123, 0), osc_message("/vqsynth/cc", 74, 100.0, 16),
        osc_message("/vqsynth/bend", 0.5), osc_message("/vqsynth/bend", -1, 3),
        osc_message("/vqsynth/attr/brightness", 0.25), osc_message("/vqsynth/attr/volume", 1.0),
        osc_message("/vqsynth/preset", 2), osc_message("/vqsynth/preset", "random-1"),
        osc_message("/vqsynth/z", 1234), osc_message("/vqsynth/z", *[0.5] * 32),
        osc_message("/vqsynth/tokens", 1, 2, 3, 4, 5, 12, 0), osc_message("/vqsynth/panic"),
        osc_message("/vqsynth/status"), osc_message("/vqsynth/subscribe", 0), osc_message("/vqsynth/notify", 0),
        osc_message("/vqsynth/sync", 7), osc_message("/1/fader1", 0.5),
        osc_message("/vqsynth/note/on", ("d", 60.0), ("h", 100)), osc_message("/vqsynth/note/on", ("T", True), ("F", False)),
        osc_message("/vqsynth/note/on", ("N", None), ("b", b"\x01\x02\x03")), osc_message("/vqsynth/cc", ("m", (0, 0xB0, 7, 1)), 1),
        osc_message("/vqsynth/note/on", ("f", math.nan), ("f", math.inf)), osc_message("/vqsynth/z", ("f", 3e38)),
        osc_message("/vqsynth/sync", ("d", 1e30)), osc_message("/vqsynth/sync", ("h", 2**63 - 1)),
        osc_message("/vqsynth/preset", "x" * 3000), osc_message("/" + "a" * 5000, ("b", b"\0" * 5000)),
        osc_bundle(1, osc_message("/vqsynth/note/on", 60, 100), osc_message("/vqsynth/note/off", 60)),
        osc_bundle(ntp(now + 0.2), osc_message("/vqsynth/note/on", 62, 90)),
        osc_bundle(ntp(now - 3600), osc_message("/vqsynth/note/on", 62, 90)),
        osc_bundle(ntp(now + 86400 * 365), osc_message("/vqsynth/cc", 64, 0)),
        osc_bundle(0, osc_bundle(1, osc_bundle(1, osc_message("/vqsynth/panic")))),
        osc_bundle(2**64 - 1, osc_message("/vqsynth/status")),
        b"", b"#bundle\x00", b"/\x00\x00\x00", b"/vqsynth/sync\x00\x00\x00,c\x00\x00\x00\x00\x00A",
    ]
    seeds += [osc_message(a.address.replace("<name>", "brightness").replace("<part>", "2")) for a in ADDRESSES]
    rng = np.random.default_rng(0)
    seeds += [bytes([0]) + rng.integers(0, 256, 64, dtype=np.uint8).tobytes() for _ in range(32)]
    return seeds


def osc_dictionary() -> list[bytes]:
    """Tokens libFuzzer splices into inputs (addresses, tags, the bundle header)."""
    from vqsynth.control.osc_addresses import ADDRESSES

    words = [a.address.replace("<name>", "brightness").replace("<part>", "2").encode() + b"\x00" for a in ADDRESSES]
    words += [b"#bundle\x00", b",iif\x00\x00\x00\x00", b",ff\x00", b",s\x00\x00", b",b\x00\x00", b",[i]\x00\x00\x00",
              b",dhT\x00\x00\x00\x00", b",NFm\x00\x00\x00\x00", b",t\x00\x00", b"\x7f\xc0\x00\x00", b"\x7f\x80\x00\x00",
              b"\x00\x00\x00\x01", b"\xff\xff\xff\xff", b"/vqsynth/attr/volume\x00\x00\x00\x00", b"/1/fader1\x00\x00\x00"]
    return words


# ------------------------------------------------------------------ MIDI

# data bytes after the status byte, by status (MIDI 1.0): an independent statement of what is well-formed
_CHANNEL_LENGTHS = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}
_SYSTEM_LENGTHS = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFE: 0, 0xFF: 0}


def midi_well_formed(event: bytes) -> bool:
    if not event or event[0] < 0x80:
        return False  # running status or a stray data byte: JACK and RtMidi never hand these over whole
    status, data = event[0], event[1:]
    if status == 0xF0:
        return len(data) >= 1 and data[-1] == 0xF7 and all(b < 0x80 for b in data[:-1])
    n = _CHANNEL_LENGTHS.get(status >> 4) if status < 0xF0 else _SYSTEM_LENGTHS.get(status)
    return n is not None and len(data) == n and all(b < 0x80 for b in data)


class MidiTarget:
    """Events as JACK's MIDI port or RtMidi's callback hand them over, into the real controller and
    a real Engine: input = [length][bytes] repeated."""

    def __init__(self, model, render_every: int = 16, polyphony: int = 8):
        from vqsynth.control.midi import MidiController
        from vqsynth.engine.engine import Engine

        self.engine = Engine(model, attack_cache=False, polyphony=polyphony)
        self.controller = MidiController(self.engine)
        self.render_every = render_every
        self.out = np.zeros(self.engine.block_size, dtype=np.float32)
        self.cases = 0
        self.events = {"accepted": 0, "malformed": 0}

    @staticmethod
    def split(data: bytes) -> list[bytes]:
        r, events = Bytes(data), []
        while r.left():
            events.append(r.take(r.byte() % 24))
        return events

    def __call__(self, data: bytes):
        c = self.controller.counters
        for event in self.split(data):
            messages, malformed = c["messages"], c["malformed"]
            self.controller.handle_bytes(event, time.monotonic())
            good = midi_well_formed(event)
            check(c["messages"] - messages == int(good) and c["malformed"] - malformed == int(not good),
                  f"event {event.hex()} ({'well-formed' if good else 'malformed'}) was "
                  f"{'handled' if c['messages'] > messages else 'counted malformed' if c['malformed'] > malformed else 'lost'}")
            check(c["handler errors"] == 0, f"the controller failed on {event.hex()}")
            self.events["accepted" if good else "malformed"] += 1
        self.cases += 1
        if self.cases % self.render_every == 0:
            OscTarget.render(self)


def midi_seeds() -> list[bytes]:
    def run(*events):
        return b"".join(bytes([len(e)]) + bytes(e) for e in events)
    return [
        run([0x90, 60, 100], [0x80, 60, 0]), run([0x90, 60, 0]), run([0xB0, 64, 127], [0x91, 61, 1], [0xB0, 64, 0]),
        run([0xB0, 101, 0], [0xB0, 100, 0], [0xB0, 6, 48], [0xB0, 38, 99], [0xE0, 0, 127]),
        run([0xB0, 121, 0], [0xB0, 123, 0], [0xB0, 120, 0], [0xB0, 127, 0]), run([0xC0, 3], [0xC0, 127]),
        run([0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7], [0xF8], [0xFE], [0xFF]), run([0x90, 60], [60, 100]),
        run([0xB0, 1, 64], [0xB0, 33, 127], [0xB0, 74, 1]), run([0xA0, 60, 10], [0xD0, 90], [0xF2, 1, 2]),
        run([0xB0, 99, 1], [0xB0, 98, 2], [0xB0, 6, 3]), run([0xF4], [0xF5], [0xF9], [0xFD], [0xF7]),
    ]


# ------------------------------------------------------------------ mapping files

class MappingTarget:
    def __init__(self, model):
        from vqsynth.control.mapping import targets_for

        self.targets = targets_for(model)
        self.cases = 0
        self.outcomes = {"good": 0, "refused": 0}

    def __call__(self, data: bytes):
        from vqsynth.control.mapping import MappingError, parse_mapping

        text = data.decode("utf-8", "replace")
        try:
            parse_mapping(text, "fuzz.toml").resolve(self.targets)
            self.outcomes["good"] += 1
        except MappingError as exc:
            check(str(exc).startswith("fuzz.toml"), f"a mapping error must name the file: {exc}")
            self.outcomes["refused"] += 1
        self.cases += 1


def mapping_seeds() -> list[bytes]:
    from vqsynth.control.mapping import DEFAULT_MAPPING

    return [DEFAULT_MAPPING.read_bytes(),
            b'[midi]\nbend_range = 12\nout_of_range = "fold"\n[midi.cc.20]\ntarget = "volume"\ncurve = "exp"\n'
            b'range = [0.2, 0.9]\nsmooth_ms = 5\n[midi.cc.52]\ntarget = "warmth"\n',
            b'[osc."/fader"]\ntarget = "brightness"\ninput = [0, 127]\ncurve = "log"\n',
            b'[midi.cc."7"]\ntarget = 3\n', b'midi = 5\n', b'[midi.cc.64]\ntarget = "volume"\n',
            b'[osc."/vqsynth/x"]\ntarget = "volume"\n', b"[[midi]]\n", b"a = 'unterminated\n"]


# ------------------------------------------------------------------ model.json

def _json_value(r: Bytes, depth: int = 0):
    kind = r.byte() % (9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return bool(r.byte() & 1)
    if kind == 2:
        return int.from_bytes(r.take(r.byte() % 9), "little", signed=True)
    if kind == 3:
        return r.pick([0.0, -1.0, 0.5, 1e308, -1e308, math.nan, math.inf, -math.inf, 48000.0, 1e-300])
    if kind == 4:
        return r.take(r.byte() % 12).decode("latin-1")
    if kind == 5:
        return r.pick(["", "generator.onnx", "encoder.onnx", "prior.json", "../model.json", "markov", "resample",
                       "family", "timbre", "/nonexistent", "nul\x00"])
    if kind in (6, 7):
        return [_json_value(r, depth + 1) for _ in range(r.byte() % 5)]
    return {r.pick(["name", "range", "default", "file", "mode", "kind", "z", "seed", "x"]): _json_value(r, depth + 1)
            for _ in range(r.byte() % 4)}


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


class ModelJsonTarget:
    """load_model on a folder with the test model's real ONNX files and a fuzzed model.json.

    Input: first byte even -> the bytes are model.json as they are; odd -> the valid model.json
    with 1..4 parts (chosen by the input) replaced by other JSON values or removed."""

    def __init__(self, model_dir):
        self.valid = json.loads((Path(model_dir) / "model.json").read_text())
        self.folder = Path(tempfile.mkdtemp(prefix="vqs-fuzz-model-"))
        for f in Path(model_dir).iterdir():
            if f.name != "model.json":
                shutil.copy(f, self.folder / f.name)
        self.cases = 0
        self.outcomes = {"loaded": 0, "refused": 0}

    def document(self, data: bytes) -> bytes:
        if not data or data[0] % 2 == 0:
            return data[1:]
        r, meta = Bytes(data[1:]), json.loads(json.dumps(self.valid))
        for _ in range(1 + r.byte() % 4):
            paths = [p for p in _paths(meta) if p]
            if not paths:
                break
            path = paths[r.int(2) % len(paths)]
            parent = meta
            for k in path[:-1]:
                parent = parent[k]
            if r.byte() % 5 == 0:
                del parent[path[-1]]
            else:
                parent[path[-1]] = _json_value(r)
        return json.dumps(meta).encode()

    def __call__(self, data: bytes):
        from vqsynth.model.folder import ModelError, load_model

        (self.folder / "model.json").write_bytes(self.document(data))
        try:
            load_model(self.folder)
            self.outcomes["loaded"] += 1
        except ModelError as exc:
            check(str(self.folder) in str(exc), f"a model error must name the file: {exc}")
            self.outcomes["refused"] += 1
        self.cases += 1

    def close(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def model_json_seeds(model_dir) -> list[bytes]:
    text = (Path(model_dir) / "model.json").read_bytes()
    return [b"\x00" + text, b"\x01\x00\x05\x00\x02", b"\x01\x03\x10\x00\x08\x00", b"\x00{}", b"\x00[]", b"\x00null",
            b"\x01\x01\x30\x00\x07\x02\x03\x01", b"\x00" + text.replace(b"48000", b"NaN").replace(b"16000", b"1e999")]
