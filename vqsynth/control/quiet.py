"""Silence what ALSA and libjack print to stderr while vqsynth probes for a MIDI system.

Looking for ALSA's sequencer and a JACK server prints six lines of library errors before
vqsynth's first line when neither is there ("ALSA lib seq_hw.c ... failed", "Cannot connect to
server socket", ...); vqsynth then says once, in its own words, what is missing and how to fix
it (midi_input.HINTS). Both libraries let a program replace their error printer: ALSA with
snd_lib_error_set_handler, libjack with jack_set_error_function. Outside the probe their own
printers are back in place, so a real failure later is still reported.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

_ALSA_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
_JACK_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
_silent_alsa = _ALSA_HANDLER(lambda *args: None)  # kept alive: the library holds the pointer
_silent_jack = _JACK_HANDLER(lambda msg: None)


def _lib(path):
    try:
        return ctypes.CDLL(path) if path else None
    except OSError:
        return None


def _jacks() -> list:
    """The system's libjack and the one python-rtmidi's wheel bundles (python_rtmidi.libs/):
    rtmidi prints through its own copy."""
    import glob
    from pathlib import Path

    import rtmidi

    bundled = glob.glob(str(Path(rtmidi.__file__).resolve().parent.parent / "python_rtmidi*" / "libjack*.so*"))
    return [lib for lib in (_lib(p) for p in [ctypes.util.find_library("jack"), *bundled]) if lib is not None]


def _pointer(lib, name):
    """The current value of a function-pointer variable libjack exports (None if it has none)."""
    try:
        return ctypes.c_void_p.in_dll(lib, name).value
    except ValueError:
        return None


@contextlib.contextmanager
def library_errors_silenced():
    alsa = _lib(ctypes.util.find_library("asound"))
    if alsa is not None:
        alsa.snd_lib_error_set_handler(_silent_alsa)
    saved = []
    for jack in _jacks():
        saved.append((jack, {name: _pointer(jack, f"jack_{name}_callback") for name in ("error", "info")}))
        jack.jack_set_error_function(_silent_jack)
        jack.jack_set_info_function(_silent_jack)
    try:
        yield
    finally:
        if alsa is not None:
            alsa.snd_lib_error_set_handler(None)  # ALSA's own printer again
        for jack, pointers in saved:
            for name, value in pointers.items():
                if value:  # libjack's own printers again
                    getattr(jack, f"jack_set_{name}_function")(ctypes.cast(value, _JACK_HANDLER))
