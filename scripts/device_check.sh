#!/usr/bin/env bash
# The GPU checks in one call, for the device tool's machine (an H200; README and
# docs/benchmarks.md), most important first: configure and build for sm_90 (the CUDA test
# programs, the CUDA benchmarks and the CLI only: CI runs the rest of the suite), run the CUDA
# tests, time the nanda step host-driven, on the device and as a CUDA graph, train nanda to
# grokking on the GPU (issue 6's 5 s target), the same run with and without the graph (equal
# metrics), the fused kernels against their compositions, the step with index_add's tiled kernel,
# the same step in PyTorch (bench/pytorch_step.py, its JSON under $OUT), the kernel benchmarks
# against cuBLAS, the step and nanda's grokking run with TF32 tensor cores, the step and the CUDA
# tests with dependent launches, the memory-bound ops' bandwidth against a device copy, and where
# the machine has them ncu's per-kernel times and compute-sanitizer on the kernels that share
# memory; print a table last.
#
#   scripts/device_check.sh [--quick] [--budget SECONDS]
#     --quick      the rerun after a fix: the build, the CUDA tests, the step's time, nanda to
#                  grokking and graph == eager (the build is incremental on a warm machine)
#     --budget S   start no stage after S seconds, and cut each stage's limit to what is left
#                  (default 480, --quick 240): the table still prints inside the device tool's
#                  600 s, and a device lease of 15 minutes has time left for a --quick rerun
#
# Full logs go to $OUT when it is set (the device tool brings $OUT back), else to
# build-device/logs. Nothing can be installed there: make the dependency bundle here first and
# carry it:
#   bash scripts/device_bundle.sh          # on this machine, once
#   device run: bash scripts/device_check.sh    with carry [".device_deps"], timeout_s 600
# A stage that the budget leaves out says so in the table; the order above is the order they run.
set -uo pipefail
cd "$(dirname "$0")/.."
quick=false
budget=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=true ;;
    --budget)
      budget=${2:-}
      shift
      ;;
    *)
      echo "device_check.sh: unknown argument '$1' (usage: [--quick] [--budget SECONDS])" >&2
      exit 2
      ;;
  esac
  shift
done
if [ -z "$budget" ]; then
  if $quick; then budget=240; else budget=480; fi
fi
if ! [[ $budget =~ ^[0-9]+$ ]]; then
  echo "device_check.sh: --budget needs a whole number of seconds, got '$budget'" >&2
  exit 2
fi
out=${OUT:-build-device/logs}
mkdir -p "$out"
# An earlier run's results would show in this run's table as if measured now.
rm -f "$out"/bench_cuda_*.json "$out"/pytorch_step.json "$out"/nanda_*.json "$out"/nanda_*.csv \
  "$out"/ncu_kernels.csv "$out"/summary.txt
log="$out/device_check.log"
: > "$log"
summary=()

# stage NAME CAP COMMAND...: runs it with its output appended to the log, for at most CAP seconds
# and never past the budget; a stage that would get under 15 s is skipped and says so.
stage() {
  local name=$1 cap=$2 left=$((budget - SECONDS))
  shift 2
  if [ "$left" -lt 15 ]; then
    summary+=("$(printf '%-16s %-8s %s' "$name" skipped "the budget of ${budget}s is spent")")
    echo "=== $name: skipped, the budget of ${budget}s is spent" >> "$log"
    return 124
  fi
  local limit=$((cap < left ? cap : left)) start=$SECONDS
  echo "=== $name (limit ${limit}s): $*" >> "$log"
  timeout "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  summary+=("$(printf '%-16s %-8s %5ss' "$name" "$([ $rc -eq 0 ] && echo ok || echo "rc=$rc")" \
    $((SECONDS - start)))")
  return $rc
}

# bench NAME BINARY JSON_NAME [ENV...]: a Google Benchmark program of build-device/bench, its
# table in the log and its JSON under $out.
bench() {
  local name=$1 binary=build-device/bench/$2 json=$3
  shift 3
  [ -x "$binary" ] || return 0
  stage "$name" 150 env "$@" "$binary" --benchmark_counters_tabular=true \
    --benchmark_out="$out/$json" --benchmark_out_format=json
}

deps=()
[ -d .device_deps ] && deps=(-DTINYGROK_DEPS_DIR="$PWD/.device_deps")
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
  > "$out/gpu.txt" 2>&1 || echo "nvidia-smi failed" >> "$out/gpu.txt"

device_targets=(tinygrok_cli)
for source in tests/test_cuda_*.cpp bench/bench_cuda_*.cpp; do
  device_targets+=("$(basename "$source" .cpp)")
done

stage configure 120 cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTINYGROK_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 "${deps[@]}" &&
  stage build 300 cmake --build build-device -j "$(nproc)" --target "${device_targets[@]}" &&
  {
    # The GPU test programs, side by side (their CPU references then share the 16 cores).
    stage cuda_tests 150 ctest --test-dir build-device -R '^test_cuda' -j "$(nproc)" \
      --output-on-failure
    # Issue 6's targets: the full-batch step (<= 100 us), then nanda to test accuracy >= 99% in
    # <= 5 s wall, evals included; then the same run's first 2,000 steps with the step recorded
    # and without (equal metrics.csv).
    bench step_bench bench_cuda_train_step bench_cuda_train_step.json
    # GNU time adds the peak memory to the log, where the machine has it.
    timed=()
    [ -x /usr/bin/time ] && timed=(/usr/bin/time -v)
    stage gpu_grok 60 "${timed[@]}" build-device/tinygrok train --preset nanda --device cuda \
      --stop-at-grok --out build-device/nanda_grok --force --quiet
    [ -f build-device/nanda_grok/summary.json ] && cp build-device/nanda_grok/summary.json \
      "$out/nanda_grok_summary.json" && cp build-device/nanda_grok/metrics.csv \
      "$out/nanda_grok_metrics.csv"
    for graph in on off; do
      stage "gpu_graph_$graph" 60 build-device/tinygrok train --preset nanda --device cuda \
        --steps 2000 --cuda-graph "$graph" --out "build-device/nanda_graph_$graph" --force --quiet
    done
    [ -f build-device/nanda_graph_on/summary.json ] && cp build-device/nanda_graph_on/summary.json \
      "$out/nanda_gpu_summary.json"
    if [ -f build-device/nanda_graph_on/metrics.csv ] && [ -f build-device/nanda_graph_off/metrics.csv ]; then
      # elapsed_s (the last column) is a time: the rest must be equal.
      if cmp -s <(cut -d, -f1-7 build-device/nanda_graph_on/metrics.csv) \
                <(cut -d, -f1-7 build-device/nanda_graph_off/metrics.csv); then
        summary+=("graph==eager     ok       metrics.csv equal with and without the CUDA graph")
      else
        summary+=("graph==eager     DIFFER   metrics.csv with and without the CUDA graph differ")
      fi
    fi
  }

if ! $quick; then
  bench fused_bench bench_cuda_fused bench_cuda_fused.json
  # The step with index_add's tiled kernel (the CPU's order) instead of its sorted path
  # (kernels/cuda/index_add_sorted.h): which one the default should be.
  bench step_bench_tiled bench_cuda_train_step bench_cuda_train_step_tiled.json \
    TG_CUDA_INDEX_ADD=tiled
  # The same nanda step in PyTorch (eager, CUDA graphs, torch.compile), for the table below; its
  # JSON is written after each mode, so a time limit keeps the modes that ran.
  stage pytorch_step 180 python3 bench/pytorch_step.py --device cuda \
    --modes eager,graphs,compile,compile-reduce-overhead --json "$out/pytorch_step.json"
  bench gemm_bench bench_cuda_gemm bench_cuda_gemm.json

  # TF32 tensor cores (TG_CUDA_TF32=1: best_sgemm may take v8, inputs rounded to TF32), opt-in
  # as in PyTorch: the step's time with them, and nanda to grokking with them.
  bench step_bench_tf32 bench_cuda_train_step bench_cuda_train_step_tf32.json TG_CUDA_TF32=1
  if [ -x build-device/tinygrok ]; then
    stage gpu_grok_tf32 60 env TG_CUDA_TF32=1 build-device/tinygrok train --preset nanda \
      --device cuda --stop-at-grok --out build-device/nanda_grok_tf32 --force --quiet
    [ -f build-device/nanda_grok_tf32/summary.json ] &&
      cp build-device/nanda_grok_tf32/summary.json "$out/nanda_grok_tf32_summary.json"
  fi

  # Dependent launches (TG_CUDA_PDL=1, kernels/cuda/dependent_launch.h), not yet on by default:
  # the step's time with them, then the CUDA tests with them (a kernel that raced the one before
  # it would show there).
  bench step_bench_pdl bench_cuda_train_step bench_cuda_train_step_pdl.json TG_CUDA_PDL=1
  stage cuda_tests_pdl 120 env TG_CUDA_PDL=1 ctest --test-dir build-device -R '^test_cuda' \
    -j "$(nproc)" --output-on-failure
  bench memory_bench bench_cuda_memory bench_cuda_memory.json

  # Where the machine has them (H200.md: on Firecracker, not on gVisor): each kernel's GPU time
  # in a short eager nanda run (ncu, clocks left alone; summed by kernel name below), then the
  # kernels that share memory between threads or blocks under compute-sanitizer's race and
  # memory checkers: index_add's match lists and its sorted path's chunk ranks and scans (both
  # paths run in the first case), the bias gradient's last block, split-K.
  ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  if [ -n "$ncu_bin" ] && [ -x build-device/tinygrok ]; then
    stage ncu_kernels 150 "$ncu_bin" --clock-control none --metrics gpu__time_duration.sum --csv \
      --log-file "$out/ncu_kernels.csv" build-device/tinygrok train --preset nanda --device cuda \
      --steps 3 --eval-every 1000 --cuda-graph off --out build-device/ncu_run --force --quiet
  fi
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
  if [ -n "$sanitizer" ] && [ -x build-device/tests/test_cuda_nn_ops ]; then
    stage racecheck 90 "$sanitizer" --tool racecheck --error-exitcode 1 \
      build-device/tests/test_cuda_nn_ops "cuda index_select and index_add*"
    stage racecheck_bias 90 "$sanitizer" --tool racecheck --error-exitcode 1 \
      build-device/tests/test_cuda_layer_ops "cuda activation_backward*"
    stage memcheck 120 "$sanitizer" --tool memcheck --error-exitcode 1 \
      build-device/tests/test_cuda_sgemm "sgemm() splits long K on few tiles and still matches float64"
  fi
fi

# The memory bench's headline: each op's GB/s and fraction of a same-size device copy.
memory_table() {
  [ -s "$out/bench_cuda_memory.json" ] && command -v python3 >/dev/null || return 0
  python3 - "$out/bench_cuda_memory.json" <<'PY' || true
import json, sys
rows = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if "GB/s" in b]
print("memory bench (GB/s, % of a device copy of the same bytes):")
for b in rows:
    print(f"  {b['name']:<34} {b['GB/s']:8.0f} GB/s {b['%copy']:6.1f}%")
PY
}

# Each fused kernel against the composition it replaced (bench_cuda_fused): median us per call
# and the speed-up (issue 6: each fused kernel faster than its composition).
fused_table() {
  [ -s "$out/bench_cuda_fused.json" ] && command -v python3 >/dev/null || return 0
  python3 - "$out/bench_cuda_fused.json" <<'PY' || true
import json, sys
runs = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
def partner(name):  # the composition a fused entry is measured against
    for fused, unfused in (("/fused/", "/unfused/"), ("/step_norms/", "/ops_norms/"),
                           ("/step/", "/ops/")):
        at = name.rfind(fused)
        if at >= 0:
            return name[:at] + unfused + name[at + len(fused):]
    return None
print("fused kernels against their compositions (median us per call):")
for name, b in runs.items():
    other = runs.get(partner(name) or "")
    if other is None or "median_us" not in b or "median_us" not in other:
        continue
    print(f"  {name:<44} {b['median_us']:9.1f} us  vs {other['median_us']:9.1f} us"
          f"  {other['median_us'] / b['median_us']:5.2f}x")
PY
}

# tinygrok's nanda step three ways (bench_cuda_train_step), without and with dependent launches,
# and the grokking run's wall time.
step_table() {
  command -v python3 >/dev/null || return 0
  python3 - "$out/nanda_grok_summary.json" "$out/nanda_grok_tf32_summary.json" \
    "$out/bench_cuda_train_step.json" "$out/bench_cuda_train_step_pdl.json" \
    "$out/bench_cuda_train_step_tf32.json" "$out/bench_cuda_train_step_tiled.json" <<'PY' || true
import json, os, sys
for path, how in zip(sys.argv[3:], ["", ", TG_CUDA_PDL=1", ", TG_CUDA_TF32=1",
                                    ", TG_CUDA_INDEX_ADD=tiled"]):
    if not os.path.exists(path):
        continue
    print(f"tinygrok nanda step on the GPU{how} (us/step, median of batches of 50):")
    for b in json.load(open(path))["benchmarks"]:
        print(f"  {b['name']:<40} {b.get('us/step', float('nan')):9.1f} us"
              + (f"  ({b['error_message']})" if b.get("error_occurred") else ""))
for path, how in zip(sys.argv[1:3], ["", ", TG_CUDA_TF32=1"]):
    if os.path.exists(path):
        s = json.load(open(path))
        print(f"nanda --stop-at-grok on the GPU{how}: status {s['status']}, T_g {s['T_g']}, "
              f"wall {s['wall_seconds']:.2f} s, {s['train_ms_per_step'] * 1000:.1f} us/step")
PY
}

# ncu's kernel times (ns) summed by kernel name over the short run: where a step's time goes.
ncu_table() {
  [ -s "$out/ncu_kernels.csv" ] && command -v python3 >/dev/null || return 0
  python3 - "$out/ncu_kernels.csv" <<'PY' || true
import csv, collections, sys
lines = [l for l in open(sys.argv[1]) if l.startswith('"')]  # ncu's own messages are not quoted
total, calls = collections.Counter(), collections.Counter()
for row in csv.DictReader(lines):
    if row.get("Metric Name") != "gpu__time_duration.sum":
        continue
    name = row["Kernel Name"]
    for noise in ("void ", "(anonymous namespace)::", "tg::cuda::", "sgemm_detail::"):
        name = name.replace(noise, "")
    name = name.split("(")[0]
    scale = {"nsecond": 1, "ns": 1, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6,
             "second": 1e9}.get(row["Metric Unit"], 1)
    total[name] += float(row["Metric Value"].replace(",", "")) * scale
    calls[name] += 1
print(f"ncu: kernel time over a 3-step eager nanda run, evals included "
      f"({sum(calls.values())} kernels, {sum(total.values()) / 1e3:.0f} us in all):")
for name, ns in total.most_common(25):
    print(f"  {name[:48]:<48} {ns / 1e3:9.1f} us  {calls[name]:5d} calls")
PY
}

# PyTorch's ms per nanda step in each mode, beside tinygrok's GPU training run's (summary.json).
pytorch_table() {
  [ -s "$out/pytorch_step.json" ] && command -v python3 >/dev/null || return 0
  python3 - "$out/pytorch_step.json" "$out/nanda_gpu_summary.json" <<'PY' || true
import json, os, sys
report = json.load(open(sys.argv[1]))
ours = None
if os.path.exists(sys.argv[2]):
    ours = json.load(open(sys.argv[2])).get("train_ms_per_step")
print(f"nanda step, PyTorch {report['torch']} vs tinygrok "
      f"({f'{ours:.3f} ms/step' if ours else 'no GPU training run'}):")
for r in report["results"]:
    if r["status"] != "ok":
        print(f"  {r['mode']:<24} unavailable: {r['why'][:80]}")
    else:
        ratio = f"  {r['ms_per_step'] / ours:6.1f}x tinygrok's time" if ours else ""
        print(f"  {r['mode']:<24} {r['ms_per_step']:9.3f} ms/step{ratio}")
print(f"  losses agree across modes: {report.get('agree')}")
PY
}

{
  echo
  echo "device_check: $(head -2 "$out/gpu.txt" | tail -1)"
  printf '%s\n' "${summary[@]}"
  memory_table
  fused_table
  step_table
  pytorch_table
  ncu_table
  echo "logs: $log"
} | tee "$out/summary.txt"
