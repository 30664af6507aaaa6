"""Shared fixtures (the test model ones live in model_fixtures.py)."""

pytest_plugins = ["model_fixtures", "osc_fixtures"]

import shutil

import pytest

from rig import jack_name, start_jackd, stop_jackd


@pytest.fixture
def jack_server(monkeypatch):
    """A private `jackd -d dummy` (48 kHz, 128 frames) for one test; clients find it through
    JACK_DEFAULT_SERVER. Yields the server name."""
    if shutil.which("jackd") is None:
        pytest.fail("jackd is not installed: run ./setup.sh --test (apt-get install jackd2)")
    name = jack_name()
    proc = start_jackd(name)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    yield name
    stop_jackd(proc)
