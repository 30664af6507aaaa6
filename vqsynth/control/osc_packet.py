"""OSC datagrams: parsing (messages, nested bundles with timetags) and building replies.

python-osc parses single messages; bundles are walked here because its own packet parser
stamps times with time.time(), sorts messages (losing the order the sender meant) and recurses
without a depth limit. Every failure, whatever python-osc raises, becomes one OscParseError.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

BUNDLE = b"#bundle\x00"
NTP_TO_UNIX = 2208988800  # seconds from 1900-01-01 to 1970-01-01
KNOWN_TAGS = set("ifdshbrmtTFN[]")
MAX_DEPTH = 8


class OscParseError(ValueError):
    pass


class Received(NamedTuple):
    address: str
    args: list
    timetag: float | None  # Unix seconds; None: "immediately" (a plain message, or timetag 1)


def parse(dgram: bytes) -> list[Received]:
    """The messages of one datagram, in the order they were sent."""
    try:
        if dgram.startswith(BUNDLE):
            return _bundle(dgram, 0)
        return [Received(*_message(dgram), None)]
    except OscParseError:
        raise
    except Exception as exc:  # python-osc raises a handful of types on bad input
        raise OscParseError(f"malformed packet ({type(exc).__name__}: {exc})") from None


def _message(dgram: bytes) -> tuple[str, list]:
    if not dgram.startswith(b"/"):
        raise OscParseError("not an OSC message or bundle (must start with '/' or '#bundle')")
    if len(dgram) % 4:
        raise OscParseError(f"packet size {len(dgram)} is not a multiple of 4")
    unknown = set(_type_tags(dgram)) - KNOWN_TAGS
    if unknown:
        raise OscParseError(f"unsupported type tag(s) {''.join(sorted(unknown))}")
    msg = OscMessage(dgram)
    return msg.address, msg.params


def _type_tags(dgram: bytes) -> str:
    end = dgram.index(b"\x00")
    start = (end + 4) & ~3
    if start >= len(dgram) or dgram[start:start + 1] != b",":
        return ""
    return dgram[start + 1:dgram.index(b"\x00", start)].decode("ascii")


def _bundle(dgram: bytes, depth: int) -> list[Received]:
    if depth >= MAX_DEPTH:
        raise OscParseError(f"bundles nested deeper than {MAX_DEPTH}")
    if len(dgram) < 16:
        raise OscParseError("bundle shorter than its header")
    seconds, fraction = struct.unpack(">II", dgram[8:16])
    timetag = None if (seconds, fraction) == (0, 1) else seconds - NTP_TO_UNIX + fraction / 2**32
    out, i = [], 16
    while i < len(dgram):
        if i + 4 > len(dgram):
            raise OscParseError("truncated bundle element size")
        (size,) = struct.unpack(">i", dgram[i:i + 4])
        if size <= 0 or size % 4 or i + 4 + size > len(dgram):
            raise OscParseError(f"bundle element size {size} does not fit the packet")
        element = dgram[i + 4:i + 4 + size]
        if element.startswith(BUNDLE):
            out += _bundle(element, depth + 1)
        else:
            out.append(Received(*_message(element), timetag))
        i += 4 + size
    return out


def build(address: str, *args) -> bytes:
    """One OSC message; ints go as i, floats as f, strings as s."""
    builder = OscMessageBuilder(address)
    for a in args:
        builder.add_arg(a)
    return builder.build().dgram
