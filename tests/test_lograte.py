"""Warnings about bad input are keyed by kind (numbers aside) and rate-limited."""

import logging

from vqsynth.control.lograte import RateLimitedLog, kind_key


def test_numbers_are_not_part_of_a_kind():
    assert kind_key("unmapped NRPN 1234") == kind_key("unmapped NRPN 77") == "unmapped NRPN"
    assert kind_key("unsupported RPN 0/5") == "unsupported RPN"
    assert kind_key("malformed") == "malformed"


def test_a_sweep_of_32768_nrpns_writes_one_line_then_one_a_minute(caplog):
    log = RateLimitedLog(logging.getLogger("test.lograte"), "MIDI", every=60.0)
    with caplog.at_level(logging.WARNING):
        for n in range(32768):
            log.warn(f"unmapped NRPN {n}", "no binding", now=n * 1e-3)  # a 33-s sweep
        assert len(caplog.records) == 1
        log.warn("unmapped NRPN 5", "no binding", now=61.0)
        log.warn("unmapped CC 40", "no binding", now=61.0)
    assert len(caplog.records) == 3
    assert "32767 more since the last line" in caplog.records[1].getMessage()


def test_the_midi_controller_counts_every_nrpn_but_logs_one_line(test_model, caplog):
    import mido

    from vqsynth.control.midi import MidiController
    from vqsynth.engine.engine import Engine

    controller = MidiController(Engine(test_model, sample_rate=16000))
    with caplog.at_level(logging.WARNING, logger="vqsynth.control.midi"):
        for n in range(300):
            for cc, value in ((99, n // 128), (98, n % 128), (6, 64)):
                controller.handle(mido.Message("control_change", control=cc, value=value))
    unmapped = [k for k in controller.counters if k.startswith("unmapped NRPN")]
    assert len(unmapped) == 300
    assert len([r for r in caplog.records if "unmapped NRPN" in r.getMessage()]) == 1
