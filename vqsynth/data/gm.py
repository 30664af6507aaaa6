"""General MIDI as data: program names, the 16 families, percussion keys and their drum classes."""

from vqsynth.model.constants import FAMILIES

PROGRAMS = [
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)",
    "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
]

# The classes: the three hi-hat articulations apart (they choke each other, and a closed hat
# must not come out open), crash and ride apart (china and splash count as crash, the bell as ride).
DRUM_CLASSES = ["kick", "snare", "tom", "hihat_closed", "hihat_pedal", "hihat_open", "crash", "ride",
                "clap_rim", "other"]

# GM percussion key -> (name, drum class)
DRUM_KEYS = {
    35: ("Acoustic Bass Drum", "kick"), 36: ("Bass Drum 1", "kick"), 37: ("Side Stick", "clap_rim"),
    38: ("Acoustic Snare", "snare"), 39: ("Hand Clap", "clap_rim"), 40: ("Electric Snare", "snare"),
    41: ("Low Floor Tom", "tom"), 42: ("Closed Hi-Hat", "hihat_closed"), 43: ("High Floor Tom", "tom"),
    44: ("Pedal Hi-Hat", "hihat_pedal"), 45: ("Low Tom", "tom"), 46: ("Open Hi-Hat", "hihat_open"),
    47: ("Low-Mid Tom", "tom"), 48: ("Hi-Mid Tom", "tom"), 49: ("Crash Cymbal 1", "crash"),
    50: ("High Tom", "tom"), 51: ("Ride Cymbal 1", "ride"), 52: ("Chinese Cymbal", "crash"),
    53: ("Ride Bell", "ride"), 54: ("Tambourine", "other"), 55: ("Splash Cymbal", "crash"),
    56: ("Cowbell", "other"), 57: ("Crash Cymbal 2", "crash"), 58: ("Vibraslap", "other"),
    59: ("Ride Cymbal 2", "ride"), 60: ("Hi Bongo", "other"), 61: ("Low Bongo", "other"),
    62: ("Mute Hi Conga", "other"), 63: ("Open Hi Conga", "other"), 64: ("Low Conga", "other"),
    65: ("High Timbale", "other"), 66: ("Low Timbale", "other"), 67: ("High Agogo", "other"),
    68: ("Low Agogo", "other"), 69: ("Cabasa", "other"), 70: ("Maracas", "other"), 71: ("Short Whistle", "other"),
    72: ("Long Whistle", "other"), 73: ("Short Guiro", "other"), 74: ("Long Guiro", "other"),
    75: ("Claves", "other"), 76: ("Hi Wood Block", "other"), 77: ("Low Wood Block", "other"),
    78: ("Mute Cuica", "other"), 79: ("Open Cuica", "other"), 80: ("Mute Triangle", "other"),
    81: ("Open Triangle", "other"),
}

# Kits that follow the GS layout for their name put other instruments on some keys: the GS
# orchestra kit has castanets on 39 and timpani on 41..53. Matched on the preset name.
KIT_OVERRIDES = {"orchestra": {39: "other", **{k: "other" for k in range(41, 54)}}}


def family(program: int) -> int:
    """GM family index (0..15) of a melodic program (0..127): programs 8k..8k+7 are family k."""
    return program // 8


def drum_class(key: int, kit_name: str = "") -> int:
    """Index into DRUM_CLASSES of a GM percussion key, with the kit's overrides."""
    cls = DRUM_KEYS[key][1]
    for word, table in KIT_OVERRIDES.items():
        if word in kit_name.lower():
            cls = table.get(key, cls)
    return DRUM_CLASSES.index(cls)


assert len(PROGRAMS) == 128 and len(FAMILIES) == 16
