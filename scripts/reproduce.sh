#!/usr/bin/env bash
# docs/reproduction.md, measured again: builds tinygrok, runs every sweep of docs/reproduction/
# (each resumable: run it again after an interruption and it finishes the grid), analyses the
# runs with snapshots, and copies the plots the document shows, each sweep's results.csv and
# heatmap.csv, and each analysed run's analysis.json into docs/reproduction/.
#   bash scripts/reproduce.sh                 # all claims, in the document's order
#   bash scripts/reproduce.sh weight_decay    # some of them (the spec files' names)
# Runs go to runs/reproduction/NAME. On two cores the whole set takes about an hour and a half;
# more cores run more runs at once (--workers defaults to the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target tinygrok_cli

specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=(nanda default weight_decay train_fraction dropout grokfast grokfast_nanda stablemax)
for name in "${specs[@]}"; do
  spec=docs/reproduction/$name.json
  [ -f "$spec" ] || { echo "reproduce: no spec $spec" >&2; exit 2; }
  out=runs/reproduction/$name
  echo "== $name: ./build/tinygrok sweep $spec --out $out"
  ./build/tinygrok sweep "$spec" --out "$out"
  # The record beside the plots: every run's row, the phase diagram's cells.
  for file in "$out"/results.csv "$out"/heatmap.csv "$out"/*.png; do
    if [ -f "$file" ]; then cp "$file" "docs/reproduction/${name}_$(basename "$file")"; fi
  done
  # Runs with snapshots get the full analysis (Fourier, restricted/excluded loss, sharpness...);
  # the document shows the first run's curves and analysis plots.
  first=""
  for run in "$out"/runs/*/; do
    run=${run%/}
    [ -n "$first" ] || first=$run
    [ -d "$run/snapshots" ] || continue
    ./build/tinygrok analyze "$run" --quiet
    cp "$run/analysis/analysis.json" "docs/reproduction/${name}_$(basename "$run")_analysis.json"
  done
  cp "$first/curves.png" "docs/reproduction/${name}_first_run_curves.png"
  for png in "$first"/analysis/*.png; do
    if [ -f "$png" ]; then cp "$png" "docs/reproduction/${name}_first_run_$(basename "$png")"; fi
  done
done
