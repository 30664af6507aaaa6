"""Names the model, the corpus and the controls share."""

# The Audio Commons timbral attributes DrumGAN conditions on, in the generator's input order.
TIMBRE_ATTRIBUTES = [
    ("brightness", "high-frequency energy (Audio Commons timbral brightness), 0..1"),
    ("hardness", "attack hardness (Audio Commons timbral hardness), 0..1"),
    ("depth", "low-frequency depth (Audio Commons timbral depth), 0..1"),
    ("roughness", "beating / roughness (Audio Commons timbral roughness), 0..1"),
    ("boominess", "low-end boom (Audio Commons timbral boominess), 0..1"),
    ("warmth", "low-mid warmth (Audio Commons timbral warmth), 0..1"),
    ("sharpness", "sharpness in the Zwicker sense (Audio Commons timbral sharpness), 0..1"),
]

# The 16 General MIDI instrument families (programs 8k..8k+7), in soft-label order.
FAMILIES = [
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive", "sound_effects",
]
