#!/usr/bin/env bash
# The GPU checks in one call, for the device tool's machine (an H200; README and
# docs/benchmarks.md): configure and build for sm_90, run the CUDA tests (and the rest of the
# suite), the kernel benchmarks against cuBLAS, the memory-bound ops' bandwidth against a device
# copy, the fused kernels against their compositions, the nanda step host-driven, on the device
# and as a CUDA graph, nanda trained to grokking on the GPU (issue 6's 5 s target), the same run
# with and without the graph (equal metrics), then the same step in PyTorch (bench/pytorch_step.py,
# its JSON under $OUT), the step and the CUDA tests with dependent launches, the step and nanda's
# grokking run with TF32 tensor cores, where the machine has
# them ncu's per-kernel times and compute-sanitizer on the kernels that share memory; print a
# table last.
# Full logs go to $OUT when it is set (the device tool brings $OUT back), else to
# build-device/logs. Nothing can be installed there: make the dependency bundle here first and
# carry it:
#   bash scripts/device_bundle.sh          # on this machine, once
#   device run: bash scripts/device_check.sh    with carry [".device_deps"]
# Each stage has its own time limit, a cap well above its expected time; the stages are expected
# to take about 8 minutes together on the device machine (16 cores), and the optional last ones
# (ncu, compute-sanitizer) take what is left of 9: run it with a 600 s limit.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build-device/logs}
mkdir -p "$out"
log="$out/device_check.log"
: > "$log"
summary=()

# stage NAME LIMIT_SECONDS COMMAND...: runs it with its output appended to the log.
stage() {
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  echo "=== $name: $*" >> "$log"
  timeout "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  summary+=("$(printf '%-14s %-8s %5ss' "$name" "$([ $rc -eq 0 ] && echo ok || echo "rc=$rc")" \
    $((SECONDS - start)))")
  return $rc
}

deps=()
[ -d .device_deps ] && deps=(-DTINYGROK_DEPS_DIR="$PWD/.device_deps")
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
  > "$out/gpu.txt" 2>&1 || echo "nvidia-smi failed" >> "$out/gpu.txt"

stage configure 120 cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTINYGROK_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 "${deps[@]}" &&
  stage build 300 cmake --build build-device -j "$(nproc)" &&
  {
    # The GPU test programs, then everything else (the emulated_test_cuda_* twins included).
    stage cuda_tests 120 ctest --test-dir build-device -R '^test_cuda' --output-on-failure
    stage all_tests 180 ctest --test-dir build-device -E '^test_cuda' -j "$(nproc)" \
      --output-on-failure
    if [ -x build-device/bench/bench_cuda_gemm ]; then
      stage gemm_bench 150 build-device/bench/bench_cuda_gemm --benchmark_counters_tabular=true \
        --benchmark_out="$out/bench_cuda_gemm.json" --benchmark_out_format=json
    fi
    if [ -x build-device/bench/bench_cuda_memory ]; then
      stage memory_bench 90 build-device/bench/bench_cuda_memory \
        --benchmark_counters_tabular=true \
        --benchmark_out="$out/bench_cuda_memory.json" --benchmark_out_format=json
    fi
    if [ -x build-device/bench/bench_cuda_fused ]; then
      stage fused_bench 90 build-device/bench/bench_cuda_fused --benchmark_counters_tabular=true \
        --benchmark_out="$out/bench_cuda_fused.json" --benchmark_out_format=json
    fi
    if [ -x build-device/bench/bench_cuda_train_step ]; then
      stage step_bench 90 build-device/bench/bench_cuda_train_step \
        --benchmark_counters_tabular=true \
        --benchmark_out="$out/bench_cuda_train_step.json" --benchmark_out_format=json
    fi
    # Issue 6's target: nanda to test accuracy >= 99% in <= 5 s wall, evals included. Then the
    # same run's first 2,000 steps with the step recorded and without (equal metrics.csv).
    stage gpu_grok 60 /usr/bin/time -v build-device/tinygrok train --preset nanda --device cuda \
      --stop-at-grok --out build-device/nanda_grok --quiet
    [ -f build-device/nanda_grok/summary.json ] && cp build-device/nanda_grok/summary.json \
      "$out/nanda_grok_summary.json" && cp build-device/nanda_grok/metrics.csv \
      "$out/nanda_grok_metrics.csv"
    for graph in on off; do
      stage "gpu_graph_$graph" 60 build-device/tinygrok train --preset nanda --device cuda \
        --steps 2000 --cuda-graph "$graph" --out "build-device/nanda_graph_$graph" --quiet
    done
    [ -f build-device/nanda_graph_on/summary.json ] && cp build-device/nanda_graph_on/summary.json \
      "$out/nanda_gpu_summary.json"
    if [ -f build-device/nanda_graph_on/metrics.csv ] && [ -f build-device/nanda_graph_off/metrics.csv ]; then
      # elapsed_s (the last column) is a time: the rest must be equal.
      if cmp -s <(cut -d, -f1-7 build-device/nanda_graph_on/metrics.csv) \
                <(cut -d, -f1-7 build-device/nanda_graph_off/metrics.csv); then
        summary+=("graph==eager   ok       metrics.csv equal with and without the CUDA graph")
      else
        summary+=("graph==eager   DIFFER   metrics.csv with and without the CUDA graph differ")
      fi
    fi
  }
# The same nanda step in PyTorch (eager, CUDA graphs, torch.compile), for the table below; its JSON
# is written after each mode, so a time limit keeps the modes that ran.
stage pytorch_step 180 python3 bench/pytorch_step.py --device cuda \
  --modes eager,graphs,compile,compile-reduce-overhead --json "$out/pytorch_step.json"

# Last, as they are not yet on by default: dependent launches (TG_CUDA_PDL=1,
# kernels/cuda/dependent_launch.h). The step's time with them, then the CUDA tests with them
# (a kernel that raced the one before it would show there).
if [ -x build-device/bench/bench_cuda_train_step ]; then
  stage step_bench_pdl 60 env TG_CUDA_PDL=1 build-device/bench/bench_cuda_train_step \
    --benchmark_counters_tabular=true \
    --benchmark_out="$out/bench_cuda_train_step_pdl.json" --benchmark_out_format=json
  stage cuda_tests_pdl 120 env TG_CUDA_PDL=1 ctest --test-dir build-device -R '^test_cuda' \
    --output-on-failure
fi

# TF32 tensor cores (TG_CUDA_TF32=1: best_sgemm may take v8, inputs rounded to TF32), opt-in as
# in PyTorch: the step's time with them, and nanda to grokking with them.
if [ -x build-device/bench/bench_cuda_train_step ]; then
  stage step_bench_tf32 60 env TG_CUDA_TF32=1 build-device/bench/bench_cuda_train_step \
    --benchmark_counters_tabular=true \
    --benchmark_out="$out/bench_cuda_train_step_tf32.json" --benchmark_out_format=json
  stage gpu_grok_tf32 60 env TG_CUDA_TF32=1 build-device/tinygrok train --preset nanda \
    --device cuda --stop-at-grok --out build-device/nanda_grok_tf32 --force --quiet
  [ -f build-device/nanda_grok_tf32/summary.json ] && cp build-device/nanda_grok_tf32/summary.json \
    "$out/nanda_grok_tf32_summary.json"
fi

# Last, with what is left of 9 minutes (the device tool's call allows 10, and the table below
# must still print), and where the machine has them (H200.md: on Firecracker, not on gVisor):
# each kernel's GPU time in a short eager nanda run (ncu, clocks left alone; summed by kernel name
# below), then the kernels that share memory between threads or blocks under compute-sanitizer's
# race and memory checkers: index_add's match lists, the bias gradient's last block, split-K.
# extra NAME LIMIT COMMAND...: a stage within the time left, or a line saying it was skipped.
extra() {
  local name=$1 limit=$2 left=$((540 - SECONDS))
  shift 2
  if [ "$left" -lt 30 ]; then
    summary+=("$(printf '%-14s %-8s %s' "$name" skipped "no time left in this call")")
    return 0
  fi
  stage "$name" $((limit < left ? limit : left)) "$@"
}
ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$ncu_bin" ] && [ -x build-device/tinygrok ]; then
  extra ncu_kernels 150 "$ncu_bin" --clock-control none --metrics gpu__time_duration.sum --csv \
    --log-file "$out/ncu_kernels.csv" build-device/tinygrok train --preset nanda --device cuda \
    --steps 3 --eval-every 1000 --cuda-graph off --out build-device/ncu_run --force --quiet
fi
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$sanitizer" ] && [ -x build-device/tests/test_cuda_nn_ops ]; then
  extra racecheck 90 "$sanitizer" --tool racecheck --error-exitcode 1 \
    build-device/tests/test_cuda_nn_ops "cuda index_select and index_add*"
  extra racecheck_bias 90 "$sanitizer" --tool racecheck --error-exitcode 1 \
    build-device/tests/test_cuda_layer_ops "cuda activation_backward*"
  extra memcheck 120 "$sanitizer" --tool memcheck --error-exitcode 1 \
    build-device/tests/test_cuda_sgemm "sgemm() splits long K on few tiles and still matches float64"
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
    "$out/bench_cuda_train_step_tf32.json" <<'PY' || true
import json, os, sys
for path, how in zip(sys.argv[3:], ["", ", TG_CUDA_PDL=1", ", TG_CUDA_TF32=1"]):
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
