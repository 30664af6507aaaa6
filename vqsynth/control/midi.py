"""MIDI messages -> engine calls, with the per-channel state MIDI semantics need.

The engine knows notes, pedals and per-channel bend, level and attributes; the protocol state
(RPN/NRPN selection, bend ranges, the MSB half of 14-bit controllers, MPE zones) lives here.
MPE: a member channel carries one note, so its bend, pressure and CC74 move that note only; the
manager channel's bend adds to every member's, and its pedal and all-notes-off act on the zone. OSC's /vqsynth/note and /vqsynth/cc come through
the same methods, so both inputs behave the same. Calls may come from several threads (MIDI
consumer, OSC receiver): one lock keeps each message's effect whole.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass

import mido

from vqsynth.control.lograte import RateLimitedLog
from vqsynth.control.mapping import Binding, Mapping, channel_targets, load_mapping, place_pitch, targets_for
from vqsynth.control.midi_spec import (FIXED, LSB_OFFSET, MANAGER_FANOUT, MPE_TIMBRE_CC, RPN_BEND_RANGE, RPN_MPE,
                                       RPN_NULL)
from vqsynth.engine.parts import pan_from_cc

MAX_BEND = 48.0  # semitones: the engine's limit

log = logging.getLogger("vqsynth.control.midi")


@dataclass
class ChannelState:
    bend_range: float
    bend: float = 0.0  # -1..1, so a new range rescales a held bend
    sustain: bool = False
    param_kind: str = "rpn"  # what data entry goes to: an "rpn" or an "nrpn"
    param_msb: int = 127
    param_lsb: int = 127
    data_msb: int = 0  # the last data entry MSB, for a following LSB
    data_lsb: int = 0

    @property
    def param(self) -> tuple[int, int]:
        return (self.param_msb, self.param_lsb)


class MidiController:
    """Translate mido messages into engine calls: `handle(msg, t)` with t = arrival time."""

    def __init__(self, engine, mapping: Mapping | None = None):
        self.engine = engine
        self.targets = targets_for(engine.model)
        self.mapping = (mapping or load_mapping()).resolve(self.targets)
        self.per_note = channel_targets(self.targets)
        self.counters: Counter = Counter()
        self.learner = None  # a MidiLearn waiting for the next CC moved (learn.py)
        self.dump = None  # an EventDump (serve --dump-midi) that sees every message
        self._reset_state()
        self._log = RateLimitedLog(log, "MIDI")
        self._lock = threading.RLock()
        self._by_type = {
            "note_on": lambda m, t: self.note_on(m.channel, m.note, m.velocity, t),
            "note_off": lambda m, t: self.note_off(m.channel, m.note, t),
            "control_change": lambda m, t: self.control_change(m.channel, m.control, m.value, t),
            "pitchwheel": lambda m, t: self.bend(m.channel, m.pitch / (8192 if m.pitch < 0 else 8191), t),
            "aftertouch": lambda m, t: self.pressure(m.channel, m.value, t),
            "program_change": lambda m, t: self.program_change(m.channel, m.program, t),
        }

    def handle_bytes(self, data, t: float | None = None):
        """One MIDI event as a port hands it over (JACK, RtMidi: whole messages, no running
        status): applied, or counted as malformed and logged (rate-limited). Never raises."""
        if data[:1] == b"\xf0":  # SysEx: nothing here uses it, and mido took 18 ms to parse 30 KB inside
            data = bytes(data)    # the JACK callback; checking its framing is C-speed
            if len(data) >= 2 and data[-1] == 0xF7 and (len(data) == 2 or max(data[1:-1]) < 0x80):
                self.counters["messages"] += 1
                self.count("unhandled sysex", f"{len(data)} bytes: this message type does nothing here")
            else:
                self.count("malformed", f"{data[:32].hex()}: a SysEx without its end (f7) or with a status byte inside")
            return
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
        """Apply one message; problems are counted and logged (per kind, rate-limited), never raised."""
        self.counters["messages"] += 1
        if self.dump is not None:
            self.dump.put("midi", msg)
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
        self._log.warn(kind, detail)

    # ------------------------------------------------------------ notes
    def note_on(self, channel: int, pitch: float, velocity: int, t=None, note_id: int | None = None):
        """Start a note (velocity 0 is a note-off); returns the engine's note id or None."""
        if velocity <= 0:
            return self.note_off(channel, pitch, t, note_id)
        with self._lock:
            if self._is_drums(channel):
                if self.engine.drums is None:
                    self.count("drum notes", f"channel {channel + 1} is the GM drum part and no drum model is "
                                             "loaded: not played (serve --drums NAME; mapping midi.drum_channel = 0 "
                                             "plays it as a pitched part)")
                    return None
                if not self.engine.drum_hit(int(round(pitch)), velocity, channel, t=t):
                    self.count("drum notes", f"drum key {pitch:g}: the kit has no hit for it (yet)")
                return None
            placed = self._place(pitch)
            if placed != pitch:
                self.count("out_of_range", f"note {pitch:g} outside {self.engine.model.pitch_range} "
                                           f"({self.mapping.out_of_range})")
            return None if placed is None else self.engine.note_on(placed, velocity, channel, note_id=note_id, t=t)

    def note_off(self, channel: int, pitch: float, t=None, note_id: int | None = None):
        if self._is_drums(channel):
            return
        placed = self._place(pitch)
        if placed is not None:
            with self._lock:
                self.engine.note_off(placed, channel, note_id=note_id, t=t)

    def _is_drums(self, channel: int) -> bool:
        """Channel 10 (midi.drum_channel), unless an MPE zone uses it as a member channel."""
        return channel == self.mapping.drum_channel - 1 and self.member_of[channel] is None

    def program_change(self, channel: int, program: int, t=None):
        """The channel's part takes the program's preset (an MPE member's: its zone's, the one part
        the zone plays through)."""
        manager = self.member_of[channel]
        if self._is_drums(channel) and self.engine.drums is not None:  # GM: a program change there picks the kit
            self.engine.set_drums(kit=self.engine.drums.model.kit_for_program(program))
            return
        self.engine.program_change(program, t=t, channel=channel if manager is None else manager)

    def _place(self, pitch: float) -> float | None:
        lo, hi = self.engine.model.pitch_range
        return place_pitch(pitch, lo, hi, self.mapping.out_of_range)

    # ------------------------------------------------------------ MPE zones
    def _reset_state(self):
        m = self.mapping
        self.channels = [ChannelState(m.bend_range) for _ in range(16)]
        self.msb = [[0] * LSB_OFFSET for _ in range(16)]
        self.zones: dict[int, int] = {}  # manager channel (0 or 15) -> number of member channels
        self.member_of: list[int | None] = [None] * 16  # member channel -> its manager
        for ch in range(16):
            self.engine.route_part(ch, ch)
        if m.mpe_zone != "off":
            self._set_zone(0 if m.mpe_zone == "lower" else 15, m.mpe_members)

    def _set_zone(self, manager: int, members: int):
        """Configure one zone as the MPE spec says: the other zone shrinks to make room, bend
        ranges go to their defaults, and every channel that changed role starts from rest."""
        before = dict(self.zones)
        if members:
            self.zones[manager] = min(members, 15)
        else:
            self.zones.pop(manager, None)
        other = 15 - manager
        if other in self.zones:
            room = 14 - self.zones.get(manager, 0)
            if room > 0:
                self.zones[other] = min(self.zones[other], room)
            else:
                del self.zones[other]
        self.member_of = [None] * 16  # member channel -> its manager
        for mgr, n in self.zones.items():
            for ch in (range(1, 1 + n) if mgr == 0 else range(14, 14 - n, -1)):
                self.member_of[ch] = mgr
        for ch in range(16):  # a zone is one instrument: members play through the manager's part
            self.engine.route_part(ch, ch if self.member_of[ch] is None else self.member_of[ch])
        touched = {manager} | {c for mgr in set(before) | set(self.zones)
                               for c in self._zone(mgr, before) + self._zone(mgr)}
        for c in sorted(touched):
            st = self.channels[c]
            st.bend, st.bend_range = 0.0, self.mapping.mpe_bend_range if self.member_of[c] is not None \
                else self.mapping.bend_range
            self.engine.reset_controllers(c)
            self.engine.pitch_bend(c, 0.0)

    def _zone(self, manager: int, zones: dict | None = None) -> list[int]:
        """A zone's member channels (in `zones`, default the current ones) and its manager."""
        n = (self.zones if zones is None else zones).get(manager, 0)
        if not n:
            return []
        return [manager] + list(range(1, 1 + n) if manager == 0 else range(14, 14 - n, -1))

    def mpe_status(self) -> dict[str, int]:
        """Zones in MIDI's 1-based channel numbers: {"lower": members, "upper": members}."""
        return {("lower" if mgr == 0 else "upper"): n for mgr, n in sorted(self.zones.items())}

    # ------------------------------------------------------------ controllers
    def bend(self, channel: int, amount: float, t=None):
        """Pitch bend, amount in -1..1 of the channel's range; an MPE manager's bend moves its
        whole zone, on top of each member's own."""
        with self._lock:
            self.channels[channel].bend = amount
            self._apply_bend(channel, t)
            if channel in self.zones:
                for member in self._zone(channel)[1:]:
                    self._apply_bend(member, t)

    def _apply_bend(self, channel: int, t=None):
        ch = self.channels[channel]
        semitones = ch.bend * ch.bend_range
        manager = self.member_of[channel]
        if manager is not None:
            semitones += self.channels[manager].bend * self.channels[manager].bend_range
        self.engine.pitch_bend(channel, min(max(semitones, -MAX_BEND), MAX_BEND), t=t)

    def pressure(self, channel: int, value: int, t=None):
        """Channel pressure: on an MPE member channel it moves that note (mpe.pressure)."""
        with self._lock:
            binding = self.mapping.mpe.get("pressure")
            if self.member_of[channel] is None or binding is None:
                self.count("unhandled aftertouch", "channel pressure only acts on MPE member channels")
                return
            self._per_note(binding, channel, value / 127.0, t)

    def _per_note(self, binding: Binding, channel: int, x: float, t):
        self.per_note[binding.target].apply(self.engine, channel, binding.value(x), t)

    def control_change(self, channel: int, number: int, value: int, t=None):
        """A CC: the MIDI spec's meaning where it fixes one (midi_spec.FIXED), else the mapping's;
        on an MPE manager, pedal and channel-mode messages act on its whole zone."""
        with self._lock:
            fixed = FIXED.get(number)
            if fixed is None:
                if self.learner is not None and self.learner.offer(channel, number):
                    return  # MIDI learn took this move; the learn thread binds it, the next move plays
                self._mapped_cc(channel, number, value, t)
            elif number in MANAGER_FANOUT and channel in self.zones:
                for ch in self._zone(channel):
                    getattr(self, f"_{fixed.action}")(ch, number, value, t)
            else:
                getattr(self, f"_{fixed.action}")(channel, number, value, t)

    def _part_level(self, channel, number, value, t):
        """CC7, CC10, CC11: the part's volume, pan, expression (an MPE member's: its zone's part)."""
        manager = self.member_of[channel]
        part = channel if manager is None else manager
        if number == 7:
            self.engine.part_level(part, volume=value, t=t)
        elif number == 11:
            self.engine.part_level(part, expression=value, t=t)
        else:
            self.engine.part_level(part, pan=pan_from_cc(value), t=t)

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
        ch.param_msb, ch.param_lsb = RPN_NULL
        self.msb[channel] = [0] * LSB_OFFSET
        self.engine.reset_controllers(channel, t=t)
        if self.member_of[channel] is None:  # RP-015: expression back to 127; volume and pan stay
            self.engine.part_level(channel, expression=127, t=t)

    def _rpn_select(self, channel, number, value, t):
        self._select(channel, "rpn", number == 101, value)

    def _nrpn_select(self, channel, number, value, t):
        self._select(channel, "nrpn", number == 99, value)

    def _select(self, channel, kind, is_msb, value):
        ch = self.channels[channel]
        if ch.param_kind != kind:  # switching between RPN and NRPN: the other half is stale
            ch.param_kind, ch.param_msb, ch.param_lsb = kind, 127, 127
        if is_msb:
            ch.param_msb = value
        else:
            ch.param_lsb = value

    def _data_entry(self, channel, number, value, t):
        ch = self.channels[channel]
        if ch.param == RPN_NULL:
            return
        if number == 6:
            ch.data_msb, ch.data_lsb = value, 0  # a new MSB clears the LSB, as for any 14-bit pair
        else:
            ch.data_lsb = value
        if ch.param_kind == "nrpn":
            n = ch.param_msb * 128 + ch.param_lsb
            binding = self.mapping.nrpn.get(n)
            if binding is None:
                self.count(f"unmapped NRPN {n}", "no midi.nrpn binding in the mapping file")
                return
            self._move(binding, self._fraction(binding, ch.data_msb, ch.data_lsb, number == 6), t)
        elif ch.param == RPN_BEND_RANGE:
            rng = min(ch.data_msb + ch.data_lsb / 100.0, MAX_BEND)
            manager = self.member_of[channel]
            ranged = self._zone(manager)[1:] if manager is not None else [channel]  # MPE: the whole zone
            for c in ranged:
                self.channels[c].bend_range = rng
            for c in set(ranged) | set(self._zone(channel)[1:]):  # a manager's range moves its members too
                mgr = self.member_of[c]
                if self.channels[c].bend or (mgr is not None and self.channels[mgr].bend):
                    self._apply_bend(c, t)
        elif ch.param == RPN_MPE and number == 6:
            if channel in (0, 15):
                self._set_zone(channel, value)
                log.info("MPE zones now %s", self.mpe_status() or "off")
            else:
                self.count("MPE configuration on a non-manager channel",
                           f"channel {channel + 1}: only channel 1 (lower zone) or 16 (upper zone) may send RPN 6")
        elif ch.param != RPN_MPE:
            self.count(f"unsupported RPN {ch.param_msb}/{ch.param_lsb}",
                       "RPN 0 (bend range) and RPN 6 (MPE configuration) are implemented")

    @staticmethod
    def _fraction(binding: Binding, msb: int, lsb: int, msb_only: bool) -> float:
        """0..1 from a 14-bit pair: a 7-bit binding lets the MSB alone reach the top."""
        if msb_only and binding.bits == 7:
            return msb / 127.0
        return (msb * 128 + lsb) / 16383.0

    def _move(self, binding: Binding, x: float, t):
        self.targets[binding.target].apply(self.engine, binding.value(x), t, smooth_ms=binding.smooth_ms)

    def _mapped_cc(self, channel, number, value, t):
        """A mapped CC; CC n+32 (n < 32) refines a mapped CC n to 14 bits; CC74 on an MPE
        member channel moves that note only."""
        if number == MPE_TIMBRE_CC and self.member_of[channel] is not None and "timbre" in self.mapping.mpe:
            self._per_note(self.mapping.mpe["timbre"], channel, value / 127.0, t)
            return
        if number < LSB_OFFSET:
            binding = self.mapping.cc.get(number)
            self.msb[channel][number] = value
            x = binding and self._fraction(binding, value, 0, True)
        elif number < 2 * LSB_OFFSET and self.mapping.cc.get(number - LSB_OFFSET):
            binding = self.mapping.cc[number - LSB_OFFSET]
            x = self._fraction(binding, self.msb[channel][number - LSB_OFFSET], value, False)
        else:
            binding, x = self.mapping.cc.get(number), value / 127.0
        if binding is None:
            self.count(f"unmapped CC {number}", "no binding in the mapping file")
            return
        self._move(binding, x, t)

    def use_mapping(self, mapping: Mapping):
        """Swap in a new mapping (MIDI learn) without touching notes or channel state."""
        with self._lock:
            self.mapping = mapping.resolve(self.targets)
            self.per_note = channel_targets(self.targets)

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
            self._reset_state()
