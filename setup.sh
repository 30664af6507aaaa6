#!/usr/bin/env bash
# Set up vqsynth on a fresh Debian/Ubuntu machine: system libraries, then a venv in .venv.
#   ./setup.sh          the server (runtime dependencies only)
#   ./setup.sh --test   also the test rig (JACK, Pure Data, liblo, FluidSynth) and the train/test extras
set -euo pipefail
cd "$(dirname "$0")"
want_test=0
[ "${1:-}" = "--test" ] && want_test=1
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
pkgs="libportaudio2 libsndfile1"
[ $want_test = 1 ] && pkgs="$pkgs jackd2 fluidsynth libfluidsynth3 fluid-soundfont-gm puredata-core liblo-tools sox gcc libc6-dev"
if command -v apt-get >/dev/null; then
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $pkgs
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
if [ $want_test = 1 ]; then
  .venv/bin/pip install -q -e '.[train,test]'
else
  .venv/bin/pip install -q -e .
fi
echo "vqsynth set up in .venv"
