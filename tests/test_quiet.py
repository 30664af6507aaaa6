"""Probing for ALSA and JACK prints nothing of the libraries' own; afterwards they print again."""

import os
import subprocess
import sys

PROBE = """
import rtmidi, sys
from vqsynth.control.quiet import library_errors_silenced
def attempt():
    try:
        rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="probe").delete()
    except rtmidi.SystemError:
        pass
with library_errors_silenced():
    attempt()
sys.stderr.write("--- outside ---\\n"); sys.stderr.flush()
attempt()
"""


def test_library_errors_are_silenced_inside_only():
    env = dict(os.environ, JACK_NO_START_SERVER="1", JACK_DEFAULT_SERVER="vqsynth-none-here")
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)
    inside, _, outside = r.stderr.partition("--- outside ---")
    assert "Cannot connect" not in inside, inside
    assert "Cannot connect" in outside, r.stderr  # libjack's own printer is back
