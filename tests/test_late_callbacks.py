"""vqsynth's own overruns are counted apart from the JACK graph's xruns, and a late callback that
spent the period waiting (for the GIL or the CPU) is told from one that spent it working; the GIL
switch interval the server takes is checked before it starts."""

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from rig import OscProbe
from test_server_rig import start_server, stop_server


def counters(osc):
    values = osc.ask("/vqsynth/counters", reply="/counters.reply")
    return Counter(dict(zip(values[::2], values[1::2])))  # a counter at zero is not sent


@pytest.mark.rig
def test_a_stalled_callback_is_counted_late_and_waiting(jack_server, test_model_dir):
    """The whole server is stopped (SIGSTOP) for 20 ms at a time, so its JACK callback misses
    cycles. frames_since_cycle_start alone counts from the newest cycle and sees none of them."""
    proc, ready = start_server(test_model_dir, "--audio", "jack", "--no-midi", "--no-discovery")
    osc = OscProbe(int(re.search(r"OSC udp [\d.]+:(\d+)", ready).group(1)))
    try:
        time.sleep(0.3)
        before = counters(osc)
        for _ in range(20):
            os.kill(proc.pid, signal.SIGSTOP)
            time.sleep(0.02)  # 7 periods of 128 frames at 48 kHz
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.03)
        time.sleep(0.2)
        after = counters(osc)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        osc._sock.close()
        out = stop_server(proc)
    late = after["engine.late_callbacks"] - before["engine.late_callbacks"]
    waiting = after["engine.late_callbacks_entered_late"] - before["engine.late_callbacks_entered_late"]
    assert 10 <= waiting <= late, (late, waiting)  # nearly every stop seen, and seen as waiting
    assert "Traceback" not in out, out


@pytest.mark.parametrize("value", ["0", "-1", "fast", "5000"])
def test_serve_refuses_a_gil_switch_interval_it_cannot_use(value):
    r = subprocess.run([sys.executable, "-m", "vqsynth", "serve", "--audio", "null", "--gil-switch-ms", value],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--gil-switch-ms" in r.stderr and "milliseconds" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
