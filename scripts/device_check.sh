#!/usr/bin/env bash
# The GPU checks in one call, for the device tool's machine (an H200; README and
# docs/benchmarks.md), most important first: configure and build for sm_90 (the CUDA test
# programs, the CUDA benchmarks and the CLI only: CI runs the rest of the suite), run the CUDA
# tests, time the nanda step host-driven, on the device and as a CUDA graph, train nanda to
# grokking on the GPU (issue 6's 5 s target), the same run with and without the graph (equal
# metrics), the step with each tensor-core SGEMM not yet measured (v9, v10) and nanda to grokking
# with each, the same step in PyTorch eager and with CUDA graphs (bench/pytorch_step.py: the model
# as a PyTorch user writes it, and computing only what the loss reads as tinygrok does), the
# fused kernels against their compositions (the linear layers also with v9), the memory-bound
# ops' bandwidth against a device copy, the kernel benchmarks against cuBLAS (v9's kernel at
# other block tilings included), the step with v9 at each of those tilings, the step with
# index_add's tiled kernel, the step and nanda's grokking run with TF32 tensor cores, the step
# and the CUDA tests with dependent launches, PyTorch's torch.compile modes (slow to compile),
# and where the machine has them compute-sanitizer on the kernels that share memory, ncu's
# per-kernel times (also with every product on v9), and ncu's occupancy and throughput for each
# kernel of one step; print a table last.
#
#   scripts/device_check.sh [--quick] [--from STAGE] [--budget SECONDS]
#     --quick      the rerun after a fix: the build, the CUDA tests, the step's time, nanda to
#                  grokking, graph == eager, and the step and grokking with v9 and v10
#     --from S     after the build, skip the stages before S (a second call that runs what the
#                  first one's budget left out: the table names the stages)
#     --budget S   start no stage after S seconds, and cut each stage's limit to what is left
#                  (default 360, --quick 240)
#
# The device lease is 15 minutes in all, each machine's start (a minute or two) included, and a
# machine stays warm only 30 s after a call: a rerun builds from scratch on a fresh one. 360 s
# leaves room for a fix and a --quick rerun; give the machine back between the two calls. A
# second call pays the start and the build again: give it --budget of what the device tool's
# status says is left, less 180 s, or the machine is taken back mid-run and \$OUT with it.
#
# What comes back: the device tool returns at most 8 files from $OUT, so the run writes
# everything under build-device/results and leaves three files in $OUT: summary.txt (the
# table), device_check.log (every stage's output) and results.tar.gz (the JSON, CSV and logs).
# Without $OUT they stay in build-device/results. Nothing can be installed there: make the
# dependency bundle here first and carry it:
#   bash scripts/device_bundle.sh          # on this machine, once
#   device run: bash scripts/device_check.sh    with carry [".device_deps"], timeout_s 600
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
quick=false
budget=
from=
usage="usage: [--quick] [--from STAGE] [--budget SECONDS]"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=true ;;
    --budget | --from)
      if [ $# -lt 2 ]; then
        echo "device_check.sh: $1 needs a value ($usage)" >&2
        exit 2
      fi
      if [ "$1" = --budget ]; then budget=$2; else from=$2; fi
      shift
      ;;
    *)
      echo "device_check.sh: unknown argument '$1' ($usage)" >&2
      exit 2
      ;;
  esac
  shift
done
if [ -z "$budget" ]; then
  if $quick; then budget=240; else budget=360; fi
fi
# The stages after the build, in the order they run (keep in step with the calls below).
stages="cuda_tests step_bench gpu_grok gpu_graph_on gpu_graph_off step_bench_v9 step_bench_v10
  gpu_grok_v9 gpu_grok_v10 pytorch_step pytorch_step_last
  fused_bench fused_bench_v9 memory_bench gemm_bench step_bench_tilings step_bench_tiled
  step_bench_tf32
  gpu_grok_tf32 step_bench_pdl cuda_tests_pdl pytorch_compile racecheck racecheck_bias memcheck
  ncu_kernels ncu_kernels_v9 ncu_sections"
if [ -n "$from" ] && ! [[ " $(echo $stages) " == *" $from "* ]]; then
  echo "device_check.sh: --from '$from' is no stage; the stages:" $stages >&2
  exit 2
fi
if ! [[ $budget =~ ^[0-9]+$ ]]; then
  echo "device_check.sh: --budget needs a whole number of seconds, got '$budget'" >&2
  exit 2
fi
out=${OUT:-}
results=build-device/results
# An earlier run's results and training runs would show in this run's table as if made now.
rm -rf "$results" build-device/nanda_* build-device/ncu_run
mkdir -p "$results"
log="$results/device_check.log"
: > "$log"
summary=()
reached=true
[ -n "$from" ] && reached=false
built=false

# stage NAME CAP COMMAND...: runs it with its output appended to the log (and to
# $results/NAME.out) and its wall time in $results/NAME.wall, for at most CAP seconds and never
# past the budget; a stage that would get under 15 s is skipped and says so, as are the stages
# before --from's and, once the build has failed, every stage that needs it.
stage() {
  local name=$1 cap=$2 left=$((budget - SECONDS)) why=
  shift 2
  [ "$name" = "$from" ] && reached=true
  case " $(echo $stages) configure build " in
    *" $name "*) ;;
    *) echo "device_check.sh: stage $name is missing from \$stages (--from cannot name it)" >&2 ;;
  esac
  if ! $reached && [ "$name" != configure ] && [ "$name" != build ]; then
    why="before --from $from"
  elif ! $built && [ "$name" != configure ] && [ "$name" != build ] &&
    [[ $name != pytorch_* ]]; then  # PyTorch needs none of the build
    why="the build failed"
  elif [ "$left" -lt 15 ]; then
    why="the budget of ${budget}s is spent"
  fi
  if [ -n "$why" ]; then
    summary+=("$(printf '%-18s %-8s %s' "$name" skipped "$why")")
    echo "=== $name: skipped, $why" >> "$log"
    return 124
  fi
  local limit=$((cap < left ? cap : left)) start=$SECONDS wall_start=${EPOCHREALTIME:-}
  echo "=== $name (limit ${limit}s): $*" >> "$log"
  timeout -k 15 "$limit" "$@" > "$results/$name.out" 2>&1
  local rc=$?
  # The process's wall time, start-up included (issue 6's 5 s is of the whole run).
  [ -n "$wall_start" ] && awk -v a="${wall_start/,/.}" -v b="${EPOCHREALTIME/,/.}" \
    'BEGIN { printf "%.3f\n", b - a }' > "$results/$name.wall"
  cat "$results/$name.out" >> "$log"
  summary+=("$(printf '%-18s %-8s %5ss' "$name" "$([ $rc -eq 0 ] && echo ok || echo "rc=$rc")" \
    $((SECONDS - start)))")
  return $rc
}

# cuda_tests NAME CAP [ENV...]: the GPU test programs, side by side (their CPU references then
# share the cores: two OpenMP threads each), and the linear layers' and the step's again with
# every product on v9 (sgemm_v9_test_cuda_*, tests/CMakeLists.txt). Here a program that skips
# has seen no GPU, which fails the stage; the failed and skipped programs are named in the table.
cuda_tests() {
  local name=$1 cap=$2
  shift 2
  # --timeout: a program that hangs (a kernel never run on a GPU before) costs a minute, not the
  # stage's whole cap and with it the budget of the stages after it.
  stage "$name" "$cap" env OMP_NUM_THREADS=2 "$@" ctest --test-dir build-device \
    -R '^(sgemm_v9_)?test_cuda' -j "$(nproc)" --timeout 60 --output-on-failure
  local rc=$? line=$((${#summary[@]} - 1))  # the stage's own line in the table
  [ -f "$results/$name.out" ] || return $rc
  local failed skipped
  failed=$(sed -n '/The following tests FAILED:/,$p' "$results/$name.out" |
    grep -oE '(sgemm_v9_)?test_cuda_[a-z_0-9]+' | sort -u | tr '\n' ' ')
  skipped=$(sed -n '/The following tests did not run:/,/^$/p' "$results/$name.out" |
    grep -oE '(sgemm_v9_)?test_cuda_[a-z_0-9]+' | sort -u | tr '\n' ' ')
  [ -n "$failed" ] && summary+=("$(printf '%-18s %-8s %s' "" failed "$failed")")
  if [ -n "$skipped" ]; then
    # The stage's own line said ok (ctest passes a skip): it did not.
    summary[line]="$(printf '%-18s %-8s %s' "$name" SKIPPED \
      "did not run or saw no GPU: $skipped")"
    return 1
  fi
  return $rc
}

# bench NAME BINARY JSON_NAME [ENV...]: a Google Benchmark program of build-device/bench, its
# table in the log and its JSON under $results; for the fused kernels also the names it
# registers (bench_cuda_fused.list), so that a pair the time limit cut shows as not measured.
bench() {
  local name=$1 program=$2 binary=build-device/bench/$2 json=$3 cap=150
  shift 3
  [ "$program" = bench_cuda_fused ] && [ -x "$binary" ] &&
    timeout 20 "$binary" --benchmark_list_tests > "$results/$program.list" 2>/dev/null
  # The step's benchmark took 7 s on the H200: a hang (v9 and v10 have never run on a GPU)
  # should not take the budget of the stages after it.
  [ "$program" = bench_cuda_train_step ] && cap=45
  stage "$name" "$cap" env "$@" "$binary" --benchmark_counters_tabular=true \
    --benchmark_out="$results/$json" --benchmark_out_format=json
}

# grok NAME CAP DIR [ENV...] -- ARGS...: a tinygrok training run on the GPU into DIR, and its
# summary.json copied under $results as DIR's name.
train_run() {
  local name=$1 cap=$2 dir=$3
  shift 3
  local env=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    env+=("$1")
    shift
  done
  shift
  stage "$name" "$cap" env "${env[@]}" "${timed[@]}" build-device/tinygrok train --preset nanda \
    --device cuda --out "$dir" --force --quiet "$@"
  local rc=$?
  [ -f "$dir/summary.json" ] && cp "$dir/summary.json" "$results/$(basename "$dir")_summary.json"
  return $rc
}

deps=()
[ -d .device_deps ] && deps=(-DTINYGROK_DEPS_DIR="$PWD/.device_deps")
timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
  > "$results/gpu.txt" 2>&1 || echo "nvidia-smi failed" >> "$results/gpu.txt"
# GNU time adds the peak memory to a training run's log, where the machine has it.
timed=()
[ -x /usr/bin/time ] && timed=(/usr/bin/time -v)

device_targets=(tinygrok_cli)
for source in tests/test_cuda_*.cpp bench/bench_cuda_*.cpp; do
  device_targets+=("$(basename "$source" .cpp)")
done

stage configure 120 cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTINYGROK_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DTINYGROK_MPI=OFF "${deps[@]}" &&
  stage build 300 cmake --build build-device -j "$(nproc)" --target "${device_targets[@]}" &&
  built=true

cuda_tests cuda_tests 150
# Issue 6's targets: the full-batch step (<= 100 us), then nanda to test accuracy >= 99% in
# <= 5 s wall, evals included; then the same run's first 2,000 steps with the step recorded and
# without (equal metrics.csv).
bench step_bench bench_cuda_train_step bench_cuda_train_step.json
train_run gpu_grok 60 build-device/nanda_grok -- --stop-at-grok
[ -f build-device/nanda_grok/metrics.csv ] &&
  cp build-device/nanda_grok/metrics.csv "$results/nanda_grok_metrics.csv"
for graph in on off; do
  train_run "gpu_graph_$graph" 60 "build-device/nanda_graph_$graph" -- --steps 2000 \
    --cuda-graph "$graph"
done
if [ -f build-device/nanda_graph_on/metrics.csv ] && [ -f build-device/nanda_graph_off/metrics.csv ]; then
  # elapsed_s (the last column) is a time: the rest must be equal.
  if cmp -s <(cut -d, -f1-7 build-device/nanda_graph_on/metrics.csv) \
            <(cut -d, -f1-7 build-device/nanda_graph_off/metrics.csv); then
    summary+=("graph==eager       ok       metrics.csv equal with and without the CUDA graph")
  else
    summary+=("graph==eager       DIFFER   metrics.csv with and without the CUDA graph differ")
  fi
fi

# The tensor-core SGEMMs no GPU has timed yet (kernels/cuda/sgemm/sgemm.h, `measured`; the
# engine passes them over unless TG_CUDA_SGEMM forces one): the step with v9 (3xTF32, float32
# accuracy) and with v10 (TF32), and nanda to grokking with each (v10's rounding could move the
# grokking step, as v8's TF32 did): whether either becomes the default.
bench step_bench_v9 bench_cuda_train_step bench_cuda_train_step_v9.json TG_CUDA_SGEMM=9
bench step_bench_v10 bench_cuda_train_step bench_cuda_train_step_v10.json TG_CUDA_SGEMM=10
train_run gpu_grok_v9 60 build-device/nanda_grok_v9 TG_CUDA_SGEMM=9 -- --stop-at-grok
train_run gpu_grok_v10 60 build-device/nanda_grok_v10 TG_CUDA_SGEMM=10 -- --stop-at-grok

if ! $quick; then
  # The same nanda step in PyTorch, eager and as one CUDA graph, for the table below: the model
  # as a PyTorch user writes it (every position), then computing what the loss reads only, as
  # tinygrok does (the same FLOPs). The JSON is written after each mode, so a time limit keeps
  # the modes that ran. torch.compile's modes come late (pytorch_compile): compiling them cold
  # takes a minute, and no target needs them.
  stage pytorch_step 60 python3 bench/pytorch_step.py --device cuda --modes eager,graphs \
    --json "$results/pytorch_step.json"
  stage pytorch_step_last 40 python3 bench/pytorch_step.py --device cuda --model last-position \
    --modes eager,graphs --json "$results/pytorch_step_last.json"
  bench fused_bench bench_cuda_fused bench_cuda_fused.json
  # The linear layers' and the MLP's fused kernels and compositions again with v9 forced on both
  # sides (Google Benchmark reads --benchmark_filter from BENCHMARK_FILTER): whether a ReLU
  # layer's masked backward, slower than its composition on v7, wins on v9's pipeline.
  bench fused_bench_v9 bench_cuda_fused bench_cuda_fused_v9.json TG_CUDA_SGEMM=9 \
    BENCHMARK_FILTER='linear|mlp'
  bench memory_bench bench_cuda_memory bench_cuda_memory.json
  bench gemm_bench bench_cuda_gemm bench_cuda_gemm.json
  # v9's kernel at block tilings other than its 64 x 64 (kernels/cuda/sgemm/mma_tilings.h):
  # gemm_bench timed each at every shape (sgemm/v9_<tiling>/<shape>); here the recorded step
  # with every product on v9 at each tiling (masked ones at v9's own), for v9's default.
  stage step_bench_tilings 120 bash -c '
    tilings=$(build-device/bench/bench_cuda_gemm --benchmark_list_tests \
      --benchmark_filter="^sgemm/v9_[0-9]" | grep "^sgemm/v9_" | cut -d/ -f2 | sed "s/^v9_//" |
      awk "!seen[\$0]++")
    [ -n "$tilings" ] || { echo "bench_cuda_gemm lists no tilings of v9"; exit 1; }
    for tiling in $tilings; do
      echo "--- TG_CUDA_SGEMM=9 TG_CUDA_MMA_TILING=$tiling"
      TG_CUDA_SGEMM=9 TG_CUDA_MMA_TILING=$tiling build-device/bench/bench_cuda_train_step \
        --benchmark_filter=graph --benchmark_counters_tabular=true \
        --benchmark_out="$1/bench_cuda_train_step_v9_$tiling.json" \
        --benchmark_out_format=json || exit 1
    done' tilings "$results"
  # The step with index_add's tiled kernel (the CPU's order) instead of its sorted path
  # (kernels/cuda/index_add_sorted.h): which one the default should be.
  bench step_bench_tiled bench_cuda_train_step bench_cuda_train_step_tiled.json \
    TG_CUDA_INDEX_ADD=tiled

  # TF32 tensor cores (TG_CUDA_TF32=1: best_sgemm may take v8, inputs rounded to TF32), opt-in
  # as in PyTorch: the step's time with them, and nanda to grokking with them.
  bench step_bench_tf32 bench_cuda_train_step bench_cuda_train_step_tf32.json TG_CUDA_TF32=1
  train_run gpu_grok_tf32 60 build-device/nanda_grok_tf32 TG_CUDA_TF32=1 -- --stop-at-grok

  # Dependent launches (TG_CUDA_PDL=1, kernels/cuda/dependent_launch.h), not yet on by default:
  # the step's time with them, then the CUDA tests with them (a kernel that raced the one before
  # it would show there).
  bench step_bench_pdl bench_cuda_train_step bench_cuda_train_step_pdl.json TG_CUDA_PDL=1
  cuda_tests cuda_tests_pdl 120 TG_CUDA_PDL=1
  stage pytorch_compile 90 python3 bench/pytorch_step.py --device cuda \
    --modes eager,compile,compile-reduce-overhead --json "$results/pytorch_compile.json"

  # Where the machine has them (H200.md: on Firecracker, not on gVisor): the kernels that share
  # memory between threads or blocks under compute-sanitizer's race and memory checkers
  # (index_add's match lists and its sorted path's chunk ranks and scans, both paths run in the
  # first case; the bias gradient's last block; split-K), then each kernel's GPU time in a short
  # eager nanda run (ncu, clocks left alone; summed by kernel name below).
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
  if [ -n "$sanitizer" ]; then
    stage racecheck 90 "$sanitizer" --tool racecheck --error-exitcode 1 \
      build-device/tests/test_cuda_nn_ops "cuda index_select and index_add*"
    stage racecheck_bias 90 "$sanitizer" --tool racecheck --error-exitcode 1 \
      build-device/tests/test_cuda_layer_ops "cuda activation_backward*"
    stage memcheck 120 "$sanitizer" --tool memcheck --error-exitcode 1 \
      build-device/tests/test_cuda_sgemm "sgemm() splits long K on few tiles and still matches float64"
  else
    summary+=("$(printf '%-18s %-8s %s' sanitizer absent "no compute-sanitizer on this machine")")
  fi
  ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  if [ -n "$ncu_bin" ]; then
    # --cache-control none: the step's kernels find their data in L2, as they do when it runs.
    stage ncu_kernels 150 "$ncu_bin" --clock-control none --cache-control none \
      --metrics gpu__time_duration.sum --csv \
      --log-file "$results/ncu_kernels.csv" build-device/tinygrok train --preset nanda --device cuda \
      --steps 3 --eval-every 1000 --cuda-graph off --out build-device/ncu_run --force --quiet
    # The same with every product on v9 (not yet the default): where its step's time goes.
    stage ncu_kernels_v9 60 env TG_CUDA_SGEMM=9 "$ncu_bin" --clock-control none \
      --cache-control none --metrics gpu__time_duration.sum --csv \
      --log-file "$results/ncu_kernels_v9.csv" build-device/tinygrok train --preset nanda \
      --device cuda --steps 3 --eval-every 1000 --cuda-graph off --out build-device/ncu_run \
      --force --quiet
    # Why each of the step's kernels takes its time: occupancy, waves, registers, and the SMs'
    # and memory's share of their peak, for every kernel of training step 2 and nothing else:
    # TG_PROFILE_STEP=2 runs that step alone inside the profiler range (cudaProfilerStart/Stop),
    # which is all ncu records with --profile-from-start off (docs/gpu_runs/ has a first reading,
    # of 40 kernels a name filter kept).
    stage ncu_sections 90 env TG_PROFILE_STEP=2 "$ncu_bin" --clock-control none \
      --cache-control none --profile-from-start off --launch-count 300 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --csv --page details \
      --log-file "$results/ncu_sections.csv" \
      build-device/tinygrok train --preset nanda --device cuda --steps 3 --eval-every 1000 \
      --cuda-graph off --out build-device/ncu_run --force --quiet
  else
    summary+=("$(printf '%-18s %-8s %s' ncu absent "no ncu on this machine")")
  fi
fi

{
  echo
  echo "device_check: $(head -2 "$results/gpu.txt" | tail -1)"
  printf '%s\n' "${summary[@]}"
  # Issue 6's targets (met or MISSED), then the benchmarks' tables: errors, memory, fused against
  # unfused, SGEMM against cuBLAS, the step, PyTorch, ncu (scripts/device_tables.py, tested by
  # tests/device_tables_test.py).
  if command -v python3 >/dev/null; then
    python3 scripts/device_tables.py "$results" || echo "device_tables.py failed (rc=$?)"
  else
    echo "no python3: the benchmark tables are left out (the JSON is in results.tar.gz)"
  fi
} > "$results/summary.txt"
cat "$results/summary.txt"

# Three files back through $OUT (the device tool returns at most 8): the table, the whole log
# (its last 15 MB, under the 16 MB a file may have) and the rest as one archive.
if [ -n "$out" ]; then
  mkdir -p "$out"
  cp "$results/summary.txt" "$out/"
  tail -c 15000000 "$log" > "$out/device_check.log"
  tar -czf "$out/results.tar.gz" -C build-device results
  echo "in \$OUT: summary.txt, device_check.log, results.tar.gz ($(du -h "$out/results.tar.gz" | cut -f1))"
else
  echo "results: $results"
fi
