#!/usr/bin/env bash
# Installs the Debian packages tinygrok needs that are missing, and any packages named as
# arguments (a script's own tools: scripts/coverage.sh's gcovr); does nothing when all are there.
# As root it runs apt-get itself; otherwise it prints the command to run and fails.
set -euo pipefail

packages=(
  g++ cmake ninja-build   # toolchain
  libeigen3-dev           # CPU kernels
  catch2                  # tests
  libbenchmark-dev        # bench/
  nlohmann-json3-dev      # checkpoints, config.json, summary.json
  libcli11-dev            # the tinygrok command line
  gnuplot-nox             # curves.png of a training run
  openmpi-bin libopenmpi-dev  # tinygrok sweep under mpirun (optional: cmake -DTINYGROK_MPI=OFF)
)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "tinygrok: missing Debian packages: ${missing[*]}" >&2
  echo "  install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "tinygrok: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
