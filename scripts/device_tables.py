#!/usr/bin/env python3
"""The tables that end scripts/device_check.sh's summary, read from the files its stages leave in
build-device/results (Google Benchmark JSON, bench/pytorch_step.py's JSON, the grokking runs'
summary.json, GNU time's log of the grokking run and ncu's CSV), issue 6's targets first, each
met or MISSED:

  python3 scripts/device_tables.py build-device/results

A table whose files are missing is left out, but a target whose files are missing says NOT
MEASURED; a file that cannot be read says so in a line and the others still print, since this
summary is what comes back first from a 15-minute device lease. A Google Benchmark file cut short
by its stage's time limit keeps its complete entries. Tested on files of the same shape in
tests/device_tables_test.py.
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


def read_benchmarks(path):
    """(the entries of a Google Benchmark JSON file, whether the file was cut short). Google
    Benchmark closes the file's list only as it ends, so a stage killed by its time limit leaves
    an unterminated one: its complete entries (each closed by a line "    }") are kept. [] when
    the file is missing or nothing in it can be read."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return [], False
    try:
        return json.loads(text)["benchmarks"], False
    except (ValueError, KeyError, TypeError):
        pass
    cut = text.rfind("\n    }")
    if cut < 0:
        return [], True
    try:
        return json.loads(text[:cut + 6] + "\n  ]\n}")["benchmarks"], True
    except (ValueError, KeyError, TypeError):
        return [], True


def benchmarks(path):
    """The entries of a Google Benchmark JSON file (read_benchmarks), or []."""
    return read_benchmarks(path)[0]


def listed(results, program):
    """The short names a benchmark program registers, from the list device_check.sh saves before
    running it (PROGRAM.list, --benchmark_list_tests), and the names its JSON holds."""
    names = [short(b["name"]) for b in benchmarks(os.path.join(results, program + ".json"))]
    try:
        with open(os.path.join(results, program + ".list")) as f:
            names += [short(line.strip()) for line in f if line.strip()]
    except OSError:
        pass
    return list(dict.fromkeys(names))


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
    cut = []
    for path in sorted(os.listdir(results)):
        if path.startswith("bench_cuda_") and path.endswith(".json"):
            entries, was_cut = read_benchmarks(os.path.join(results, path))
            if was_cut:
                cut.append(f"{path}: cut short by its time limit; its {len(entries)} complete "
                           "entries are kept")
    if not by_message:
        return cut
    count = sum(len(names) for names in by_message.values())
    lines = cut + [f"benchmark entries with errors ({count}):"]
    for why, names in by_message.items():
        if len(names) > 3:
            lines.append(f"  {len(names)} entries: {why[:100]}")
            lines += [f"    {name}" for name in names[:3]] + [f"    ... and {len(names) - 3} more"]
        else:
            lines += [f"  {name:<56} {why[:100]}" for name in names]
    return lines


def memory_table(results):
    """Each memory-bound op's bandwidth and its fraction of a device copy of the same bytes, at
    the large size; at the model's shapes (in L2, microseconds a call) the time per call, which
    the host's dispatch is part of, not a bandwidth."""
    rows = [b for b in benchmarks(os.path.join(results, "bench_cuda_memory.json"))
            if timed(b, "GB/s")]
    large = [b for b in rows if not short(b["name"]).endswith("/model")]
    model = [b for b in rows if short(b["name"]).endswith("/model")]
    lines = []
    if large:
        lines.append("memory bench, past the L2 (GB/s, % of a device copy of the same bytes):")
        for b in large:
            copy = f"{b['%copy']:6.1f}%" if isinstance(b.get("%copy"), (int, float)) else ""
            lines.append(f"  {short(b['name']):<36} {b['GB/s']:8.0f} GB/s {copy}")
    if model:
        lines.append("memory bench at the model's shapes (in L2; us per call, the host's dispatch "
                     "included: not a bandwidth):")
        for b in model:
            us = f"{b['median_us']:8.1f} us" if isinstance(b.get("median_us"), (int, float)) else ""
            lines.append(f"  {short(b['name']):<36} {us}")
    return lines


def composition_of(name):
    """The name of the composition a fused entry is measured against, or None."""
    for fused, unfused in (("/fused/", "/unfused/"), ("/step_norms/", "/ops_norms/"),
                           ("/step/", "/ops/")):
        at = name.rfind(fused)
        if at >= 0:
            return name[:at] + unfused + name[at + len(fused):]
    return None


# A fused kernel and its composition whose times differ by less than this (or than either's own
# spread between batches) are a tie: a GEMM-dominated pair differs by ~1% by construction.
TIE_PERCENT = 2.0


def fused_pairs(results, file_name="bench_cuda_fused.json"):
    """(name, fused us, composition us, noise %) for each fused entry timed beside its
    composition; noise: the larger spread of the two (spread_%) or TIE_PERCENT."""
    runs = {short(b["name"]): b for b in benchmarks(os.path.join(results, file_name))}
    pairs = []
    for name, b in runs.items():
        other = runs.get(composition_of(name) or "")
        if other is not None and timed(b, "median_us") and timed(other, "median_us"):
            spreads = [e["spread_%"] for e in (b, other) if timed(e, "spread_%")]
            pairs.append((name, b["median_us"], other["median_us"],
                          max([TIE_PERCENT] + spreads)))
    return pairs


def expected_fused_pairs(results):
    """The fused entries bench_cuda_fused registers beside a composition, timed or not."""
    names = listed(results, "bench_cuda_fused")
    return [name for name in names if composition_of(name) in names]


# The fused runs: the engine's default, then the linear layers with the SGEMM no GPU has timed
# forced on both sides (device_check.sh's fused_bench_v9), which decides whether a ReLU layer's
# masked backward wins once v9 is the default.
FUSED_RUNS = [("bench_cuda_fused.json", ""),
              ("bench_cuda_fused_v9.json",
               ", linear layers with SGEMM v9 forced (TG_CUDA_SGEMM=9)")]


def fused_table(results):
    """Each fused kernel against the composition it replaced (issue 6: each faster)."""
    lines = []
    for path, how in FUSED_RUNS:
        rows = [f"  {name:<40} {fused:9.1f} us  vs {unfused:9.1f} us  {unfused / fused:5.2f}x"
                f"  (noise {noise:.0f}%)"
                for name, fused, unfused, noise in fused_pairs(results, path)]
        if rows:
            lines += [f"fused kernels against their compositions{how} (median us per call, "
                      "speed-up):"] + rows
    return lines


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
        if isinstance(b.get("%cuBLAS_TF32"), (int, float)):  # a version on TF32 tensor cores
            share = f" {b['%cuBLAS_TF32']:3.0f}%t"
        elif isinstance(b.get("%cuBLAS"), (int, float)):
            share = f" {b['%cuBLAS']:3.0f}% "
        else:
            share = ""
        cells[version][shape] = f"{b['GFLOP/s']:6.0f}{share}"
    if not cells:
        return []
    width = max(16, max(len(s) for s in shapes) + 1)
    lines = ["SGEMM GFLOP/s and % of cuBLAS (TF32 off; t: of cuBLAS with TF32 on, for a version "
             "on TF32 tensor cores) per shape M x K x N:",
             "  " + f"{'':<18}" + "".join(f"{s:>{width}}" for s in shapes)]
    for version, row in cells.items():
        lines.append(f"  {version:<18}" + "".join(f"{row.get(s, '-'):>{width}}" for s in shapes))
    return lines


STEP_RUNS = [("bench_cuda_train_step.json", ""),
             ("bench_cuda_train_step_pdl.json", ", TG_CUDA_PDL=1"),
             ("bench_cuda_train_step_tf32.json", ", TG_CUDA_TF32=1"),
             ("bench_cuda_train_step_tiled.json", ", TG_CUDA_INDEX_ADD=tiled"),
             ("bench_cuda_train_step_v9.json", ", TG_CUDA_SGEMM=9"),
             ("bench_cuda_train_step_v10.json", ", TG_CUDA_SGEMM=10")]
GROK_RUNS = [("nanda_grok_summary.json", ""),
             ("nanda_grok_tf32_summary.json", ", TG_CUDA_TF32=1"),
             ("nanda_grok_v9_summary.json", ", TG_CUDA_SGEMM=9"),
             ("nanda_grok_v10_summary.json", ", TG_CUDA_SGEMM=10")]


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
    lines += tiling_lines(results)
    for path, how in GROK_RUNS:
        full = os.path.join(results, path)
        if os.path.exists(full):
            with open(full) as f:
                s = json.load(f)
            per_step = s.get("train_ms_per_step")
            parts = s.get("wall_seconds_by_part")
            lines.append(
                f"nanda --stop-at-grok on the GPU{how}: status {s.get('status')}, "
                f"T_g {s.get('T_g')}, train()'s wall {s.get('wall_seconds', float('nan')):.2f} s"
                + (f", {per_step * 1000:.1f} us/step" if isinstance(per_step, (int, float)) else "")
                + (" (" + ", ".join(f"{part} {parts[part]:.3f} s" for part in WALL_PARTS
                                    if isinstance(parts.get(part), (int, float))) + ")"
                   if isinstance(parts, dict) else ""))
    return lines


TILING_PREFIX = "bench_cuda_train_step_v9_"  # + <tiling>.json: device_check's step_bench_tilings


def tiling_lines(results):
    """The recorded step with v9 at each of its other block tilings, fastest first."""
    rows = []
    for name in os.listdir(results):
        if not (name.startswith(TILING_PREFIX) and name.endswith(".json")):
            continue
        tiling = name[len(TILING_PREFIX):-len(".json")]
        graph = [b for b in benchmarks(os.path.join(results, name)) if "/graph/" in b["name"]]
        if graph and timed(graph[0], "us/step"):
            rows.append((graph[0]["us/step"], f"  {tiling:<28} {graph[0]['us/step']:9.1f} us"))
        else:
            why = graph[0].get("error_message", "no us/step") if graph else "no graph entry"
            rows.append((float("inf"), f"  {tiling:<28} {'-':>9}     ({why})"))
    if not rows:
        return []
    rows.sort()  # by time, then by name
    return (["tinygrok nanda step's graph replay with v9 at each block tiling "
             "(TG_CUDA_SGEMM=9 TG_CUDA_MMA_TILING=<tiling>; us/step, fastest first):"]
            + [text for _, text in rows])


# summary.json's wall_seconds_by_part, in the order the line names them (the file sorts keys).
WALL_PARTS = ("steps", "evals", "checkpoints", "other")


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
    for path in ("pytorch_step.json", "pytorch_step_last.json", "pytorch_compile.json"):
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


def ncu_rows(results, file_name):
    """The metric rows of an ncu --csv log under results (none when it is missing)."""
    path = os.path.join(results, file_name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [line for line in f if line.startswith('"')]  # ncu's own messages are not quoted
    return list(csv.DictReader(lines))


def kernel_short_name(name):
    """A kernel's name without its return type, namespaces and parameter list."""
    # ncu names the anonymous namespace "unnamed>" (its "<" lost).
    for noise in ("void ", "(anonymous namespace)::", "<unnamed>::", "unnamed>::",
                  "tg::cuda::", "sgemm_detail::"):
        name = name.replace(noise, "")
    return name.split("(")[0]


def ncu_table(results, file_name="ncu_kernels.csv", how=""):
    """ncu's kernel times summed by kernel name over a short eager run: where a step's time goes."""
    total, calls = collections.Counter(), collections.Counter()
    for row in ncu_rows(results, file_name):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = kernel_short_name(row["Kernel Name"])
        total[name] += float(row["Metric Value"].replace(",", "")) * NCU_UNITS.get(
            row["Metric Unit"], 1)
        calls[name] += 1
    if not calls:
        return []
    lines = [f"ncu: kernel time over a 3-step eager nanda run{how}, evals included "
             f"({sum(calls.values())} kernels, {sum(total.values()) / 1e3:.0f} us in all):"]
    for name, ns in total.most_common(25):
        lines.append(f"  {name[:48]:<48} {ns / 1e3:9.1f} us  {calls[name]:5d} calls")
    return lines


def ncu_table_v9(results):
    """The same run with every product on SGEMM v9 (device_check.sh's ncu_kernels_v9)."""
    return ncu_table(results, "ncu_kernels_v9.csv", ", TG_CUDA_SGEMM=9")


NCU_SECTION_METRICS = (("Duration", "us"), ("Compute (SM) Throughput", "SM %"),
                       ("Memory Throughput", "mem %"), ("Achieved Occupancy", "occ %"),
                       ("Theoretical Occupancy", "max occ %"), ("Registers Per Thread", "regs"),
                       ("Waves Per SM", "waves"))


def ncu_sections_table(results):
    """ncu's sections for training step 2's kernels, one line each, in launch order: how
    full each keeps the GPU (occupancy, waves) and how near its peaks it runs."""
    kernels = {}  # ID -> (name, grid, block, {metric: value}), in launch order
    for row in ncu_rows(results, "ncu_sections.csv"):
        metric = row.get("Metric Name")
        if metric not in dict(NCU_SECTION_METRICS):
            continue
        kernel = kernels.setdefault(row["ID"], (kernel_short_name(row["Kernel Name"]),
                                                row["Grid Size"], row["Block Size"], {}))
        value = float(row["Metric Value"].replace(",", ""))
        if metric == "Duration":
            value *= NCU_UNITS.get(row["Metric Unit"], 1) / 1e3  # in us
        kernel[3][metric] = value
    if not kernels:
        return []
    lines = ["ncu sections, training step 2's kernels in launch order (eager, nanda):",
             f"  {'kernel':<44} {'grid':<14} {'block':<7}"
             + " ".join(f"{unit:>9}" for _, unit in NCU_SECTION_METRICS)]
    for name, grid, block, values in kernels.values():
        cells = " ".join(f"{values[m]:9.1f}" if m in values else f"{'-':>9}"
                         for m, _ in NCU_SECTION_METRICS)
        lines.append(f"  {name[:44]:<44} {grid:<14} {block.split(',')[0].strip('( '):<7}{cells}")
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


def not_measured(what, why):
    return f"{what}: NOT MEASURED ({why})"


def stage_wall_seconds(results, stage):
    """The wall time device_check.sh measured around a stage's process (STAGE.wall), or None."""
    try:
        with open(os.path.join(results, stage + ".wall")) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


STEP_TARGET = "full-batch nanda step <= 100 us"


def step_target(results):
    graph = tinygrok_step_us(results).get("graph")
    if graph is None:
        return [not_measured(STEP_TARGET, "no graph us/step in bench_cuda_train_step.json")]
    return [f"{STEP_TARGET}: {graph:.1f} us (graph replay)  " + verdict(graph <= 100)]


GROK_TARGET = "nanda --stop-at-grok to test acc >= 99% in <= 5 s"


def grok_target(results):
    path = os.path.join(results, "nanda_grok_summary.json")
    if not os.path.exists(path):
        return [not_measured(GROK_TARGET, "no summary.json from the gpu_grok stage")]
    with open(path) as f:
        s = json.load(f)
    test_acc = (s.get("final") or {}).get("test_acc")
    grokked = (s.get("status") == "grokked" and isinstance(test_acc, (int, float))
               and test_acc >= 0.99)
    # The target is the whole process's wall time, CUDA start-up and evals included: the
    # script's clock around the stage, else GNU time's; train()'s own clock starts after the
    # CUDA context and the model exist, so it cannot decide the target.
    wall = stage_wall_seconds(results, "gpu_grok")
    how = "the process, by device_check.sh's clock"
    if wall is None:
        wall = process_wall_seconds(os.path.join(results, "gpu_grok.out"))
        how = "the process, by GNU time"
    head = f"{GROK_TARGET}: status {s.get('status')}, test acc {test_acc}, "
    if wall is None:
        train_wall = s.get("wall_seconds", float("nan"))
        return [head + f"{train_wall:.2f} s by train()'s clock (start-up excluded: not the "
                "target's measure)  " + ("MISSED" if not grokked else "NOT MEASURED")]
    return [head + f"{wall:.2f} s wall ({how})  " + verdict(grokked and wall <= 5)]


def pytorch_eager_ms(results, path):
    full = os.path.join(results, path)
    if not os.path.exists(full):
        return None
    with open(full) as f:
        return next((r["ms_per_step"] for r in json.load(f)["results"]
                     if r["mode"] == "eager" and r["status"] == "ok"), None)


def pytorch_target(results):
    """Issue 6's comparison: the model as a PyTorch user writes it (every position), eager. The
    same model computing only what the loss reads, as tinygrok does, is shown beside it."""
    graph = tinygrok_step_us(results).get("graph")
    lines = []
    for path, model, role in (("pytorch_step.json", "every position", "issue 6's comparison"),
                              ("pytorch_step_last.json", "last position, tinygrok's work",
                               "for information")):
        what = f">= 10x PyTorch eager ({model}; {role})"
        eager = pytorch_eager_ms(results, path)
        if graph is None or eager is None:
            lines.append(not_measured(what, "no tinygrok graph step" if graph is None
                                      else f"no eager result in {path}"))
            continue
        speedup = eager * 1e3 / graph
        lines.append(f"{what}: {speedup:.1f}x"
                     + (f"  {verdict(speedup >= 10)}" if role == "issue 6's comparison" else ""))
    return lines


FUSED_TARGET = "each fused kernel faster than its composition"


def fused_target(results):
    pairs = fused_pairs(results)
    expected = expected_fused_pairs(results)
    if not expected:
        return [not_measured(FUSED_TARGET, "no bench_cuda_fused results")]
    timed_names = {name for name, *_ in pairs}
    unmeasured = [name for name in expected if name not in timed_names]
    slower, ties = [], []
    for name, fused, unfused, noise in pairs:
        change = 100 * (unfused / fused - 1)
        if change < -noise:
            slower.append(f"{name} {unfused / fused:.2f}x")
        elif abs(change) <= noise:
            ties.append(f"{name} {unfused / fused:.2f}x")
    faster = len(pairs) - len(slower) - len(ties)
    text = f"{FUSED_TARGET}: {faster} of {len(expected)} faster beyond noise"
    if ties:
        text += f"; within noise: {', '.join(ties)}"
    if slower:
        text += f"; slower: {', '.join(slower)}"
    if unmeasured:
        text += f"; not measured: {len(unmeasured)} ({', '.join(unmeasured[:3])}"
        text += ", ...)" if len(unmeasured) > 3 else ")"
    result = ("MISSED" if slower else "NOT MEASURED" if unmeasured
              else "TIED (within noise)" if ties else "met")
    return [text + "  " + result]


def failed_cuda_tests(results):
    """The CUDA test programs device_check.sh's cuda_tests stage saw fail, or []."""
    try:
        with open(os.path.join(results, "cuda_tests.out")) as f:
            text = f.read()
    except OSError:
        return []
    tail = text.split("The following tests FAILED:", 1)
    return sorted(set(re.findall(r"test_cuda_[a-z_0-9]+", tail[1]))) if len(tail) == 2 else []


def targets_table(results):
    """Issue 6's targets on this run, each met, MISSED or NOT MEASURED (its stage skipped, cut or
    failed); one whose files cannot be read says so."""
    lines = []
    for target in (step_target, grok_target, pytorch_target, fused_target):
        try:
            lines += [f"  {line}" for line in target(results)]
        except Exception as e:
            lines.append(f"  {target.__name__}: could not be made: {type(e).__name__}: {e}")
    failed = failed_cuda_tests(results)
    if failed:
        lines.append(f"  the CUDA tests FAILED ({', '.join(failed)}): the speeds above are of "
                     "kernels not shown correct")
    return ["issue 6's targets on this GPU:"] + lines


TABLES = [targets_table, bench_errors, memory_table, fused_table, gemm_table, step_table,
          pytorch_table, ncu_table, ncu_table_v9, ncu_sections_table]


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
