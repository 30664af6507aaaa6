"""What a SoundFont holds, read from its preset tables (SF2 and SF3 share them): the presets and
the keys each one sounds, so the corpus renders every pitch a program actually has and no other."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

KEY_RANGE, INSTRUMENT, SAMPLE_ID = 43, 41, 53  # SoundFont 2.04 generator numbers


@dataclass(frozen=True)
class Preset:
    bank: int
    program: int
    name: str
    keys: frozenset  # MIDI keys at which at least one sample zone sounds


def _pdta(path: Path) -> dict:
    """The sub-chunks of the 'pdta' list, read without loading the sample data."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise ValueError(f"{path}: not a SoundFont (no RIFF sfbk header)")
        pos, end = 12, 8 + struct.unpack("<I", head[4:8])[0]
        while pos < end:
            f.seek(pos)
            cid, size, kind = struct.unpack("<4sI4s", f.read(12))
            if cid == b"LIST" and kind == b"pdta":
                data = f.read(size - 4)
                out, i = {}, 0
                while i < len(data):
                    sub, n = struct.unpack_from("<4sI", data, i)
                    out[sub.decode()] = data[i + 8:i + 8 + n]
                    i += 8 + n + (n & 1)
                return out
            pos += 8 + size + (size & 1)
    raise ValueError(f"{path}: SoundFont without preset data (pdta)")


def _zones(headers, bags, gens):
    """Per header (all but the terminal one): its zones as {generator: raw 2-byte amount}."""
    out = []
    for h in range(len(headers) - 1):
        zones = []
        for b in range(headers[h][-1], headers[h + 1][-1]):
            zones.append({op: amount for op, amount in gens[bags[b][0]:bags[b + 1][0]]})
        out.append(zones)
    return out


def _split(zones, terminal):
    """(global zone, other zones): a first zone without the terminal generator is global."""
    if zones and terminal not in zones[0]:
        return zones[0], zones[1:]
    return {}, zones


def _range(zone, default=(0, 127)):
    raw = zone.get(KEY_RANGE)
    return (raw[0], raw[1]) if raw else default


def read_presets(path) -> list[Preset]:
    """Every preset of a SoundFont with the keys it sounds, in (bank, program) order."""
    d = _pdta(Path(path))
    rec = lambda name, fmt: list(struct.iter_unpack(fmt, d[name]))  # noqa: E731
    phdr, inst = rec("phdr", "<20sHHHIII"), rec("inst", "<20sH")
    pgen = [(op, amt) for op, amt in ((g[0], g[1:]) for g in struct.iter_unpack("<HBB", d["pgen"]))]
    igen = [(op, amt) for op, amt in ((g[0], g[1:]) for g in struct.iter_unpack("<HBB", d["igen"]))]
    preset_zones = _zones([(p[0], p[3]) for p in phdr], rec("pbag", "<HH"), pgen)
    inst_zones = _zones([(i[0], i[1]) for i in inst], rec("ibag", "<HH"), igen)
    out = []
    for header, zones in zip(phdr, preset_zones):
        glob, zones = _split(zones, INSTRUMENT)
        keys = set()
        for z in zones:
            if INSTRUMENT not in z:
                continue
            plo, phi = _range(z, _range(glob))
            iglob, izones = _split(inst_zones[struct.unpack("<H", bytes(z[INSTRUMENT]))[0]], SAMPLE_ID)
            for iz in izones:
                if SAMPLE_ID in iz:
                    ilo, ihi = _range(iz, _range(iglob))
                    keys.update(range(max(plo, ilo), min(phi, ihi) + 1))
        name = header[0].split(b"\0")[0].decode("latin-1").strip()
        out.append(Preset(header[2], header[1], name, frozenset(keys)))
    return sorted(out, key=lambda p: (p.bank, p.program))
