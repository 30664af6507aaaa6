"""MIDI messages -> engine calls, with the per-channel state MIDI semantics need.

The engine knows notes, pedals and bends; the protocol state (RPN selection, bend range, the
MSB half of 14-bit controllers) lives here. OSC's /vqsynth/note and /vqsynth/cc come through
the same methods, so both inputs behave the same. Calls may come from several threads (MIDI
consumer, OSC receiver): one lock keeps each message's effect whole.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass

import mido

from vqsynth.control.mapping import Mapping, load_mapping, place_pitch, targets_for
from vqsynth.control.midi_spec import FIXED, LSB_OFFSET, RPN_BEND_RANGE, RPN_NULL

log = logging.getLogger("vqsynth.control.midi")


@dataclass
class ChannelState:
    bend_range: float
    bend: float = 0.0  # -1..1, so a new range rescales a held bend
    sustain: bool = False
    rpn_msb: int = 127
    rpn_lsb: int = 127
    data_msb: int = 0  # the last data entry MSB, for a following LSB (cents)

    @property
    def rpn(self) -> tuple[int, int]:
        return (self.rpn_msb, self.rpn_lsb)


class MidiController:
    """Translate mido messages into engine calls: `handle(msg, t)` with t = arrival time."""

    def __init__(self, engine, mapping: Mapping | None = None):
        self.engine = engine
        self.targets = targets_for(engine.model)
        self.mapping = (mapping or load_mapping()).resolve(self.targets)
        self.channels = [ChannelState(self.mapping.bend_range) for _ in range(16)]
        self.msb = [[0] * LSB_OFFSET for _ in range(16)]
        self.counters: Counter = Counter()
        self._logged: set = set()
        self._lock = threading.RLock()
        self._by_type = {
            "note_on": lambda m, t: self.note_on(m.channel, m.note, m.velocity, t),
            "note_off": lambda m, t: self.note_off(m.channel, m.note, t),
            "control_change": lambda m, t: self.control_change(m.channel, m.control, m.value, t),
            "pitchwheel": lambda m, t: self.bend(m.channel, m.pitch / (8192 if m.pitch < 0 else 8191), t),
            "program_change": lambda m, t: self.engine.set_preset(m.program, t=t),
        }

    def handle_bytes(self, data, t: float | None = None):
        """One MIDI event as a port hands it over (JACK, RtMidi: whole messages, no running
        status): applied, or counted as malformed and logged once. Never raises."""
        try:
            msg = mido.Message.from_bytes(data)
        except Exception as exc:  # mido 1.3 raises IndexError, not ValueError, on a truncated pitch bend (e0 00)
            self.count("malformed", f"{bytes(data)[:32].hex()}: {type(exc).__name__}: {exc}")
            return
        if len(msg.bytes()) != len(data):  # mido reads a pitch bend from the first 3 bytes and ignores the rest
            self.count("malformed", f"{bytes(data)[:32].hex()}: {len(data)} bytes for a {msg.type}")
            return
        self.handle(msg, t)

    def handle(self, msg: mido.Message, t: float | None = None):
        """Apply one message; problems are counted and logged once per kind, never raised."""
        self.counters["messages"] += 1
        handler = self._by_type.get(msg.type)
        if handler is None:
            self.count(f"unhandled {msg.type}", "this message type does nothing here")
            return
        with self._lock:
            try:
                handler(msg, t)
            except ValueError as exc:  # the engine's InputError: a value it cannot use
                self.count(f"rejected {msg.type}", str(exc))
            except Exception as exc:  # a bug: counted and logged, never raised into a port's thread
                log.exception("MIDI handler failed on %s", msg)
                self.count("handler errors", repr(exc))

    def count(self, kind: str, detail: str = ""):
        self.counters[kind] += 1
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("MIDI %s: %s (counted; logged once)", kind, detail)

    # ------------------------------------------------------------ notes
    def note_on(self, channel: int, pitch: float, velocity: int, t=None, note_id: int | None = None):
        """Start a note (velocity 0 is a note-off); returns the engine's note id or None."""
        if velocity <= 0:
            return self.note_off(channel, pitch, t, note_id)
        with self._lock:
            placed = self._place(pitch)
            if placed != pitch:
                self.count("out_of_range", f"note {pitch:g} outside {self.engine.model.pitch_range} "
                                           f"({self.mapping.out_of_range})")
            return None if placed is None else self.engine.note_on(placed, velocity, channel, note_id=note_id, t=t)

    def note_off(self, channel: int, pitch: float, t=None, note_id: int | None = None):
        placed = self._place(pitch)
        if placed is not None:
            with self._lock:
                self.engine.note_off(placed, channel, note_id=note_id, t=t)

    def _place(self, pitch: float) -> float | None:
        lo, hi = self.engine.model.pitch_range
        return place_pitch(pitch, lo, hi, self.mapping.out_of_range)

    # ------------------------------------------------------------ controllers
    def bend(self, channel: int, amount: float, t=None):
        """Pitch bend, amount in -1..1 of the channel's range."""
        with self._lock:
            ch = self.channels[channel]
            ch.bend = amount
            self.engine.pitch_bend(channel, amount * ch.bend_range, t=t)

    def control_change(self, channel: int, number: int, value: int, t=None):
        """A CC: the MIDI spec's meaning where it fixes one (midi_spec.FIXED), else the mapping's."""
        with self._lock:
            fixed = FIXED.get(number)
            if fixed is None:
                self._mapped_cc(channel, number, value, t)
            else:
                getattr(self, f"_{fixed.action}")(channel, number, value, t)

    def _sustain(self, channel, number, value, t):
        ch = self.channels[channel]
        if (value >= 64) != ch.sustain:  # continuous pedals send many values: pass changes only
            ch.sustain = value >= 64
            self.engine.sustain(channel, ch.sustain, t=t)

    def _all_sound_off(self, channel, number, value, t):
        self.engine.all_sound_off(channel, t=t)

    def _all_notes_off(self, channel, number, value, t):
        self.engine.all_notes_off(channel, t=t)

    def _reset_all_controllers(self, channel, number, value, t):
        """RP-015: bend centred, pedal up, RPN deselected; the bend range stays."""
        ch = self.channels[channel]
        ch.bend, ch.sustain = 0.0, False
        ch.rpn_msb, ch.rpn_lsb = RPN_NULL
        self.msb[channel] = [0] * LSB_OFFSET
        self.engine.reset_controllers(channel, t=t)

    def _rpn_select(self, channel, number, value, t):
        ch = self.channels[channel]
        if number == 101:
            ch.rpn_msb = value
        else:
            ch.rpn_lsb = value

    def _nrpn_select(self, channel, number, value, t):
        self.channels[channel].rpn_msb, self.channels[channel].rpn_lsb = RPN_NULL

    def _data_entry(self, channel, number, value, t):
        ch = self.channels[channel]
        if ch.rpn == RPN_NULL:
            return
        if ch.rpn != RPN_BEND_RANGE:
            self.count(f"unsupported RPN {ch.rpn_msb}/{ch.rpn_lsb}", "only RPN 0 (bend range) is implemented")
            return
        if number == 6:
            ch.data_msb = value
            ch.bend_range = float(value)  # a new MSB clears the cents, as for any 14-bit pair
        else:
            ch.bend_range = ch.data_msb + value / 100.0
        ch.bend_range = min(ch.bend_range, 48.0)  # the engine's limit
        if ch.bend:
            self.engine.pitch_bend(channel, ch.bend * ch.bend_range, t=t)

    def _mapped_cc(self, channel, number, value, t):
        """A mapped CC; CC n+32 (n < 32) refines a mapped CC n to 14 bits."""
        if number < LSB_OFFSET:
            binding, x = self.mapping.cc.get(number), value / 127.0
            self.msb[channel][number] = value
        elif number < 2 * LSB_OFFSET and self.mapping.cc.get(number - LSB_OFFSET):
            binding = self.mapping.cc[number - LSB_OFFSET]
            x = (self.msb[channel][number - LSB_OFFSET] * 128 + value) / 16383.0
        else:
            binding, x = self.mapping.cc.get(number), value / 127.0
        if binding is None:
            self.count(f"unmapped CC {number}", "no binding in the mapping file")
            return
        self.targets[binding.target].apply(self.engine, binding.value(x), t, smooth_ms=binding.smooth_ms)

    def set_target(self, name: str, value: float, t=None):
        """Move a target (volume or an attribute) to a value in its own range."""
        target = self.targets.get(name)
        if target is None:
            raise ValueError(f"unknown target '{name}' (known: {', '.join(self.targets)})")
        lo, hi = target.range
        if not lo <= value <= hi:
            raise ValueError(f"{name} {value:g} is outside {lo:g}..{hi:g}")
        target.apply(self.engine, value, t)

    def panic(self):
        """Everything off and every channel's protocol state back to the start."""
        with self._lock:
            self.engine.panic()
            self.channels = [ChannelState(self.mapping.bend_range) for _ in range(16)]
            self.msb = [[0] * LSB_OFFSET for _ in range(16)]
