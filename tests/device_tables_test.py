"""scripts/device_tables.py on result files of the shapes the GPU run writes: Google Benchmark
JSON entries as bench_cuda_* report them (timed, skipped, declined), pytorch_step.py's JSON,
tinygrok's summary.json and ncu's CSV. Without a GPU here, this is what keeps the tables that
end the device run's summary from failing on their first real input.

  python3 tests/device_tables_test.py
"""
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import device_tables  # noqa: E402


def entry(name, **counters):
    """A Google Benchmark JSON entry as the benchmark library writes it."""
    b = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 1,
         "threads": 1, "iterations": 10, "real_time": 1.0, "cpu_time": 1.0, "time_unit": "us"}
    b.update(counters)
    return b


def failed(name, why):
    return {"name": name, "run_name": name, "run_type": "iteration", "error_occurred": True,
            "error_message": why, "iterations": 0, "real_time": 0.0, "cpu_time": 0.0,
            "time_unit": "us"}


OPT = "/min_time:0.100/manual_time"


class DeviceTablesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.results = self.dir.name

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, content):
        with open(os.path.join(self.results, name), "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))

    def write_bench(self, name, entries):
        self.write(name, {"context": {"date": "2026-11-29"}, "benchmarks": entries})

    def summary(self):
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(device_tables.main(["device_tables.py", self.results]), 0)
        return out.getvalue()

    def test_short_names_drop_the_run_options(self):
        self.assertEqual(device_tables.short("BM_nanda_step/graph/iterations:40/manual_time"),
                         "nanda_step/graph")
        self.assertEqual(device_tables.short("sgemm/v7_warptiling/512x3830x128_AT" + OPT),
                         "sgemm/v7_warptiling/512x3830x128_AT")
        self.assertEqual(device_tables.short("memory/memcpy_d2d/large/iterations:1/manual_time"),
                         "memory/memcpy_d2d/large")

    def test_an_empty_results_directory_says_every_target_was_not_measured(self):
        lines = self.summary().splitlines()
        self.assertEqual(lines[0], "issue 6's targets on this GPU:")
        self.assertEqual(len(lines), 6)  # the step, grokking, PyTorch twice, the fused kernels
        self.assertTrue(all("NOT MEASURED (" in line for line in lines[1:]), lines)

    def test_step_table_and_grokking_runs(self):
        self.write_bench("bench_cuda_train_step.json", [
            entry("BM_nanda_step/host_driven/iterations:40/manual_time", **{"us/step": 412.5}),
            entry("BM_nanda_step/on_device/iterations:40/manual_time", **{"us/step": 180.25}),
            entry("BM_nanda_step/graph/iterations:40/manual_time",
                  **{"us/step": 95.0, "graph_nodes": 38.0})])
        self.write_bench("bench_cuda_train_step_pdl.json", [
            failed("BM_nanda_step/graph/iterations:40/manual_time", "CUDA error: launch failed")])
        self.write("nanda_grok_summary.json", {
            "status": "grokked", "T_g": 4200, "wall_seconds": 3.21, "train_ms_per_step": 0.097,
            "wall_seconds_by_part": {"checkpoints": 0.06, "evals": 0.2, "other": 0.05,
                                     "steps": 2.9}})
        self.write_bench("bench_cuda_train_step_v9.json", [
            entry("BM_nanda_step/graph/iterations:40/manual_time", **{"us/step": 61.5})])
        self.write_bench("bench_cuda_train_step_v9_32x64k16s3w2.json", [
            entry("BM_nanda_step/graph/iterations:40/manual_time", **{"us/step": 55.25})])
        self.write_bench("bench_cuda_train_step_v9_128x64k16s3w8.json", [
            entry("BM_nanda_step/graph/iterations:40/manual_time", **{"us/step": 70.0})])
        self.write_bench("bench_cuda_train_step_v9_32x32k16s4w1.json", [
            failed("BM_nanda_step/graph/iterations:40/manual_time", "CUDA error: out of memory")])
        self.write("nanda_grok_v9_summary.json", {"status": "grokked", "T_g": 4300,
                                                  "wall_seconds": 1.5})
        self.write("nanda_grok_v10_summary.json", {"status": "grokked", "T_g": 5100,
                                                   "wall_seconds": 1.25})
        text = self.summary()
        self.assertIn("on the GPU, TG_CUDA_SGEMM=10: status grokked, T_g 5100, "
                      "train()'s wall 1.25 s", text)
        self.assertIn("tinygrok nanda step on the GPU, TG_CUDA_SGEMM=9 (us/step", text)
        self.assertRegex(text, r"TG_CUDA_SGEMM=9 \(us/step[^\n]*\n  nanda_step/graph +61\.5 us")
        self.assertIn("on the GPU, TG_CUDA_SGEMM=9: status grokked, T_g 4300, "
                      "train()'s wall 1.50 s", text)
        # The tilings, fastest first, the failed one last with its error; not in v9's own table.
        self.assertRegex(text, r"v9 at each block tiling \(TG_CUDA_SGEMM=9 TG_CUDA_MMA_TILING="
                               r"<tiling>; us/step, fastest first\):\n"
                               r"  32x64k16s3w2 +55\.2 us\n"
                               r"  128x64k16s3w8 +70\.0 us\n"
                               r"  32x32k16s4w1 +- +\(CUDA error: out of memory\)")
        self.assertRegex(text, r"TG_CUDA_SGEMM=9 \(us/step[^\n]*\n  nanda_step/graph +61\.5 us\n"
                               r"(?!  nanda_step)")
        self.assertIn("tinygrok nanda step on the GPU (us/step", text)
        self.assertRegex(text, r"nanda_step/graph +95\.0 us  38 graph nodes")
        self.assertRegex(text, r"nanda_step/on_device +180\.2 us")
        self.assertIn("TG_CUDA_PDL=1", text)
        self.assertIn("(CUDA error: launch failed)", text)
        self.assertIn("status grokked, T_g 4200, train()'s wall 3.21 s, 97.0 us/step (steps "
                      "2.900 s, evals 0.200 s, checkpoints 0.060 s, other 0.050 s)", text)
        self.assertIn("benchmark entries with errors (2):", text)
        self.assertRegex(text, r"bench_cuda_train_step_v9_32x32k16s4w1: nanda_step/graph +CUDA "
                               r"error: out of memory")

    def test_fused_kernels_against_their_compositions(self):
        self.write_bench("bench_cuda_fused.json", [
            entry("fused/attention/forward/fused/model" + OPT, median_us=20.0),
            entry("fused/attention/forward/unfused/model" + OPT, median_us=50.0),
            entry("fused/adamw/step/model" + OPT, median_us=10.0),
            entry("fused/adamw/ops/model" + OPT, median_us=80.0),
            entry("fused/adamw/step_norms/model" + OPT, median_us=12.0),
            entry("fused/adamw/ops_norms/model" + OPT, median_us=96.0),
            entry("fused/embedding/forward/fused/model" + OPT, median_us=3.0),  # no partner
        ])
        text = self.summary()
        self.assertRegex(text, r"fused/attention/forward/fused/model +20\.0 us  vs +50\.0 us  +2\.50x")
        self.assertRegex(text, r"fused/adamw/step/model +10\.0 us  vs +80\.0 us  +8\.00x")
        self.assertRegex(text, r"fused/adamw/step_norms/model +12\.0 us  vs +96\.0 us  +8\.00x")
        self.assertNotIn("embedding", text)
        self.assertNotIn("v9 forced", text)
        # The linear layers again with v9 forced: a table of their own, and not the target's.
        self.write_bench("bench_cuda_fused_v9.json", [
            entry("fused/linear_relu_backward/fused/model" + OPT, median_us=30.0),
            entry("fused/linear_relu_backward/unfused/model" + OPT, median_us=36.0),
        ])
        text = self.summary()
        v9 = text.split("SGEMM v9 forced (TG_CUDA_SGEMM=9)", 1)
        self.assertEqual(len(v9), 2)
        self.assertRegex(v9[1], r"fused/linear_relu_backward/fused/model +30\.0 us  vs"
                                r" +36\.0 us  +1\.20x")
        self.assertNotIn("linear_relu_backward", v9[0])
        self.assertRegex(text, r"each fused kernel faster than its composition: 3 of 3 faster")

    def test_gemm_table_has_a_column_per_shape(self):
        self.write_bench("bench_cuda_gemm.json", [
            entry("sgemm/cublas_fp32/1024x1024x1024" + OPT, **{"GFLOP/s": 40000.0,
                                                               "%cuBLAS": 100.0}),
            entry("sgemm/v7_warptiling/1024x1024x1024" + OPT, **{"GFLOP/s": 30000.0,
                                                                 "%cuBLAS": 75.0}),
            entry("sgemm/v7_warptiling/512x3830x128_AT" + OPT, **{"GFLOP/s": 9000.0,
                                                                  "%cuBLAS": 90.0}),
            failed("sgemm/v6_vectorized/512x3830x128_AT" + OPT,
                   "v6_vectorized declines these arguments"),
            entry("sgemm/engine/1024x1024x1024" + OPT, **{"GFLOP/s": 30000.0, "rel_err": 1e-7}),
            entry("sgemm/v8_wmma_tf32/1024x1024x1024" + OPT,
                  **{"GFLOP/s": 90000.0, "%cuBLAS": 225.0, "%cuBLAS_TF32": 60.0}),
        ])
        lines = self.summary().splitlines()
        self.assertIn("SGEMM GFLOP/s and % of cuBLAS (TF32 off; t: of cuBLAS with TF32 on, for a "
                      "version on TF32 tensor cores) per shape M x K x N:", lines)
        header = next(line for line in lines if "1024x1024x1024" in line)
        self.assertLess(header.index("1024x1024x1024"), header.index("512x3830x128_AT"))
        v7 = next(line for line in lines if "v7_warptiling" in line)
        self.assertRegex(v7, r"30000  75%  +9000  90%")
        self.assertRegex(next(line for line in lines if "v8_wmma_tf32" in line),
                         r"90000  60%t")  # against cuBLAS on tensor cores, its like
        self.assertRegex(next(line for line in lines if "engine" in line), r"30000 +-$")
        self.assertNotIn("declines", "\n".join(lines))  # a declined shape is no error

    def test_memory_table(self):
        self.write_bench("bench_cuda_memory.json", [
            entry("memory/memcpy_d2d/large/iterations:1/manual_time", **{"GB/s": 4000.0}),
            entry("memory/cross_entropy/large" + OPT, **{"GB/s": 3000.0, "%copy": 75.0,
                                                         "median_us": 10.0, "MB": 30.0}),
            entry("memory/exp/model" + OPT, **{"GB/s": 9000.0, "%copy": 90.0, "median_us": 1.7}),
        ])
        text = self.summary()
        self.assertRegex(text, r"memory/cross_entropy/large +3000 GB/s +75\.0%")
        self.assertRegex(text, r"memory/memcpy_d2d/large +4000 GB/s")
        # In L2 and microseconds long: a time per call, not a bandwidth.
        self.assertIn("memory bench at the model's shapes (in L2; us per call", text)
        self.assertRegex(text, r"memory/exp/model +1\.7 us\n")
        self.assertNotIn("9000 GB/s", text)

    def test_pytorch_table_compares_with_the_graph_step(self):
        self.write_bench("bench_cuda_train_step.json", [
            entry("BM_nanda_step/on_device/iterations:40/manual_time", **{"us/step": 200.0}),
            entry("BM_nanda_step/graph/iterations:40/manual_time", **{"us/step": 100.0})])
        self.write("pytorch_step.json", {
            "torch": "2.11.0", "setup": {"model": "every-position", "gflop_per_step": 12.3},
            "results": [
                {"mode": "eager", "status": "ok", "ms_per_step": 2.5},
                {"mode": "graphs", "status": "unavailable", "why": "no CUDA graphs"},
                {"mode": "compile", "status": "error", "why": "Traceback: ...",
                 "seconds": 1.0}],
            "agree": True})
        text = self.summary()
        self.assertIn("PyTorch 2.11.0, every-position (12.3 GFLOP), against tinygrok's step: "
                      "graph 0.100 ms, on_device 0.200 ms", text)
        self.assertRegex(text, r"eager +2\.500 ms/step +25\.0x graph +12\.5x on_device")
        self.assertIn("graphs                   unavailable: no CUDA graphs", text)
        self.assertIn("losses agree across modes: True", text)

    def test_ncu_table_sums_by_kernel(self):
        header = ('"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream",'
                  '"Block Size","Grid Size","Device","CC","Section Name","Metric Name",'
                  '"Metric Unit","Metric Value"\n')
        row = ('"{i}","1","tinygrok","host","{kernel}","1","7","(256, 1, 1)","(60, 1, 1)","0",'
               '"9.0","Command line profiler metrics","gpu__time_duration.sum","{unit}","{value}"\n')
        kernel = "void tg::cuda::(anonymous namespace)::adam_kernel<float>(tg::AdamArgs)"
        self.write("ncu_kernels.csv",
                   "==PROF== Connected to process 1\n" + header
                   + row.format(i=0, kernel=kernel, unit="nsecond", value="1,500")
                   + row.format(i=1, kernel=kernel, unit="usecond", value="2.5")
                   + row.format(i=2, kernel="copy_kernel<float, float, false>(float)",
                                unit="ns", value="700"))
        self.write("ncu_kernels_v9.csv", header + row.format(
            i=0, kernel="void tg::cuda::sgemm_detail::mma_pipeline::mma_kernel<float>(GemmArgs)",
            unit="usecond", value="12"))
        text = self.summary()
        self.assertIn("nanda run, evals included (3 kernels, 5 us in all)", text)
        self.assertRegex(text, r"adam_kernel<float> +4\.0 us +2 calls")
        self.assertRegex(text, r"copy_kernel<float, float, false> +0\.7 us +1 calls")
        self.assertRegex(text, r"nanda run, TG_CUDA_SGEMM=9, evals included \(1 kernels, 12 us "
                               r"in all\):\n  mma_pipeline::mma_kernel<float> +12\.0 us +1 calls")

    def test_ncu_sections_table_lists_kernels_in_launch_order(self):
        header = ('"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream",'
                  '"Block Size","Grid Size","Device","CC","Section Name","Metric Name",'
                  '"Metric Unit","Metric Value"\n')
        row = ('"{i}","1","tinygrok","host","{kernel}","1","7","(256, 1, 1)","{grid}","0","9.0",'
               '"SpeedOfLight","{metric}","{unit}","{value}"\n')
        gemm = "void tg::cuda::(anonymous namespace)::warptiling_kernel<0, 0, 1, 0>(GemmArgs)"
        attention = "void unnamed>::fused_forward_kernel<float, 8192>(X)"  # as ncu 2025 names it
        self.write("ncu_sections.csv", "==PROF== Connected to process 1\n" + header
                   + row.format(i=7, kernel=attention, grid="(3830, 1, 1)", metric="Duration",
                                unit="usecond", value="70.66")
                   + row.format(i=3, kernel=gemm, grid="(4, 30, 1)", metric="Duration",
                                unit="nsecond", value="49,600")
                   + row.format(i=3, kernel=gemm, grid="(4, 30, 1)",
                                metric="Achieved Occupancy", unit="%", value="12.5")
                   + row.format(i=3, kernel=gemm, grid="(4, 30, 1)", metric="Block Limit SM",
                                unit="block", value="32"))
        text = self.summary()
        self.assertIn("ncu sections, training step 2's kernels", text)
        # launch order is the file's order of first appearance; absent metrics show as -
        self.assertRegex(text, r"fused_forward_kernel<float, 8192> +\(3830, 1, 1\) +256 +70\.7 +-")
        self.assertRegex(text, r"warptiling_kernel<0, 0, 1, 0> +\(4, 30, 1\) +256 +49\.6 +- +- "
                               r"+12\.5 +-")
        self.assertLess(text.index("fused_forward_kernel"), text.index("warptiling_kernel"))
        self.assertNotIn("unnamed", text)

    def write_targets(self, graph_us, wall_s, status, test_acc, eager_ms, fused_us):
        self.write_bench("bench_cuda_train_step.json", [
            entry("BM_nanda_step/on_device/iterations:40/manual_time", **{"us/step": 400.0}),
            entry("BM_nanda_step/graph/iterations:40/manual_time", **{"us/step": graph_us})])
        self.write("nanda_grok_summary.json", {"status": status, "T_g": 4200, "wall_seconds": 1.0,
                                               "final": {"test_acc": test_acc}})
        self.write("gpu_grok.out", "step 4200 ...\n\tCommand being timed: \"tinygrok train\"\n"
                   f"\tElapsed (wall clock) time (h:mm:ss or m:ss): 0:0{wall_s:.2f}\n"
                   "\tMaximum resident set size (kbytes): 512000\n")
        for path in ("pytorch_step.json", "pytorch_step_last.json"):
            self.write(path, {"torch": "2.11.0", "setup": {"gflop_per_step": 1.0},
                              "results": [{"mode": "eager", "status": "ok",
                                           "ms_per_step": eager_ms}]})
        self.write_bench("bench_cuda_fused.json", [
            entry("fused/attention/forward/fused/model" + OPT, median_us=fused_us),
            entry("fused/attention/forward/unfused/model" + OPT, median_us=50.0),
            entry("fused/adamw/step/model" + OPT, median_us=10.0),
            entry("fused/adamw/ops/model" + OPT, median_us=80.0)])

    def test_targets_met(self):
        self.write_targets(graph_us=90.0, wall_s=4.5, status="grokked", test_acc=0.995,
                           eager_ms=1.8, fused_us=20.0)
        text = self.summary()
        self.assertTrue(text.startswith("issue 6's targets on this GPU:\n"))
        self.assertIn("full-batch nanda step <= 100 us: 90.0 us (graph replay)  met", text)
        self.assertIn("status grokked, test acc 0.995, 4.50 s wall (the process, by GNU time)  met",
                      text)  # GNU time's wall, not train()'s 1.0 s
        self.assertIn(">= 10x PyTorch eager (every position; issue 6's comparison): 20.0x  met",
                      text)
        self.assertIn("(last position, tinygrok's work; for information): 20.0x\n", text)
        self.assertIn("each fused kernel faster than its composition: 2 of 2 faster beyond noise  "
                      "met", text)
        self.assertNotIn("MISSED", text)

    def test_targets_missed(self):
        self.write_targets(graph_us=120.0, wall_s=5.5, status="grokked", test_acc=0.995,
                           eager_ms=1.0, fused_us=60.0)
        text = self.summary()
        self.assertIn("120.0 us (graph replay)  MISSED", text)
        self.assertIn("5.50 s wall (the process, by GNU time)  MISSED", text)
        self.assertIn(">= 10x PyTorch eager (every position; issue 6's comparison): 8.3x  MISSED",
                      text)
        self.assertIn("1 of 2 faster beyond noise; slower: fused/attention/forward/fused/model "
                      "0.83x  MISSED", text)

    def test_a_run_that_did_not_grok_misses_however_fast(self):
        self.write_targets(graph_us=90.0, wall_s=2.0, status="completed", test_acc=0.5,
                           eager_ms=1.8, fused_us=20.0)
        os.remove(os.path.join(self.results, "gpu_grok.out"))
        self.assertIn("status completed, test acc 0.5, 1.00 s by train()'s clock (start-up "
                      "excluded: not the target's measure)  MISSED", self.summary())

    def test_the_stage_clock_decides_the_grokking_target_and_train_clock_cannot(self):
        self.write_targets(graph_us=90.0, wall_s=4.5, status="grokked", test_acc=0.995,
                           eager_ms=1.8, fused_us=20.0)
        self.write("gpu_grok.wall", "5.20\n")  # device_check.sh's clock around the process
        self.assertIn("5.20 s wall (the process, by device_check.sh's clock)  MISSED",
                      self.summary())
        os.remove(os.path.join(self.results, "gpu_grok.wall"))
        os.remove(os.path.join(self.results, "gpu_grok.out"))
        # train()'s 1.0 s excludes CUDA's start-up: a grokked run is not counted as met on it.
        self.assertIn("1.00 s by train()'s clock (start-up excluded: not the target's measure)  "
                      "NOT MEASURED", self.summary())

    def test_fused_pairs_cut_or_failed_are_not_measured_and_close_ones_tie(self):
        self.write_bench("bench_cuda_fused.json", [
            entry("fused/adamw/step/model" + OPT, median_us=10.0, **{"spread_%": 1.0}),
            entry("fused/adamw/ops/model" + OPT, median_us=80.0, **{"spread_%": 1.0}),
            entry("fused/linear_relu/fused/large" + OPT, median_us=4000.0, **{"spread_%": 3.0}),
            entry("fused/linear_relu/unfused/large" + OPT, median_us=4040.0, **{"spread_%": 1.0}),
            failed("fused/attention/layer/fused/model" + OPT, "an illegal memory access"),
            entry("fused/attention/layer/unfused/model" + OPT, median_us=50.0)])
        # The program registers one pair more, which the time limit cut before it ran.
        self.write("bench_cuda_fused.list", "\n".join(
            name + "/min_time:0.100/manual_time" for name in [
                "fused/adamw/step/model", "fused/adamw/ops/model", "fused/linear_relu/fused/large",
                "fused/linear_relu/unfused/large", "fused/attention/layer/fused/model",
                "fused/attention/layer/unfused/model", "fused/cross_entropy/fused/model",
                "fused/cross_entropy/unfused/model"]) + "\n")
        text = self.summary()
        self.assertIn("each fused kernel faster than its composition: 1 of 4 faster beyond "
                      "noise; within noise: fused/linear_relu/fused/large 1.01x; not measured: 2 "
                      "(fused/attention/layer/fused/model, fused/cross_entropy/fused/model)  "
                      "NOT MEASURED", text)

    def test_a_benchmark_file_cut_by_the_time_limit_keeps_its_complete_entries(self):
        entries = [entry(f"memory/exp{i}/large" + OPT, **{"GB/s": 1000.0 + i, "%copy": 50.0})
                   for i in range(3)]
        whole = json.dumps({"context": {}, "benchmarks": entries}, indent=2)
        self.write("bench_cuda_memory.json", whole[:whole.rindex('"memory/exp2')])  # killed
        text = self.summary()
        self.assertIn("bench_cuda_memory.json: cut short by its time limit; its 2 complete "
                      "entries are kept", text)
        self.assertRegex(text, r"memory/exp1/large +1001 GB/s")
        self.assertNotIn("exp2", text)

    def test_failed_cuda_tests_are_named_beside_the_speeds(self):
        self.write_targets(graph_us=90.0, wall_s=4.5, status="grokked", test_acc=0.995,
                           eager_ms=1.8, fused_us=20.0)
        self.write("cuda_tests.out", "...\nThe following tests FAILED:\n\t 5 - test_cuda_attention "
                   "(Failed)\nErrors while running CTest\n")
        self.assertIn("the CUDA tests FAILED (test_cuda_attention): the speeds above are of "
                      "kernels not shown correct", self.summary())

    def test_many_errors_with_one_message_are_one_group(self):
        self.write_bench("bench_cuda_gemm.json", [
            failed(f"sgemm/v{i}_x/1024x1024x1024" + OPT, "skipped: no CUDA device")
            for i in range(1, 9)])
        text = self.summary()
        self.assertIn("benchmark entries with errors (8):\n  8 entries: skipped: no CUDA device",
                      text)
        self.assertIn("... and 5 more", text)

    def test_an_unreadable_file_costs_only_its_table(self):
        self.write("bench_cuda_train_step.json", '{"benchmarks": [')  # cut off by a time limit
        self.write("nanda_grok_summary.json", "not json")
        self.write("pytorch_step.json", {"torch": "2.11.0", "results": []})  # no setup
        self.write_bench("bench_cuda_memory.json", [
            entry("memory/exp/model" + OPT, **{"GB/s": 1000.0, "%copy": 25.0})])
        text = self.summary()
        self.assertIn("step_table: could not be made: JSONDecodeError", text)
        self.assertIn("  grok_target: could not be made: JSONDecodeError", text)
        self.assertIn("pytorch_table: could not be made: KeyError", text)
        self.assertIn("bench_cuda_train_step.json: cut short by its time limit", text)
        self.assertRegex(text, r"memory/exp/model +")


if __name__ == "__main__":
    unittest.main()
