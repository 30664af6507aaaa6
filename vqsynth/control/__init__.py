"""Control: MIDI and OSC in, mappings from controls to the model's parameters."""

from vqsynth.control.mapping import Mapping, MappingError, load_mapping
from vqsynth.control.midi import MidiController
from vqsynth.control.midi_input import MidiInput, MidiUnavailable
from vqsynth.control.osc_addresses import ADDRESSES, addresses_markdown
from vqsynth.control.osc_server import OscPortInUse, OscServer

__all__ = ["ADDRESSES", "Mapping", "MappingError", "MidiController", "MidiInput", "MidiUnavailable",
           "OscPortInUse", "OscServer", "addresses_markdown", "load_mapping"]
