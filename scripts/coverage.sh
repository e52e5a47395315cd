#!/usr/bin/env bash
# Which lines of the library the whole test suite runs: builds build-coverage/ with gcov's
# counters, runs every test with CTest, then prints gcovr's table (each source file's lines, how
# many ran, and the line numbers that did not) and writes the same, line by line, as HTML to
# build-coverage/coverage/index.html. Tests, benchmarks and examples are left out of the table.
#
#   bash scripts/coverage.sh          (installs gcovr when run as root, as test.sh its packages)
#
# CUDA off: kernels/cuda/ is counted as the emulated_* tests run it on the CPU
# (tests/cuda_emulation/), so its lines count as run when the emulator ran them. A line counts
# once any instantiation ran it (float or double, any tile shape). -O1, not -O0: the emulated
# SGEMM tests take minutes even so; a line the optimiser merged into its neighbour can then show
# as not run. The reversed-schedule runs are left out: they run the same lines again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh gcovr
build=build-coverage
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" -DCMAKE_CXX_FLAGS=--coverage \
  -DCMAKE_EXE_LINKER_FLAGS=--coverage \
  -DTINYGROK_CUDA=OFF -DTINYGROK_BUILD_BENCH=OFF -DTINYGROK_MPI=OFF
cmake --build "$build" -j "$(nproc)"
find "$build" -name '*.gcda' -delete  # an earlier run's counts would add to this one's
status=0  # a failed test still leaves counts worth reading; the script then exits nonzero
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -E '^reversed_' || status=$?

mkdir -p "$build/coverage"
gcovr --root . --object-directory "$build" --exclude 'tests/' --exclude 'bench/' \
  --exclude 'examples/' --exclude "$build/" -j "$(nproc)" --sort-percentage \
  --html-details "$build/coverage/index.html" --txt - --print-summary
echo "line by line: $build/coverage/index.html"
[ $status -eq 0 ] ||
  echo "coverage.sh: some tests failed (ctest exit $status): these are a failing suite's counts" >&2
exit $status
