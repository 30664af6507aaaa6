"""The soak's witnesses (perf/flood.py, perf/witness.c) count a stalled client's late cycles as
vqsynth's CycleWatch does: the soak's floor for "any client on this machine" rests on them."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "perf"))
import flood  # noqa: E402


@pytest.mark.rig
@pytest.mark.parametrize("kind", ["python", "native"])
def test_a_witness_counts_each_stall_as_a_late_cycle_it_waited_for(jack_server, kind):
    seconds = 2.0
    witness = (flood.Witness if kind == "python" else flood.NativeWitness)(jack_server, seconds)
    pid = witness.proc.pid
    try:
        time.sleep(0.3)
        for _ in range(10):
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.02)  # 7 periods of 128 frames at 48 kHz
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
    finally:
        os.kill(pid, signal.SIGCONT)
    r = witness.result(timeout=30)
    assert 8 <= r["late_callbacks_entered_late"] <= r["late_callbacks"] <= 20, r
    assert 0.5 * 375 * seconds < r["periods"] <= 375 * seconds + 20, r  # it ran, at the rig's period
