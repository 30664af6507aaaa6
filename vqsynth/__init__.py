"""vqsynth: a live neural instrument server (see ../shared/DESIGN.md for the contract)."""

__version__ = "0.1.0"
