"""vqsynth's own overruns are counted apart from the JACK graph's xruns, and a late callback that
spent the period waiting (for the GIL or the CPU) is told from one that spent it working; the GIL
switch interval the server takes is checked before it starts."""

import sys
import time

import pytest

from rig import wait_until
from vqsynth.engine.backends import JackBackend
from vqsynth.engine.engine import Engine


@pytest.fixture
def jack_engine(jack_server, test_model):
    engine = Engine(test_model, attack_cache=False, polyphony=4)
    engine.start()
    backend = JackBackend(engine, connect=False)
    backend.start()
    yield engine
    backend.stop()
    engine.stop()


def hold_the_gil(seconds, switch_s):
    """A pure-Python loop that keeps the GIL for `switch_s` at a time (sys.setswitchinterval)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(switch_s)
    try:
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            n += 1
    finally:
        sys.setswitchinterval(before)


@pytest.mark.rig
def test_a_callback_kept_from_the_gil_is_counted_late_and_waiting(jack_engine):
    c = jack_engine.counters
    assert wait_until(lambda: jack_engine.samples_out > 48000 // 10, timeout=5.0)  # the callback runs
    late, waiting = c["late_callbacks"], c["late_callbacks_entered_late"]
    hold_the_gil(0.5, 0.02)  # the JACK thread waits up to 20 ms (7 periods) for the GIL, many times
    assert wait_until(lambda: c["late_callbacks"] > late, timeout=2.0)
    assert c["late_callbacks_entered_late"] > waiting
    assert c["late_callbacks_entered_late"] - waiting <= c["late_callbacks"] - late


@pytest.mark.parametrize("value", ["0", "-1", "fast", "5000"])
def test_serve_refuses_a_gil_switch_interval_it_cannot_use(value):
    import subprocess

    r = subprocess.run([sys.executable, "-m", "vqsynth", "serve", "--audio", "null", "--gil-switch-ms", value],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--gil-switch-ms" in r.stderr and "milliseconds" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
