"""Parts: the 16 MIDI channels' own instruments and levels, as in a General MIDI synth.

A part holds what a GM synth keeps per channel and the voices of that channel read at their
note-on: the instrument (a preset, or a custom z) and its level (CC7 volume, CC11 expression) and
pan (CC10). Bend, pedal and per-channel attributes already live per channel in the engine.
An MPE member channel plays through its zone manager's part (`Engine.route`), so one
instrument sounds across the zone.

Level laws follow FluidSynth and the GM recommendation: CC7 and CC11 are squared (40 log10
of value/127 in dB), except that CC7 100, the GM default every GM file starts from, is unity
here, so a file that never sends CC7 sounds as loud as before parts existed; pan is equal-power.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_PARTS = 16
DRUM_CHANNEL = 9  # MIDI channel 10: the GM percussion part
CC7_DEFAULT = 100


def volume_gain(cc7: float) -> float:
    """CC7 0..127 -> linear gain, unity at the GM default 100 (+4.2 dB at 127)."""
    return (min(max(cc7, 0.0), 127.0) / CC7_DEFAULT) ** 2


def expression_gain(cc11: float) -> float:
    """CC11 0..127 -> linear gain, unity at 127 (its GM default)."""
    return (min(max(cc11, 0.0), 127.0) / 127.0) ** 2


def pan_gains(pan: float) -> tuple[float, float]:
    """Pan -1 (left) .. 1 (right) -> equal-power (left, right) gains: -3 dB each in the centre,
    so a voice keeps its loudness wherever it is panned, and a hard pan is silent on the other side."""
    theta = (min(max(pan, -1.0), 1.0) + 1.0) * np.pi / 4.0
    return float(np.cos(theta)), float(np.sin(theta))


def pan_from_cc(cc10: int) -> float:
    """CC10 0..127 -> -1..1, with 64 the centre (and 0 and 1 both hard left, as MIDI has no -64)."""
    return max(-1.0, (int(cc10) - 64) / 63.0 if cc10 >= 64 else (int(cc10) - 64) / 64.0)


@dataclass
class Part:
    preset: int | None  # None: a custom z (OSC /vqsynth/z)
    z: np.ndarray
    instrument: object  # the attack cache's key: ("preset", i) or ("z", serial); equal keys, equal z
    volume: float = float(CC7_DEFAULT)  # CC7 as received
    expression: float = 127.0  # CC11 as received
    pan: float = 0.0  # -1..1

    @property
    def gain(self) -> float:
        return volume_gain(self.volume) * expression_gain(self.expression)
