#!/usr/bin/env bash
# The main job: installs missing packages (as root), builds in Release, and runs
# `tinygrok train` with the default preset (extra arguments go to it, e.g. --preset nanda).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target tinygrok_cli
./build/tinygrok train "$@"
