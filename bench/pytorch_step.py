#!/usr/bin/env python3
"""One `nanda` training step in PyTorch, timed: the baseline tinygrok's speed is measured against.

The setup is REFERENCE.md §1's `nanda`, written the way a PyTorch user writes it (TransformerLens
style: einsums over every position, the unembedding read at the last one): (a + b) mod 113 on
tokens [a, b, =] (= is token 113; vocab 114 in, 113 out), one layer, d_model 128, 4 heads of 32,
d_mlp 512, ReLU, no LayerNorm, learned positional embedding over 3 positions, causal attention.
Parameters are those of tinygrok's nn::Transformer for this preset (nn/transformer.cpp,
nn/attention.h, nn/mlp_block.h, nn/unembed.h): W_E, W_pos, W_Q, W_K, W_V, W_O (attention without
biases), W_in, b_in, W_out, b_out, W_U (unembedding without bias). Init N(0, 1)/sqrt(d_model),
W_U N(0, 1)/sqrt(d_vocab), biases 0. Full batch: the first 30% of the p^2 pairs after a seeded
shuffle (3830). AdamW lr 1e-3, weight decay 1.0, betas (0.9, 0.98), eps 1e-8, constant lr (no
warm-up, as bench_train_step); float32 cross-entropy at the last position.

Modes, each from the same initial weights:
  eager                    zero_grad, forward, loss, backward, step: the plain loop
  graphs                   (CUDA) the whole step captured once in a CUDA graph after warm-up
                           steps on a side stream (AdamW capturable=True), then replayed
  compile                  torch.compile of forward + loss (default mode), and of the optimizer step
  compile-reduce-overhead  the same, forward + loss with mode "reduce-overhead" (CUDA graphs)
  compile-max-autotune     the same, with mode "max-autotune-no-cudagraphs" (slow to compile)
A mode that cannot run here is reported as {"mode", "status": "unavailable", "why"}, not raised;
a mode that fails is reported as "error" (its traceback on stderr), and the script exits 1.

Models (--model):
  every-position  as written above: every position's queries, attention, MLP (the default)
  last-position   what the loss reads, as tinygrok computes it: the first layer's queries, keys
                  and values as products of the (position, token) table of T x vocab rows,
                  gathered per example, and the attention, MLP and unembedding at the last
                  position only (the same loss and gradients in exact arithmetic: the test
                  checks it against the fixture too), so that the ratio to tinygrok is of the
                  same FLOPs

Timing: --warmup steps, then --repeats batches of --steps steps, each batch timed with CUDA events
(time.perf_counter on the CPU) and synchronised at its ends only, so PyTorch's asynchronous launches
overlap as in a training loop that does not read the loss every step; ms/step is the median batch.
Correctness: each mode first runs --check-steps steps from the initial weights, and the loss of
the last of them must agree with eager's to --check-rtol; otherwise the timing is of something
else and the script exits 1.

Comparison with tinygrok: scripts/device_check.sh runs this script on the GPU machine, both
models, and its summary puts each mode's ms/step beside tinygrok's step as bench_cuda_train_step
times it (the same way: CUDA events around batches of steps, the median batch), with the ratio.
On the CPU, compare with `build/bench/bench_train_step --benchmark_filter=nanda` at the same
thread count (--threads). The every-position model, as a PyTorch user writes it, runs ~14 GFLOP
a step; tinygrok, and --model last-position, only what the last position's loss reads (~3.8).
Debian's PyTorch (BLAS_INFO=generic) calls whichever libblas.so.3 is installed, and the reference
BLAS is ~10x slower than OpenBLAS: the JSON's "blas" names the library loaded.

  python3 bench/pytorch_step.py --device cuda --json out/pytorch_step.json
  python3 bench/pytorch_step.py --device cuda --model last-position --modes eager,graphs
  python3 bench/pytorch_step.py --device cpu --modes eager --threads 2
  python3 bench/pytorch_step.py --smoke        # tiny model, seconds: the CTest test
"""
import argparse
import importlib
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback

import torch
import torch.nn.functional as F

MODES = ("eager", "graphs", "compile", "compile-reduce-overhead", "compile-max-autotune")
MODELS = ("every-position", "last-position")
COMPILE_MODES = {"compile": "default", "compile-reduce-overhead": "reduce-overhead",
                 "compile-max-autotune": "max-autotune-no-cudagraphs"}


class Unavailable(Exception):
    """A mode this PyTorch or device cannot run; the message says why."""


class NandaTransformer(torch.nn.Module):
    """Nanda et al.'s one-layer transformer, no LayerNorm; parameter names as TransformerLens's.
    last_position: compute only what the logits at the last position read."""

    def __init__(self, p, d_model, n_heads, d_mlp, n_ctx, generator, last_position=False):
        super().__init__()
        d_vocab, d_head = p + 1, d_model // n_heads
        self.d_head = d_head
        self.last_position = last_position

        def normal(*shape, std):
            return torch.nn.Parameter(torch.randn(*shape, generator=generator) * std)

        s = 1 / math.sqrt(d_model)
        self.W_E = normal(d_vocab, d_model, std=s)
        self.W_pos = normal(n_ctx, d_model, std=s)
        self.W_Q = normal(n_heads, d_model, d_head, std=s)
        self.W_K = normal(n_heads, d_model, d_head, std=s)
        self.W_V = normal(n_heads, d_model, d_head, std=s)
        self.W_O = normal(n_heads, d_head, d_model, std=s)
        self.W_in = normal(d_model, d_mlp, std=s)
        self.b_in = torch.nn.Parameter(torch.zeros(d_mlp))
        self.W_out = normal(d_mlp, d_model, std=s)
        self.b_out = torch.nn.Parameter(torch.zeros(d_model))
        self.W_U = normal(d_model, p, std=1 / math.sqrt(d_vocab))
        self.register_buffer("future", torch.triu(torch.ones(n_ctx, n_ctx, dtype=torch.bool), 1))

    def forward(self, tokens):  # int64 [B, T] -> logits [B, p] at position T - 1
        T = tokens.shape[1]
        if self.last_position:
            q, k, v, x = self.table_attention_inputs(tokens)
        else:
            x = self.W_E[tokens] + self.W_pos[:T]  # [B, T, d_model]
            k = torch.einsum("btd,hde->bhte", x, self.W_K)
            v = torch.einsum("btd,hde->bhte", x, self.W_V)
            q = torch.einsum("btd,hde->bhte", x, self.W_Q)
        scores = torch.einsum("bhqe,bhke->bhqk", q, k) / math.sqrt(self.d_head)
        if not self.last_position:
            scores = scores.masked_fill(self.future[:T, :T], float("-inf"))
        z = torch.einsum("bhqk,bhke->bhqe", scores.softmax(dim=-1), v)
        x = x + torch.einsum("bhqe,hed->bqd", z, self.W_O)
        x = x + F.relu(x @ self.W_in + self.b_in) @ self.W_out + self.b_out
        return x[:, -1] @ self.W_U

    def table_attention_inputs(self, tokens):
        """The last position's query and residual, and every position's keys and values, from the
        (position, token) table as tinygrok computes them: an example's embedded row at position
        t is one of T x vocab, so Q, K and V are products of those rows, gathered per example."""
        T, vocab = tokens.shape[1], self.W_E.shape[0]
        table = (self.W_E[None] + self.W_pos[:T, None]).reshape(T * vocab, -1)  # [T*V, d]
        rows = torch.arange(T, device=tokens.device) * vocab + tokens  # [B, T]: table rows
        k = torch.einsum("rd,hde->hre", table, self.W_K)[:, rows].permute(1, 0, 2, 3)
        v = torch.einsum("rd,hde->hre", table, self.W_V)[:, rows].permute(1, 0, 2, 3)
        last = rows[:, -1:]  # [B, 1]: the last query sees every key, so no mask
        q = torch.einsum("rd,hde->hre", table, self.W_Q)[:, last].permute(1, 0, 2, 3)
        return q, k, v, table[last]  # [B, H, 1, e], [B, H, T, e] twice, [B, 1, d]


def step_gflop(setup):
    """Matrix-product FLOPs of a step as the model computes them (every position; or the table's
    rows for Q, K and V, and the last position for the rest), x3 for the backward."""
    d, mlp, t = setup["d_model"], setup["d_mlp"], setup["n_ctx"]
    if setup["model"] == "last-position":
        queries = setup["n_train"]
        qkv = 3 * 2 * t * (setup["p"] + 1) * d * d  # the (position, token) table's products
    else:
        queries = setup["n_train"] * t
        qkv = 3 * 2 * queries * d * d
    forward = (qkv
               + 2 * queries * d * d          # O projection
               + 2 * 2 * queries * d * mlp    # MLP in and out
               + 2 * 2 * queries * t * d      # scores and pattern @ v
               + 2 * setup["n_train"] * d * setup["p"])  # unembedding
    return 3 * forward / 1e9


def make_data(setup, device):
    """Tokens [N, 3] and labels [N] of the training split: the first frac of the shuffled pairs."""
    p = setup["p"]
    order = torch.randperm(p * p, generator=torch.Generator().manual_seed(setup["seed"]))
    train = order[: int(setup["frac"] * p * p)]
    a, b = train // p, train % p
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    return tokens.to(device), ((a + b) % p).to(device)


def make_model(setup, initial, device):
    model = NandaTransformer(setup["p"], setup["d_model"], setup["n_heads"], setup["d_mlp"],
                             setup["n_ctx"], torch.Generator().manual_seed(setup["seed"]),
                             last_position=setup["model"] == "last-position")
    model.load_state_dict(initial)
    return model.to(device)


def make_optimizer(model, setup, **options):
    return torch.optim.AdamW(model.parameters(), lr=setup["lr"], betas=setup["betas"],
                             eps=setup["eps"], weight_decay=setup["wd"], **options)


def eager_step(model, optimizer, tokens, labels):
    """One training step of the plain loop (mode eager, and the graph's warm-up): its loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(tokens), labels)
    loss.backward()
    optimizer.step()
    return loss


class Runner:
    """A mode set up on a fresh model: step() runs one training step and returns its loss tensor."""

    def __init__(self, mode, setup, initial, tokens, labels):
        self.note = ""
        self.steps_done = 0  # steps already run while setting up (the graph's warm-up)
        device = tokens.device
        if mode == "eager":
            self._eager(make_model(setup, initial, device), setup, tokens, labels)
        elif mode == "graphs":
            self._graphs(make_model(setup, initial, device), setup, tokens, labels)
        elif mode in COMPILE_MODES:
            self._compile(COMPILE_MODES[mode], setup, initial, tokens, labels)
        else:
            raise ValueError(f"--modes: unknown mode '{mode}' (expected one of {', '.join(MODES)})")

    def _eager(self, model, setup, tokens, labels):
        optimizer = make_optimizer(model, setup)
        self.step = lambda: eager_step(model, optimizer, tokens, labels)

    def _graphs(self, model, setup, tokens, labels):
        if tokens.device.type != "cuda":
            raise Unavailable("CUDA graphs need --device cuda")
        optimizer = make_optimizer(model, setup, capturable=True)
        # Warm up on a side stream (the optimizer's state is created there), then capture one
        # step with the gradients unset, so that backward writes them inside the graph's pool.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                warmup_loss = eager_step(model, optimizer, tokens, labels)
                self.steps_done += 1
        torch.cuda.current_stream().wait_stream(side)
        self.last_warmup_loss = float(warmup_loss)  # a float: no tensor kept from the warm-up
        graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            static_loss = F.cross_entropy(model(tokens), labels)
            static_loss.backward()
            optimizer.step()

        def step():
            graph.replay()
            return static_loss

        self.step = step

    def _compile(self, compile_mode, setup, initial, tokens, labels):
        if not hasattr(torch, "compile"):
            raise Unavailable(
                f"torch.compile needs PyTorch 2.0 or later (this is {torch.__version__})")
        if compile_mode != "default" and tokens.device.type != "cuda":
            raise Unavailable(f"mode '{compile_mode}' is for CUDA; use compile on the CPU")
        mode = None if compile_mode == "default" else compile_mode
        mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
        mark_step = mark_step if compile_mode == "reduce-overhead" else None
        # Forward + loss compiled (AOTAutograd compiles the backward with it); the optimizer's
        # step compiled too where that works, else run eagerly and said so in the note.
        dynamo = importlib.import_module("torch._dynamo")  # reset() between the attempts below
        errors = []
        for compile_optimizer in (True, False):
            dynamo.reset()
            model = make_model(setup, initial, tokens.device)
            optimizer = make_optimizer(model, setup)
            loss_fn = torch.compile(lambda x, y, model=model: F.cross_entropy(model(x), y),
                                    mode=mode)
            optimizer_step = torch.compile(optimizer.step) if compile_optimizer else optimizer.step

            def step(loss_fn=loss_fn, optimizer=optimizer, optimizer_step=optimizer_step):
                if mark_step:
                    mark_step()
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(tokens, labels)
                loss.backward()
                optimizer_step()
                return loss

            try:
                self.last_warmup_loss = float(step())  # compiles; a failure shows here
                self.steps_done = 1
                self.step = step
                if not compile_optimizer:
                    self.note = f"optimizer step eager (compiling it failed: {errors[0]})"
                return
            except Exception as error:  # noqa: BLE001 - any compiler failure: try the next way
                traceback.print_exc(file=sys.stderr)
                errors.append(summary_of(error))
        raise Unavailable("; ".join(errors))


def summary_of(error):
    """The exception's type and its message's last non-empty line (a compiler's first line is
    often only "backend='inductor' raised:"), cut to 300 characters."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1][:300] if lines else ''}"


def matches_fixture(root, last_position=False):
    """NandaTransformer with tests/reference's fixed weights against the fixture's logits and loss
    (the PyTorch figures tinygrok's test_reference matches to 1e-5): so the model timed here is
    the model tinygrok trains. Returns (ok, the largest relative error)."""
    sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
    spec = importlib.util.spec_from_file_location(
        "fixture", f"{root}/tests/reference/make_nanda_fixture.py")
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    with open(f"{root}/tests/reference/nanda_fixture.safetensors", "rb") as f:
        header_size = int.from_bytes(f.read(8), "little")
        header, data = json.loads(f.read(header_size)), f.read()
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}

    def tensor(name):
        begin, end = header[name]["data_offsets"]
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtypes[header[name]["dtype"]])
        return flat.reshape(header[name]["shape"])

    model = NandaTransformer(113, 128, 4, 512, 3, torch.Generator().manual_seed(0),
                             last_position=last_position)
    with torch.no_grad():
        for j, (name, shape) in enumerate(fixture.SHAPES):  # embed.W_E -> W_E, ...
            getattr(model, name.split(".")[-1]).copy_(fixture.deterministic_weights(j, shape))
        logits = model(tensor("tokens"))
        loss = F.cross_entropy(logits, tensor("labels"))
    error = max(float((logits - tensor("logits")).norm() / tensor("logits").norm()),
                abs(float(loss) / float(tensor("loss")) - 1))
    return error < 1e-5, error


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def loss_after(runner, steps, device):
    """The loss of step `steps` (counting the runner's warm-up steps), as a float."""
    loss = getattr(runner, "last_warmup_loss", None)
    for _ in range(steps - runner.steps_done):
        loss = runner.step()
    synchronize(device)
    return float(loss)


def time_steps(runner, args, device):
    """Median and every batch's ms per step over --repeats batches of --steps steps."""
    for _ in range(args.warmup):
        runner.step()
    synchronize(device)
    batches = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(args.steps):
                runner.step()
            end.record()
            end.synchronize()
            batches.append(start.elapsed_time(end) / args.steps)
        else:
            start = time.perf_counter()
            for _ in range(args.steps):
                runner.step()
            batches.append(1e3 * (time.perf_counter() - start) / args.steps)
    return statistics.median(batches), batches


def run_mode(mode, args, setup, initial, tokens, labels):
    result = {"mode": mode}
    try:
        runner = Runner(mode, setup, initial, tokens, labels)
        if args.check_steps < runner.steps_done + 1:
            raise ValueError(
                f"--check-steps must exceed the {runner.steps_done} warm-up steps of {mode}")
        result["check_loss"] = loss_after(runner, args.check_steps, tokens.device)
        median, batches = time_steps(runner, args, tokens.device)
    except Unavailable as why:
        return {"mode": mode, "status": "unavailable", "why": str(why)}
    except Exception as error:  # noqa: BLE001 - report the mode as failed and go on to the next
        traceback.print_exc(file=sys.stderr)
        return {"mode": mode, "status": "error", "why": summary_of(error)}
    result.update(status="ok", ms_per_step=median, ms_per_step_batches=batches,
                  gflop_per_s=setup["gflop_per_step"] / (median / 1e3))
    if runner.note:
        result["note"] = runner.note
    return result


def agreement(results, rtol):
    """Each mode's check loss against eager's: (all agree, lines to print)."""
    ran = [r for r in results if r["status"] == "ok"]
    reference = next((r for r in ran if r["mode"] == "eager"), ran[0] if ran else None)
    ok, lines = True, []
    for r in ran:
        difference = abs(r["check_loss"] - reference["check_loss"]) / abs(reference["check_loss"])
        r["check_rel_diff"] = difference
        agrees = math.isfinite(r["check_loss"]) and difference <= rtol
        ok = ok and agrees
        lines.append(f"  {r['mode']:<24} {r['check_loss']:.6f}  rel. diff {difference:.1e}"
                     f"  {'ok' if agrees else 'DISAGREES'}")
    return ok, lines


def blas_info():
    """The BLAS PyTorch was built for, and the BLAS libraries it has loaded (for 'generic',
    Debian's build, that is whichever libblas.so.3 is installed: the reference BLAS is ~10x
    slower than OpenBLAS)."""
    config = torch.__config__.show().replace(",", " ").split()
    built = next((part.split("=", 1)[1] for part in config if part.startswith("BLAS_INFO=")), "?")
    try:
        with open("/proc/self/maps") as maps:
            loaded = sorted({line.split()[-1] for line in maps
                             if "blas" in line.lower() or "mkl" in line.lower()})
    except OSError:
        loaded = []
    return f"{built} ({', '.join(loaded) or 'no BLAS library loaded'})"


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {torch.get_num_threads()} thread(s)"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--modes", default="eager,graphs,compile",
                        help=f"comma-separated, of: {', '.join(MODES)}")
    parser.add_argument("--steps", type=int,
                        help="steps per timed batch (default 100 on cuda, 5 on cpu)")
    parser.add_argument("--warmup", type=int,
                        help="untimed steps first (default 10 on cuda, 2 on cpu)")
    parser.add_argument("--repeats", type=int,
                        help="timed batches; the median is reported (default 10 on cuda, 3 on cpu)")
    parser.add_argument("--check-steps", type=int, default=10,
                        help="steps from the initial weights whose last loss must agree")
    parser.add_argument("--model", choices=MODELS, default="every-position",
                        help="every position as a PyTorch user writes it, or the last one's "
                             "queries only, as tinygrok computes it")
    # 1e-4: ~40x the float32 noise of 10 steps (measured ~3e-6), ~10x under one step's change.
    parser.add_argument("--check-rtol", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny model (p 7, d_model 16) and few steps, in seconds: the test")
    args = parser.parse_args(argv)
    cpu = args.device == "cpu"
    if args.smoke:
        args.steps, args.warmup, args.repeats, args.check_steps = 3, 1, 1, 10
    if args.steps is None:
        args.steps = 5 if cpu else 100
    if args.warmup is None:
        args.warmup = 2 if cpu else 10
    if args.repeats is None:
        args.repeats = 3 if cpu else 10
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for name in ("steps", "repeats", "check_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup: must be at least 0")
    for mode in args.modes:
        if mode not in MODES:
            parser.error(f"--modes: unknown mode '{mode}' (expected one of: {', '.join(MODES)})")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this PyTorch")
    return args


def main(argv):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    setup = dict(preset="smoke" if args.smoke else "nanda", model=args.model,
                 p=7 if args.smoke else 113,
                 frac=0.3, seed=0, d_model=16 if args.smoke else 128, n_heads=4,
                 d_mlp=64 if args.smoke else 512, n_ctx=3, lr=1e-3, wd=1.0, betas=(0.9, 0.98),
                 eps=1e-8, dtype="float32")
    setup["d_head"] = setup["d_model"] // setup["n_heads"]
    tokens, labels = make_data(setup, device)
    setup["n_train"] = len(labels)
    setup["gflop_per_step"] = step_gflop(setup)
    initial = NandaTransformer(setup["p"], setup["d_model"], setup["n_heads"], setup["d_mlp"],
                               setup["n_ctx"],
                               torch.Generator().manual_seed(setup["seed"])).state_dict()
    try:  # torch 2.9 and later prefer fp32_precision, and warn on reading allow_tf32
        tf32 = torch.backends.cuda.matmul.fp32_precision == "tf32"
    except (AttributeError, AssertionError):  # older: an AssertionError for unknown names
        tf32 = bool(torch.backends.cuda.matmul.allow_tf32)
    report = {"torch": torch.__version__, "python": platform.python_version(),
              "device": args.device,
              "device_name": device_name(device), "threads": torch.get_num_threads(),
              "blas": blas_info(),
              "tf32_matmul": tf32,
              "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
              "check_steps": args.check_steps, "setup": setup, "results": []}

    def write_json():  # after every mode, so that a time limit still leaves what ran
        if args.json:
            with open(args.json + ".tmp", "w") as out:  # never half a file, even if killed
                json.dump(report, out, indent=2)
                out.write("\n")
            os.replace(args.json + ".tmp", args.json)

    print(f"PyTorch {torch.__version__} on {report['device_name']}: {setup['preset']} step, "
          f"batch {setup['n_train']}, {setup['gflop_per_step']:.3g} GFLOP a step "
          f"({setup['model']})")
    print(f"{'mode':<24} {'ms/step':>9} {'GFLOP/s':>9}  batches (ms/step) or why not", flush=True)
    for mode in args.modes:
        print(f"  setting up {mode} (compiles, captures, checks)", flush=True)
        started = time.perf_counter()
        result = run_mode(mode, args, setup, initial, tokens, labels)
        result["seconds"] = time.perf_counter() - started  # setup and timing: compile time shows
        report["results"].append(result)
        if result["status"] == "ok":
            batches = ", ".join(f"{b:.3f}" for b in result["ms_per_step_batches"])
            print(f"{mode:<24} {result['ms_per_step']:>9.3f} {result['gflop_per_s']:>9.1f}"
                  f"  {batches}"
                  + (f"  ({result['note']})" if "note" in result else ""), flush=True)
        else:
            print(f"{mode:<24} {'-':>9} {'-':>9}  {result['status']}: {result['why']}", flush=True)
        report["agree"], _ = agreement(report["results"], args.check_rtol)
        write_json()

    if not any(r["status"] == "ok" for r in report["results"]):
        print("no mode ran", file=sys.stderr)
        return 1
    failed = [r["mode"] for r in report["results"] if r["status"] == "error"]
    agree, lines = agreement(report["results"], args.check_rtol)
    print(f"loss after {args.check_steps} steps from the same weights "
          f"(must agree to {args.check_rtol:g}):")
    print("\n".join(lines))
    if args.smoke:  # the loss must fall, or the step trains nothing; the model must be nanda's
        first = float(F.cross_entropy(make_model(setup, initial, device)(tokens), labels))
        falls = all(r["check_loss"] < first for r in report["results"] if r["status"] == "ok")
        print(f"smoke: initial loss {first:.6f}, falls: {'yes' if falls else 'NO'}")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        same_model = True
        for model in MODELS:
            ok, error = matches_fixture(root, last_position=model == "last-position")
            print(f"smoke: nanda model ({model}) vs tests/reference fixture: rel. error "
                  f"{error:.1e}, {'ok' if ok else 'DIFFERS'}")
            same_model = same_model and ok
        agree = agree and falls and same_model
        report["agree"] = agree
    write_json()
    if failed:
        print(f"modes that failed: {', '.join(failed)} (tracebacks above)", file=sys.stderr)
    return 0 if agree and not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
