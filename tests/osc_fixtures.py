"""Fixtures of the OSC tests: a live engine (null audio), an OscServer on loopback in front of it,
and a python-osc probe that reads the server's answers."""

import pytest

from rig import LiveEngine, OscProbe
from vqsynth.control.osc_server import OscServer


@pytest.fixture
def live(test_model):
    live = LiveEngine(test_model)
    yield live.engine
    live.close()


@pytest.fixture
def server(live):
    with OscServer(live, host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def probe(server):
    probe = OscProbe(server.port)
    yield probe
    probe.close()


def first_reply(engine, address, args=(), timeout=2.0, **server_options):
    """Start an OscServer with `server_options` in front of `engine`, send one message, and return
    (server, its first reply (address, args) or None)."""
    with OscServer(engine, host="127.0.0.1", port=0, **server_options) as server:
        probe = OscProbe(server.port)
        try:
            probe.send_message(address, list(args))
            return server, probe.next_reply(timeout=timeout)
        finally:
            probe.close()
