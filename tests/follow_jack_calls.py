"""Run by tests/test_follow.py in a process of its own (as the server is): a JackBackend with a
follower whose calls are recorded, a measuring client that plays a WAV into its audio_in, and
the calls printed as JSON. In the test's own process, after the rig tests before it, the two
clients' callbacks ran into xruns every few periods (not understood: 20-234 in 2.4 s).

    python tests/follow_jack_calls.py MODEL_DIR IN.wav
"""

import json
import sys
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe import Probe  # noqa: E402
from vqsynth.control.follow import NOTE_IDS, Follower, FollowSettings  # noqa: E402
from vqsynth.engine.backends import JackBackend  # noqa: E402
from vqsynth.engine.engine import Engine  # noqa: E402
from vqsynth.model.folder import load_model  # noqa: E402


def main():
    model_dir, wav = sys.argv[1:3]
    y, sr = sf.read(wav, dtype="float32")
    import jack

    with jack.Client("size", no_start_server=True) as c:
        period = c.blocksize
    e = Engine(load_model(model_dir), sample_rate=sr, block_size=period, attack_cache=False)
    calls = []
    # each call's sample, as the engine places it when the call comes (at once, as live_sender makes it)
    follower = Follower(e, lambda t, call: calls.append((e.clock.position(t), call.key())),
                        FollowSettings(tokens=False))
    backend = JackBackend(e, follower=follower, connect=False)
    backend.start()
    probe = Probe("measure")
    try:
        probe.connect_out_to(f"{backend.client.name}:audio_in")
        for _ in range(5):  # an xrun drops a period of the input: play it again
            time.sleep(0.3)
            calls.clear()
            follower.serial, follower.last_id = NOTE_IDS, None  # its notes from the start again
            xruns = probe.xruns
            probe.play(y)
            time.sleep(y.size / sr + 0.4)
            xruns = probe.xruns - xruns
            if not xruns:
                break
    finally:
        probe.close()
        backend.stop()
    print(json.dumps({"xruns": xruns, "calls": calls}))


if __name__ == "__main__":
    main()
