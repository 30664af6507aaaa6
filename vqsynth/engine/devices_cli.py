"""`vqsynth devices`: the audio outputs PortAudio sees and the MIDI ports each MIDI API sees."""

from __future__ import annotations


def add_arguments(parser):
    pass


def run(args):
    from rich.console import Console
    from rich.table import Table

    from vqsynth.engine.backends import import_sounddevice
    from vqsynth.engine.errors import AudioError

    console = Console()
    try:
        sd = import_sounddevice()
        table = Table(title="Audio outputs (use --device INDEX or a name fragment)")
        for col in ("#", "name", "host API", "channels", "default rate"):
            table.add_column(col)
        apis = sd.query_hostapis()
        for i, d in enumerate(sd.query_devices()):
            if d["max_output_channels"] > 0:
                table.add_row(str(i), d["name"], apis[d["hostapi"]]["name"], str(d["max_output_channels"]),
                              f"{d['default_samplerate']:.0f}")
        console.print(table if table.row_count else "No audio outputs: use --audio null, or start JACK/PulseAudio.")
    except AudioError as exc:
        console.print(f"[red]audio:[/red] {exc}")
    import rtmidi

    from vqsynth.control.midi_input import APIS

    table = Table(title="MIDI inputs (use --midi-port NAME-PREFIX)")
    table.add_column("API")
    table.add_column("ports")
    for name, api in APIS.items():
        if api not in rtmidi.get_compiled_api():
            continue
        try:
            probe = rtmidi.MidiIn(api, name="vqsynth-devices")
            ports = probe.get_ports()
            probe.delete()
            table.add_row(name, ", ".join(ports) or "(none)")
        except Exception as exc:
            table.add_row(name, f"unavailable: {str(exc).splitlines()[0]}")
    console.print(table)
    return 0
