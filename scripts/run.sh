#!/usr/bin/env bash
# The main job: installs missing packages (as root), builds in Release, and runs it.
# Until `tinygrok train` lands, the main job is the micrograd-style example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target micrograd_mlp
./build/examples/micrograd_mlp "$@"
