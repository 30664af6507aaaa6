"""Errors the engine raises for bad input; control/ turns them into /fail replies and counters."""


class InputError(ValueError):
    """A client asked for something the engine cannot do (bad value, unknown name)."""


class AudioError(RuntimeError):
    """The audio device or backend cannot be opened; the message says what to install or try."""
