"""Warnings about bad input, keyed by kind and rate-limited, so no sender can flood the log.

A kind's numbers are not part of its key ("unmapped NRPN 1234" and "unmapped NRPN 77" are one
kind: an NRPN sweep once wrote 32,768 warnings). The first of a kind is logged at once; after
that at most one line per `every` seconds, saying how many came meanwhile. The counters keep
the exact numbers either way."""

from __future__ import annotations

import re
import time

_NUMBERS = re.compile(r"(\s+\S*\d\S*)+$")


def kind_key(kind: str) -> str:
    """'unmapped CC 40' -> 'unmapped CC'; 'unsupported RPN 0/5' -> 'unsupported RPN'."""
    return _NUMBERS.sub("", kind)


class RateLimitedLog:
    def __init__(self, logger, prefix: str, every: float = 60.0):
        self.logger, self.prefix, self.every = logger, prefix, every
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warn(self, kind: str, detail: str, now: float | None = None) -> bool:
        """Log this one if its kind's turn has come; returns whether it was written."""
        key = kind_key(kind)
        now = time.monotonic() if now is None else now
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._quiet[key] = self._quiet.get(key, 0) + 1
            return False
        more = self._quiet.pop(key, 0)
        self._last[key] = now
        tail = f"; {more} more since the last line" if more else ""
        self.logger.warning("%s %s: %s (counted; logged at most once a minute%s)", self.prefix, kind, detail, tail)
        return True
