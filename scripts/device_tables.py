#!/usr/bin/env python3
"""The tables that end scripts/device_check.sh's summary, read from the files its stages leave in
build-device/results (Google Benchmark JSON, bench/pytorch_step.py's JSON, the grokking runs'
summary.json, GNU time's log of the grokking run and ncu's CSV), issue 6's targets first, each
met or MISSED:

  python3 scripts/device_tables.py build-device/results

A table whose files are missing is left out; one that cannot be read says so in a line and the
others still print, since this summary is what comes back first from a 15-minute device lease.
Tested on files of the same shape in tests/device_tables_test.py.
"""
import collections
import csv
import json
import os
import re
import sys


def short(name):
    """A benchmark's name without Google Benchmark's run options, e.g.
    BM_nanda_step/graph/iterations:40/manual_time -> nanda_step/graph."""
    name = re.sub(r"/(iterations|min_time|min_warmup_time|repeats|threads):[^/]*", "", name)
    name = re.sub(r"/(manual_time|real_time|process_time)$", "", name)
    return name[3:] if name.startswith("BM_") else name


def benchmarks(path):
    """The entries of a Google Benchmark JSON file, or [] when it is missing or unreadable
    (a stage cut by its time limit leaves no JSON, or a partial one)."""
    try:
        with open(path) as f:
            return json.load(f)["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def timed(entry, counter):
    return not entry.get("error_occurred") and isinstance(entry.get(counter), (int, float))


def bench_errors(results):
    """Every benchmark entry that reported an error, grouped by message (without a GPU they all
    say "skipped: no CUDA device"), but for SGEMM versions that decline a shape."""
    by_message = collections.defaultdict(list)
    for path in sorted(os.listdir(results)):
        if path.startswith("bench_cuda_") and path.endswith(".json"):
            for b in benchmarks(os.path.join(results, path)):
                why = b.get("error_message", "")
                if b.get("error_occurred") and "declines these arguments" not in why:
                    by_message[why].append(f"{path[:-5]}: {short(b['name'])}")
    if not by_message:
        return []
    count = sum(len(names) for names in by_message.values())
    lines = [f"benchmark entries with errors ({count}):"]
    for why, names in by_message.items():
        if len(names) > 3:
            lines.append(f"  {len(names)} entries: {why[:100]}")
            lines += [f"    {name}" for name in names[:3]] + [f"    ... and {len(names) - 3} more"]
        else:
            lines += [f"  {name:<56} {why[:100]}" for name in names]
    return lines


def memory_table(results):
    """Each memory-bound op's bandwidth and its fraction of a device copy of the same bytes."""
    rows = [b for b in benchmarks(os.path.join(results, "bench_cuda_memory.json"))
            if timed(b, "GB/s")]
    if not rows:
        return []
    lines = ["memory bench (GB/s, % of a device copy of the same bytes):"]
    for b in rows:
        copy = f"{b['%copy']:6.1f}%" if isinstance(b.get("%copy"), (int, float)) else ""
        lines.append(f"  {short(b['name']):<36} {b['GB/s']:8.0f} GB/s {copy}")
    return lines


def composition_of(name):
    """The name of the composition a fused entry is measured against, or None."""
    for fused, unfused in (("/fused/", "/unfused/"), ("/step_norms/", "/ops_norms/"),
                           ("/step/", "/ops/")):
        at = name.rfind(fused)
        if at >= 0:
            return name[:at] + unfused + name[at + len(fused):]
    return None


def fused_pairs(results):
    """(name, fused us, composition us) for each fused entry timed beside its composition."""
    runs = {short(b["name"]): b
            for b in benchmarks(os.path.join(results, "bench_cuda_fused.json"))}
    pairs = []
    for name, b in runs.items():
        other = runs.get(composition_of(name) or "")
        if other is not None and timed(b, "median_us") and timed(other, "median_us"):
            pairs.append((name, b["median_us"], other["median_us"]))
    return pairs


def fused_table(results):
    """Each fused kernel against the composition it replaced (issue 6: each faster)."""
    lines = [f"  {name:<40} {fused:9.1f} us  vs {unfused:9.1f} us  {unfused / fused:5.2f}x"
             for name, fused, unfused in fused_pairs(results)]
    if not lines:
        return []
    return ["fused kernels against their compositions (median us per call, speed-up):"] + lines


def gemm_table(results):
    """Each SGEMM version's GFLOP/s per shape, and its fraction of cuBLAS with TF32 off."""
    cells = collections.defaultdict(dict)  # version -> shape -> text
    shapes = []
    for b in benchmarks(os.path.join(results, "bench_cuda_gemm.json")):
        parts = short(b["name"]).split("/")
        if len(parts) != 3 or parts[0] != "sgemm" or not timed(b, "GFLOP/s"):
            continue
        version, shape = parts[1], parts[2]
        if shape not in shapes:
            shapes.append(shape)
        share = f" {b['%cuBLAS']:3.0f}%" if isinstance(b.get("%cuBLAS"), (int, float)) else ""
        cells[version][shape] = f"{b['GFLOP/s']:6.0f}{share}"
    if not cells:
        return []
    width = max(16, max(len(s) for s in shapes) + 1)
    lines = ["SGEMM GFLOP/s and % of cuBLAS (TF32 off) per shape M x K x N:",
             "  " + f"{'':<18}" + "".join(f"{s:>{width}}" for s in shapes)]
    for version, row in cells.items():
        lines.append(f"  {version:<18}" + "".join(f"{row.get(s, '-'):>{width}}" for s in shapes))
    return lines


STEP_RUNS = [("bench_cuda_train_step.json", ""),
             ("bench_cuda_train_step_pdl.json", ", TG_CUDA_PDL=1"),
             ("bench_cuda_train_step_tf32.json", ", TG_CUDA_TF32=1"),
             ("bench_cuda_train_step_tiled.json", ", TG_CUDA_INDEX_ADD=tiled")]
GROK_RUNS = [("nanda_grok_summary.json", ""), ("nanda_grok_tf32_summary.json", ", TG_CUDA_TF32=1")]


def step_table(results):
    """tinygrok's nanda step three ways, under each setting, and the grokking runs' wall time."""
    lines = []
    for path, how in STEP_RUNS:
        runs = benchmarks(os.path.join(results, path))
        if not runs:
            continue
        lines.append(f"tinygrok nanda step on the GPU{how} (us/step, median of batches of 50):")
        for b in runs:
            if timed(b, "us/step"):
                nodes = (f"  {b['graph_nodes']:.0f} graph nodes"
                         if isinstance(b.get("graph_nodes"), (int, float)) else "")
                lines.append(f"  {short(b['name']):<28} {b['us/step']:9.1f} us{nodes}")
            else:
                lines.append(f"  {short(b['name']):<28} {'-':>9}     "
                             f"({b.get('error_message', 'no us/step')})")
    for path, how in GROK_RUNS:
        full = os.path.join(results, path)
        if os.path.exists(full):
            with open(full) as f:
                s = json.load(f)
            per_step = s.get("train_ms_per_step")
            lines.append(
                f"nanda --stop-at-grok on the GPU{how}: status {s.get('status')}, "
                f"T_g {s.get('T_g')}, train()'s wall {s.get('wall_seconds', float('nan')):.2f} s"
                + (f", {per_step * 1000:.1f} us/step" if isinstance(per_step, (int, float)) else ""))
    return lines


def tinygrok_step_us(results):
    """bench_cuda_train_step's us/step of the graph replay (first: what train runs) and of the
    eager step on the device, where they were timed."""
    steps = benchmarks(os.path.join(results, "bench_cuda_train_step.json"))
    ours = {}
    for mode in ("graph", "on_device"):
        for b in steps:
            if f"/{mode}/" in b["name"] and timed(b, "us/step"):
                ours[mode] = b["us/step"]
    return ours


def pytorch_table(results):
    """PyTorch's ms per nanda step in each mode and model, against tinygrok's step timed the same
    way (bench_cuda_train_step: CUDA events around batches of steps, the median batch): the graph
    replay (what train runs) and the eager step on the device (--cuda-graph off)."""
    ours = {mode: us / 1e3 for mode, us in tinygrok_step_us(results).items()}
    lines = []
    for path in ("pytorch_step.json", "pytorch_step_last.json"):
        full = os.path.join(results, path)
        if not os.path.exists(full):
            continue
        with open(full) as f:
            report = json.load(f)
        setup = report["setup"]
        lines.append(f"nanda step, PyTorch {report['torch']}, "
                     f"{setup.get('model', 'every-position')} ({setup['gflop_per_step']:.1f} GFLOP), "
                     "against tinygrok's step: "
                     + (", ".join(f"{m} {ms:.3f} ms" for m, ms in ours.items()) or "not measured"))
        for r in report["results"]:
            if r["status"] != "ok":
                lines.append(f"  {r['mode']:<24} {r['status']}: {r.get('why', '')[:80]}")
                continue
            ratios = "  ".join(f"{r['ms_per_step'] / ms:6.1f}x {m}" for m, ms in ours.items())
            lines.append(f"  {r['mode']:<24} {r['ms_per_step']:9.3f} ms/step  {ratios}")
        lines.append(f"  losses agree across modes: {report.get('agree')}")
    return lines


NCU_UNITS = {"nsecond": 1, "ns": 1, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6,
             "second": 1e9, "s": 1e9}


def ncu_table(results):
    """ncu's kernel times summed by kernel name over a short eager run: where a step's time goes."""
    path = os.path.join(results, "ncu_kernels.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [line for line in f if line.startswith('"')]  # ncu's own messages are not quoted
    total, calls = collections.Counter(), collections.Counter()
    for row in csv.DictReader(rows):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = row["Kernel Name"]
        for noise in ("void ", "(anonymous namespace)::", "tg::cuda::", "sgemm_detail::"):
            name = name.replace(noise, "")
        name = name.split("(")[0]
        total[name] += float(row["Metric Value"].replace(",", "")) * NCU_UNITS.get(
            row["Metric Unit"], 1)
        calls[name] += 1
    if not calls:
        return []
    lines = [f"ncu: kernel time over a 3-step eager nanda run, evals included "
             f"({sum(calls.values())} kernels, {sum(total.values()) / 1e3:.0f} us in all):"]
    for name, ns in total.most_common(25):
        lines.append(f"  {name[:48]:<48} {ns / 1e3:9.1f} us  {calls[name]:5d} calls")
    return lines


def process_wall_seconds(path):
    """The wall time GNU time (-v) logged for a stage's process, or None."""
    try:
        with open(path) as f:
            for line in f:
                if "Elapsed (wall clock) time" in line:
                    clock = [float(part) for part in line.rsplit(" ", 1)[1].split(":")]
                    return sum(v * 60 ** i for i, v in enumerate(reversed(clock)))
    except (OSError, ValueError):
        pass
    return None


def verdict(ok):
    return "met" if ok else "MISSED"


def step_target(results):
    graph = tinygrok_step_us(results).get("graph")
    if graph is None:
        return []
    return [f"full-batch nanda step <= 100 us: {graph:.1f} us (graph replay)  "
            + verdict(graph <= 100)]


def grok_target(results):
    path = os.path.join(results, "nanda_grok_summary.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        s = json.load(f)
    test_acc = (s.get("final") or {}).get("test_acc")
    process = process_wall_seconds(os.path.join(results, "gpu_grok.out"))
    wall = process if process is not None else s.get("wall_seconds")
    how = "the process, CUDA start-up included" if process is not None else "train()'s clock"
    grokked = (s.get("status") == "grokked" and isinstance(test_acc, (int, float))
               and test_acc >= 0.99)
    return [f"nanda --stop-at-grok to test acc >= 99% in <= 5 s: status {s.get('status')}, "
            f"test acc {test_acc}, {wall:.2f} s wall ({how})  " + verdict(grokked and wall <= 5)]


def pytorch_target(results):
    graph = tinygrok_step_us(results).get("graph")
    lines = []
    for path, model in (("pytorch_step.json", "every position"),
                        ("pytorch_step_last.json", "last position")):
        full = os.path.join(results, path)
        if graph is None or not os.path.exists(full):
            continue
        with open(full) as f:
            eager = next((r["ms_per_step"] for r in json.load(f)["results"]
                          if r["mode"] == "eager" and r["status"] == "ok"), None)
        if eager is not None:
            speedup = eager * 1e3 / graph
            lines.append(f">= 10x PyTorch eager ({model}): {speedup:.1f}x  "
                         + verdict(speedup >= 10))
    return lines


def fused_target(results):
    ratios = [(name, unfused / fused) for name, fused, unfused in fused_pairs(results)]
    if not ratios:
        return []
    slower = [f"{name} {ratio:.2f}x" for name, ratio in ratios if ratio <= 1]
    return [f"each fused kernel faster than its composition: {len(ratios) - len(slower)} of "
            f"{len(ratios)}" + (f"; not: {', '.join(slower)}" if slower else "") + "  "
            + verdict(not slower)]


def targets_table(results):
    """Issue 6's targets on this run, each met or MISSED; a target without its files is left
    out, and one whose files cannot be read says so."""
    lines = []
    for target in (step_target, grok_target, pytorch_target, fused_target):
        try:
            lines += [f"  {line}" for line in target(results)]
        except Exception as e:
            lines.append(f"  {target.__name__}: could not be made: {type(e).__name__}: {e}")
    return ["issue 6's targets on this GPU:"] + lines if lines else []


TABLES = [targets_table, bench_errors, memory_table, fused_table, gemm_table, step_table,
          pytorch_table, ncu_table]


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print("usage: device_tables.py RESULTS_DIR", file=sys.stderr)
        return 2
    for table in TABLES:
        try:
            lines = table(argv[1])
        except Exception as e:  # one unreadable file must not cost the other tables
            lines = [f"{table.__name__}: could not be made: {type(e).__name__}: {e}"]
        if lines:
            print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
