"""`python -m vqsynth ...` is the `vqsynth` command."""

import sys

from vqsynth.cli import main

sys.exit(main())
