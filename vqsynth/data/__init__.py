"""The training corpus: single notes rendered from SoundFonts, with labels and timbral attributes.

gm.py          General MIDI tables (programs, 16 families, percussion keys -> drum classes)
soundfont.py   the presets of a SoundFont and the keys each one sounds
render.py      in-process FluidSynth note renderer
timbre.py      the seven Audio Commons timbral attributes and loudness (numpy/scipy only)
pitch.py       a YIN pitch tracker
build.py       `vqsynth data build`: plan, render on workers, shards, splits, statistics
corpus.py      the on-disk format and the `Corpus` reader for trainers
cli.py         `vqsynth data build | info | verify`
"""
