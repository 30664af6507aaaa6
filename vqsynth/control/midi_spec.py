"""MIDI semantics as data: the controllers whose meaning the MIDI spec fixes.

One table, read by the translation layer (midi.py), by the mapping validator (a mapping may
not take these numbers over) and by the docs. References: MIDI 1.0 spec, RP-015 (reset all
controllers), RP-018 (RPN/NRPN).
"""

from __future__ import annotations

from typing import NamedTuple


class FixedCC(NamedTuple):
    number: int
    name: str
    action: str  # the MidiController method (`_<action>`) that implements it
    doc: str


FIXED_CCS = [
    FixedCC(6, "data_entry", "data_entry",
            "data entry MSB: RPN 0 semitones, RPN 6 MPE member count, or a mapped NRPN's value (LSB set to 0)"),
    FixedCC(7, "volume", "part_level", "the channel's part volume, GM law: (value/100)^2, so 100 (the default) is unity"),
    FixedCC(10, "pan", "part_level", "the channel's part pan: 0 left, 64 centre, 127 right (equal power)"),
    FixedCC(11, "expression", "part_level", "the channel's part expression: (value/127)^2 on top of the volume"),
    FixedCC(38, "data_entry_lsb", "data_entry", "data entry LSB: RPN 0 cents, or the fine half of a mapped NRPN"),
    FixedCC(64, "sustain", "sustain", "sustain pedal: >= 64 holds released notes until the pedal lifts (on an MPE manager: its whole zone)"),
    FixedCC(98, "nrpn_lsb", "nrpn_select", "NRPN select LSB: data entry then moves the `midi.nrpn.N` binding"),
    FixedCC(99, "nrpn_msb", "nrpn_select", "NRPN select MSB (N = MSB * 128 + LSB; 127/127 = none)"),
    FixedCC(100, "rpn_lsb", "rpn_select",
            "RPN select LSB (RPN 0 = pitch-bend range, RPN 6 = MPE configuration; 127/127 = none)"),
    FixedCC(101, "rpn_msb", "rpn_select", "RPN select MSB"),
    FixedCC(120, "all_sound_off", "all_sound_off", "silence the channel at once (on an MPE manager: its whole zone)"),
    FixedCC(121, "reset_all_controllers", "reset_all_controllers",
            "RP-015: bend to centre, pedal up, RPN deselected; keeps volume, program and the bend range"),
    FixedCC(123, "all_notes_off", "all_notes_off", "release the channel's notes (the sustain pedal still holds them)"),
    FixedCC(124, "omni_off", "all_notes_off", "mode change: acts as all notes off, as the MIDI spec requires"),
    FixedCC(125, "omni_on", "all_notes_off", "mode change: acts as all notes off"),
    FixedCC(126, "mono_on", "all_notes_off", "mode change: acts as all notes off (mono mode is not implemented)"),
    FixedCC(127, "poly_on", "all_notes_off", "mode change: acts as all notes off"),
]
FIXED = {c.number: c for c in FIXED_CCS}

RPN_NULL = (127, 127)
RPN_BEND_RANGE = (0, 0)
RPN_MPE = (0, 6)  # MPE configuration message: data entry MSB = member channels of the manager's zone
MPE_TIMBRE_CC = 74  # the MPE spec's third dimension on member channels
MANAGER_FANOUT = (64, 120, 121, 123)  # on an MPE manager channel these act on its whole zone
LSB_OFFSET = 32  # CC n (0..31) is the MSB of a 14-bit controller whose LSB is CC n+32


def fixed_ccs_markdown() -> str:
    """The README's table of CCs with a fixed meaning."""
    rows = [f"| {c.number} | `{c.name}` | {c.doc} |" for c in FIXED_CCS]
    return "\n".join(["| CC | Name | What it does |", "|---|---|---|", *rows])
