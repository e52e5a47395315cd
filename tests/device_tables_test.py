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

    def test_an_empty_results_directory_prints_nothing(self):
        self.assertEqual(self.summary(), "")

    def test_step_table_and_grokking_runs(self):
        self.write_bench("bench_cuda_train_step.json", [
            entry("BM_nanda_step/host_driven/iterations:40/manual_time", **{"us/step": 412.5}),
            entry("BM_nanda_step/on_device/iterations:40/manual_time", **{"us/step": 180.25}),
            entry("BM_nanda_step/graph/iterations:40/manual_time",
                  **{"us/step": 95.0, "graph_nodes": 38.0})])
        self.write_bench("bench_cuda_train_step_pdl.json", [
            failed("BM_nanda_step/graph/iterations:40/manual_time", "CUDA error: launch failed")])
        self.write("nanda_grok_summary.json", {"status": "grokked", "T_g": 4200,
                                               "wall_seconds": 3.21, "train_ms_per_step": 0.097})
        text = self.summary()
        self.assertIn("tinygrok nanda step on the GPU (us/step", text)
        self.assertRegex(text, r"nanda_step/graph +95\.0 us  38 graph nodes")
        self.assertRegex(text, r"nanda_step/on_device +180\.2 us")
        self.assertIn("TG_CUDA_PDL=1", text)
        self.assertIn("(CUDA error: launch failed)", text)
        self.assertIn("status grokked, T_g 4200, train()'s wall 3.21 s, 97.0 us/step", text)
        self.assertIn("benchmark entries with errors (1):", text)

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
        ])
        lines = self.summary().splitlines()
        self.assertIn("SGEMM GFLOP/s and % of cuBLAS (TF32 off) per shape M x K x N:", lines)
        header = next(line for line in lines if "1024x1024x1024" in line)
        self.assertLess(header.index("1024x1024x1024"), header.index("512x3830x128_AT"))
        v7 = next(line for line in lines if "v7_warptiling" in line)
        self.assertRegex(v7, r"30000  75% +9000  90%")
        self.assertRegex(next(line for line in lines if "engine" in line), r"30000 +-$")
        self.assertNotIn("declines", "\n".join(lines))  # a declined shape is no error

    def test_memory_table(self):
        self.write_bench("bench_cuda_memory.json", [
            entry("memory/memcpy_d2d/large/iterations:1/manual_time", **{"GB/s": 4000.0}),
            entry("memory/cross_entropy/large" + OPT, **{"GB/s": 3000.0, "%copy": 75.0,
                                                         "median_us": 10.0, "MB": 30.0}),
        ])
        text = self.summary()
        self.assertRegex(text, r"memory/cross_entropy/large +3000 GB/s +75\.0%")
        self.assertRegex(text, r"memory/memcpy_d2d/large +4000 GB/s")

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
        text = self.summary()
        self.assertIn("(3 kernels, 5 us in all)", text)
        self.assertRegex(text, r"adam_kernel<float> +4\.0 us +2 calls")
        self.assertRegex(text, r"copy_kernel<float, float, false> +0\.7 us +1 calls")

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
        self.assertIn("status grokked, test acc 0.995, 4.50 s wall (the process, CUDA start-up "
                      "included)  met", text)  # GNU time's wall, not train()'s 1.0 s
        self.assertIn(">= 10x PyTorch eager (every position): 20.0x  met", text)
        self.assertIn(">= 10x PyTorch eager (last position): 20.0x  met", text)
        self.assertIn("each fused kernel faster than its composition: 2 of 2  met", text)
        self.assertNotIn("MISSED", text)

    def test_targets_missed(self):
        self.write_targets(graph_us=120.0, wall_s=5.5, status="grokked", test_acc=0.995,
                           eager_ms=1.0, fused_us=60.0)
        text = self.summary()
        self.assertIn("120.0 us (graph replay)  MISSED", text)
        self.assertIn("5.50 s wall (the process, CUDA start-up included)  MISSED", text)
        self.assertIn(">= 10x PyTorch eager (every position): 8.3x  MISSED", text)
        self.assertIn("1 of 2; not: fused/attention/forward/fused/model 0.83x  MISSED", text)

    def test_a_run_that_did_not_grok_misses_however_fast(self):
        self.write_targets(graph_us=90.0, wall_s=2.0, status="completed", test_acc=0.5,
                           eager_ms=1.8, fused_us=20.0)
        os.remove(os.path.join(self.results, "gpu_grok.out"))
        self.assertIn("status completed, test acc 0.5, 1.00 s wall (train()'s clock)  MISSED",
                      self.summary())

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
        self.assertRegex(text, r"memory/exp/model +1000 GB/s")


if __name__ == "__main__":
    unittest.main()
