#!/usr/bin/env bash
# Copies the build's header-only dependencies (Eigen, nlohmann-json, CLI11, Catch2) and Google
# Benchmark from this machine's Debian packages into .device_deps/ (git-ignored, ~12 MB), for a
# machine that cannot install them: the device tool's GPU machine. Carry it there with the
# device tool's `carry: [".device_deps"]`; scripts/device_check.sh then builds against it
# (cmake/bundled_deps.cmake).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
dest=.device_deps
rm -rf "$dest"
mkdir -p "$dest/include" "$dest/lib"
for dir in eigen3 nlohmann CLI catch2 benchmark; do
  cp -r "/usr/include/$dir" "$dest/include/"
done
cp /usr/lib/x86_64-linux-gnu/libbenchmark.so.1.7.1 "$dest/lib/libbenchmark.so.1debian"
du -sh "$dest"
