"""MIDI learn: arm a parameter, move a knob, and that CC is bound and saved to the user's mapping.

The CC may arrive inside the JACK process callback, so `offer` only notes which CC it was; a
thread of its own edits the file, checks it by loading it, swaps the controller's mapping and
tells the sender. The file is edited, not rewritten: the user's comments and layout stay, and
the new binding keeps the old one's range, curve and smoothing.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from vqsynth.control.mapping import DEFAULT_MAPPING, MappingError, parse_mapping
from vqsynth.control.midi_spec import FIXED


def user_mapping_path() -> Path:
    """Where learned bindings go unless --learn-file or --mapping says otherwise."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "vqsynth" / "mapping.toml"


class MidiLearn:
    """One armed parameter. `done(target, cc, channel, path)` or `failed(why)` is called on the
    learn thread once a CC came (or `timeout` seconds passed, or the controller was re-armed)."""

    def __init__(self, controller, target: str, path: Path | None, done, failed, timeout: float = 60.0):
        if target not in controller.targets:
            raise ValueError(f"unknown parameter '{target}' (known: {', '.join(controller.targets)})")
        self.controller, self.target, self.path = controller, target, path and Path(path)
        self.done, self.failed, self.timeout = done, failed, timeout
        self.moved: tuple[int, int] | None = None  # (channel, cc)
        self.event = threading.Event()
        self.cancelled = self.quiet = False

    def start(self) -> "MidiLearn":
        previous, self.controller.learner = self.controller.learner, self
        if previous is not None:  # superseded: the newer request is the one answered
            previous.cancel(quietly=True)
        threading.Thread(target=self._wait, name="vqsynth-learn", daemon=True).start()
        return self

    def cancel(self, quietly: bool = False):
        self.cancelled, self.quiet = True, quietly
        self.event.set()

    def offer(self, channel: int, number: int) -> bool:
        """A CC moved (any thread, the audio callback included): take it if it is learnable."""
        if self.moved is not None or number in FIXED:
            return False
        self.moved = (channel, number)
        self.event.set()
        return True

    def _wait(self):
        came = self.event.wait(self.timeout)
        if self.controller.learner is self:
            self.controller.learner = None
        if self.cancelled:
            return None if self.quiet else self.failed(f"learning {self.target} was cancelled")
        if not came:
            return self.failed(f"no CC moved within {self.timeout:g} s; {self.target} is unchanged")
        channel, number = self.moved
        try:
            mapping = save_learned(self.path, self.controller.mapping.text, number, self.target,
                                   self.controller.targets)  # no path: checked, kept in memory only
        except (MappingError, OSError) as exc:
            return self.failed(f"could not save CC {number} -> {self.target}: {exc}")
        self.controller.use_mapping(mapping)
        self.done(self.target, number, channel, self.path or "")


def save_learned(path: Path, current_text: str, number: int, target: str, targets):
    """Bind CC `number` to `target` in the mapping file at `path` (created from `current_text`,
    the mapping in use, if it does not exist yet); the target's other CCs are unbound, as one
    knob per parameter is what learn means. Returns the checked Mapping; a file that would not
    load is never written."""
    text = path.read_text(encoding="utf-8") if path is not None and path.exists() else (
        f"# vqsynth mapping: MIDI learn writes here (started from {DEFAULT_MAPPING.name})\n" + current_text)
    old = parse_mapping(text, str(path or "<learned>"))
    drop = {n for n, b in old.cc.items() if b.target == target} | {number}
    kept = []  # the target's old binding's own keys (range, curve, smooth_ms): the knob changes, not them
    for n in sorted(n for n, b in old.cc.items() if b.target == target)[:1]:
        kept = [line for line in _table_body(text, f"midi.cc.{n}")
                if not re.match(r"^\s*(target|bits)\s*=", line) and line.strip() and not line.lstrip().startswith("#")]
    for n in drop:
        text = _remove_table(text, f"midi.cc.{n}")
    text = (text.rstrip("\n") + f'\n\n[midi.cc.{number}]          # learned\ntarget = "{target}"\n'
            + "".join(line if line.endswith("\n") else line + "\n" for line in kept))
    try:
        mapping = parse_mapping(text, str(path or "<learned>"))
    except MappingError:
        mapping = None
    if mapping is None or mapping.cc.get(number) is None or mapping.cc[number].target != target or \
            [n for n, b in mapping.cc.items() if b.target == target and n != number]:
        raise MappingError(f"{path}: its layout is not one MIDI learn can edit (a [midi.cc] table with "
                           f"inline entries?): bind CC {number} to {target} there by hand")
    mapping.resolve(targets)
    if path is None:
        return mapping
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # whole or not at all: a crash mid-write never leaves half a mapping
    return mapping


def _header(name: str):
    return re.compile(r"^\s*\[\s*" + re.escape(name).replace(r"\.", r"\s*\.\s*") + r"\s*\]")


def _table_body(text: str, name: str) -> list:
    """The lines of a `[name]` table after its header, up to the next table header."""
    out, inside = [], False
    header = _header(name)
    for line in text.splitlines(keepends=True):
        if re.match(r"^\s*\[", line):
            inside = bool(header.match(line))
            continue
        if inside:
            out.append(line)
    return out


def _remove_table(text: str, name: str) -> str:
    """Drop a `[name]` table: its header and its lines up to the next table header, except the
    comment lines that stand right above that next header (they head the next section)."""
    out, skipped, skipping = [], [], False
    header = _header(name)
    for line in text.splitlines(keepends=True):
        if re.match(r"^\s*\[", line):
            if skipping:  # give back the comment block that heads this next table
                tail = []
                for held in reversed(skipped):
                    if held.strip() and not held.lstrip().startswith("#"):
                        break
                    tail.append(held)
                out.extend(reversed(tail))
            skipping, skipped = bool(header.match(line)), []
        if skipping:
            skipped.append(line)
        else:
            out.append(line)
    return "".join(out)
