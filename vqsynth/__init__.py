"""vqsynth: a live neural instrument server (see ../shared/DESIGN.md for the contract)."""

import os

# One OpenBLAS thread: the engine's threads are few and each has its job (vqsynth/engine). A BLAS pool
# of its own (numpy's OpenBLAS, for the DSP head's table products) spins between calls and took the
# second core from the audio callback (user time 2x wall in `vqsynth render`). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
