"""A JACK MIDI sender in its own process, as a DAW is: `python jack_burst.py N PORT` connects to
PORT and writes N events (note-on, note-off, alternating) in one period, then prints how many
JACK took. Used by the burst tests: a sender in the test's own process shares its GIL."""

import sys
import time

import jack


def main(n: int, target: str):
    client = jack.Client("burst")
    out = client.midi_outports.register("out")
    state = {"armed": False, "written": 0}

    @client.set_process_callback
    def process(frames):
        out.clear_buffer()
        if state["armed"]:
            state["armed"] = False
            for k in range(n):
                note = 60 + (k // 2) % 12
                out.write_midi_event(0, (0x90, note, 100) if k % 2 == 0 else (0x80, note, 0))
                state["written"] += 1

    client.activate()
    client.connect("burst:out", target)
    time.sleep(0.3)
    state["armed"] = True
    time.sleep(0.3)
    print(state["written"], flush=True)
    client.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
