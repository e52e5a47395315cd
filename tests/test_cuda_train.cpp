// Training on the GPU end to end (grok::train with --device cuda): tiny runs of the trainer's
// model/optimiser paths, each on the CPU and on cuda:0 from the same seed, must give the same
// run. Compared, for every step: the full-batch training loss (metrics.csv with eval_every 1: the
// loss of the weights after each step, which the next step's forward computes); at the end: the
// eval metrics and every parameter of the checkpoints. A resumed GPU run equals an uninterrupted
// one exactly, and a GPU run's checkpoint evaluates on the CPU as the GPU measured it. The step
// recorded as a CUDA graph (--cuda-graph) gives the eager step's run bit for bit; a non-finite
// loss stops a recorded run at the next wait. Then the pieces: the optimisers' steps, clipping
// and norms on device tensors, and Module::to(Device).
//
// Tolerances. The two runs are the same float32 arithmetic with its rounding done differently
// (GEMM and reduction orders, fused kernels, FMA contraction): each op differs by a few ulps, and
// training carries the differences along. How far it carries them was measured on the CPU, as the
// float32 run's distance from the same run in float64 (a GPU run differs from the CPU's by about
// as much as either differs from the exact run): over these 100 steps at most 6e-6 in the loss
// and 4e-6 in any parameter (the one-layer model; the others 1e-7 to 3e-7 and 3e-6). The bounds
// below leave a factor of 15-50 over that. On the host emulator, which runs the CUDA kernels' own
// arithmetic, the GPU runs differed from the CPU's by at most 1.1e-7 in the loss and 1.3e-6 in a
// parameter. Training amplifies rounding far more where the trajectory has kinks: with ReLU (a
// unit whose input crosses 0 in one run and not the other) the same one-layer model drifted 1e-2
// in the loss and 18% in a bias over 100 steps, and the pre-LN model at lr 3e-3 drifted 5e-4;
// so these configurations use GELU and, with LayerNorm, lr 1e-3. Accuracies are counts: one
// example on the edge of a tie may flip.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "grok/checkpoint.h"
#include "grok/config.h"
#include "grok/dataset.h"
#include "grok/metrics.h"
#include "grok/split.h"
#include "grok/trainer.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"
#ifdef TG_CUDA_HOST_EMULATION
#include "emulated_cuda.h"  // the profiler ranges it counted
#endif

using namespace tg;
using namespace tg::grok;
namespace fs = std::filesystem;
using tg::testing::ScopedEnv;
using tg::testing::TempDir;

namespace {

// Under the host emulator (emulated_test_cuda_train, every kernel run on host threads) the
// runs are shorter: 100 steps of all the cases below take a minute there.
#ifdef TG_CUDA_HOST_EMULATION
constexpr int64_t kSteps = 20;
#else
constexpr int64_t kSteps = 100;
#endif

constexpr double kLossTolerance = 1e-4;   // relative, per step
constexpr double kNormTolerance = 1e-4;   // relative: weight norm
constexpr double kParamTolerance = 2e-4;  // ||gpu - cpu|| / ||cpu|| per parameter

// A one-layer transformer (Nanda's preset, shrunk, GELU) on a + b mod 13, full batch, AdamW.
TrainConfig tiny_transformer() {
  TrainConfig c = preset("nanda");
  c.p = 13;
  c.frac = 0.5;
  c.d_model = 16;
  c.heads = 2;
  c.d_mlp = 32;
  c.act = "gelu";
  c.lr = 3e-3;
  c.steps = kSteps;
  c.eval_every = 1;
  c.checkpoint_every = 1000000;  // only the final checkpoint
  c.threads = 1;
  return c;
}

// Two pre-LN layers with GELU on [a, op, b, =], Adam with L2 decay, clipping, a cosine schedule:
// the layer norm, clip and L2 paths.
TrainConfig tiny_deep_transformer() {
  TrainConfig c = tiny_transformer();
  c.layers = 2;
  c.ln = "pre";
  c.tokens = "aopbeq";
  c.optimizer = "adam";
  c.lr = 1e-3;
  c.wd = 0.1;
  c.clip = 1.0;
  c.schedule = "cosine";
  return c;
}

// The one-hot MLP (x^2) with SGD, momentum and weight decay.
TrainConfig tiny_mlp() {
  TrainConfig c = preset("mlp");
  c.p = 13;
  c.frac = 0.5;
  c.d_mlp = 32;
  c.optimizer = "sgd";
  c.lr = 0.05;
  c.beta1 = 0.9;  // SGD's momentum
  c.wd = 1e-3;
  c.steps = kSteps;
  c.eval_every = 1;
  c.checkpoint_every = 1000000;
  c.threads = 1;
  return c;
}

// metrics.csv's rows, without elapsed_s (the one column that is a time).
std::vector<MetricsRow> read_rows(const std::string& run) {
  std::vector<MetricsRow> rows = MetricsLog::read((fs::path(run) / "metrics.csv").string());
  for (MetricsRow& r : rows) r.elapsed_s = 0;
  return rows;
}

bool same_rows(const std::vector<MetricsRow>& a, const std::vector<MetricsRow>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].step != b[i].step || a[i].train_loss != b[i].train_loss ||
        a[i].train_acc != b[i].train_acc || a[i].test_loss != b[i].test_loss ||
        a[i].test_acc != b[i].test_acc || a[i].weight_norm != b[i].weight_norm ||
        a[i].lr != b[i].lr)
      return false;
  return true;
}

// The two runs' checkpoints hold the same weights and optimiser state, bit for bit.
void check_same_checkpoints(const std::string& run_a, const std::string& run_b) {
  const Checkpoint a = load_checkpoint(run_a), b = load_checkpoint(run_b);
  REQUIRE(a.model.size() == b.model.size());
  REQUIRE(a.optimizer.size() == b.optimizer.size());
  for (size_t i = 0; i < a.model.size(); ++i) {
    INFO(a.model[i].first);
    CHECK(a.model[i].second.to_vector<double>() == b.model[i].second.to_vector<double>());
  }
  for (size_t i = 0; i < a.optimizer.size(); ++i) {
    INFO(a.optimizer[i].first);
    CHECK(a.optimizer[i].second.to_vector<double>() == b.optimizer[i].second.to_vector<double>());
  }
}

double relative_difference(double got, double want) {
  return std::abs(got - want) / std::max(std::abs(want), 1e-30);
}

// ||got - want|| / ||want|| over two host tensors of one shape.
double relative_error(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  REQUIRE(g.size() == w.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    diff += (g[i] - w[i]) * (g[i] - w[i]);
    norm += w[i] * w[i];
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

RunOptions quiet_run(const std::string& out) { return RunOptions{out, false, false, true}; }

std::string run_on(TrainConfig c, const std::string& device, const std::string& out) {
  c.device = device;
  REQUIRE(train(c, quiet_run(out)) == RunStatus::Completed);
  return out;
}

// Runs c with --cuda-graph off and on (in dir/<name>_eager and dir/<name>_graph) and checks
// that the two logged the same metrics and saved the same checkpoint, bit for bit. Returns the
// recorded run's directory.
std::string require_recorded_equals_eager(const TrainConfig& c, const TempDir& dir,
                                          const std::string& name) {
  TrainConfig eager = c, recorded = c;
  eager.cuda_graph = "off";
  recorded.cuda_graph = "on";
  const std::string eager_run = dir / (name + "_eager"), recorded_run = dir / (name + "_graph");
  REQUIRE(train(eager, quiet_run(eager_run)) == RunStatus::Completed);
  REQUIRE(train(recorded, quiet_run(recorded_run)) == RunStatus::Completed);
  CHECK(same_rows(read_rows(recorded_run), read_rows(eager_run)));
  check_same_checkpoints(recorded_run, eager_run);
  return recorded_run;
}

// One run on the CPU and one on cuda:0, compared step by step and at the end.
void require_same_run_on_gpu(const TrainConfig& c) {
  TempDir dir;
  const std::string cpu = run_on(c, "cpu", dir / "cpu"), gpu = run_on(c, "cuda", dir / "gpu");
  const std::vector<MetricsRow> want = read_rows(cpu), got = read_rows(gpu);
  REQUIRE(got.size() == want.size());
  REQUIRE(got.size() == static_cast<size_t>(c.steps + 1));

  // The training set's size, for the accuracies: one example may flip.
  const Split split = read_split((fs::path(cpu) / "split.txt").string(),
                                 make_dataset(parse_operation(c.op), c.p));
  const double one_train = 1.0 / static_cast<double>(split.train.size());
  const double one_test = 1.0 / static_cast<double>(split.test.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("step " << want[i].step << ": train loss " << got[i].train_loss << " on cuda:0, "
                 << want[i].train_loss << " on the CPU");
    REQUIRE(got[i].step == want[i].step);
    REQUIRE(relative_difference(got[i].train_loss, want[i].train_loss) < kLossTolerance);
    REQUIRE(got[i].lr == want[i].lr);
  }
  const MetricsRow& g = got.back();
  const MetricsRow& w = want.back();
  INFO("final: cuda:0 " << g.train_loss << " " << g.train_acc << " " << g.test_loss << " "
                        << g.test_acc << " " << g.weight_norm << ", CPU " << w.train_loss << " "
                        << w.train_acc << " " << w.test_loss << " " << w.test_acc << " "
                        << w.weight_norm);
  CHECK(relative_difference(g.test_loss, w.test_loss) < kLossTolerance);
  CHECK(std::abs(g.train_acc - w.train_acc) <= one_train + 1e-9);
  CHECK(std::abs(g.test_acc - w.test_acc) <= one_test + 1e-9);
  CHECK(relative_difference(g.weight_norm, w.weight_norm) < kNormTolerance);

  // The checkpoints: written from host copies, the same names, shapes and dtypes; close values.
  const Checkpoint cpu_ckpt = load_checkpoint(cpu), gpu_ckpt = load_checkpoint(gpu);
  REQUIRE(gpu_ckpt.model.size() == cpu_ckpt.model.size());
  REQUIRE(gpu_ckpt.optimizer.size() == cpu_ckpt.optimizer.size());
  for (size_t i = 0; i < cpu_ckpt.model.size(); ++i) {
    const auto& [name, want_t] = cpu_ckpt.model[i];
    const auto& [got_name, got_t] = gpu_ckpt.model[i];
    INFO(name);
    REQUIRE(got_name == name);
    REQUIRE(got_t.device().is_cpu());
    REQUIRE(got_t.shape() == want_t.shape());
    REQUIRE(got_t.dtype() == want_t.dtype());
    CHECK(relative_error(got_t, want_t) < kParamTolerance);
  }
}

}  // namespace

TEST_CASE("cuda train: a one-layer transformer trains on cuda:0 as on the CPU", "[cuda][train]") {
  TG_REQUIRE_CUDA_DEVICE();
  require_same_run_on_gpu(tiny_transformer());
}

TEST_CASE("cuda train: two pre-LN layers with Adam, clipping and a cosine schedule",
          "[cuda][train]") {
  TG_REQUIRE_CUDA_DEVICE();
  require_same_run_on_gpu(tiny_deep_transformer());
}

TEST_CASE("cuda train: the one-hot MLP with SGD and momentum", "[cuda][train]") {
  TG_REQUIRE_CUDA_DEVICE();
  require_same_run_on_gpu(tiny_mlp());
}

TEST_CASE("cuda train: minibatches with dropout on cuda:0 follow the CPU's run", "[cuda][train]") {
  TG_REQUIRE_CUDA_DEVICE();
  // The sampler's batches go to the device every step, and the dropout masks are drawn on it
  // from the same counter-based stream as on the CPU (so the same elements are dropped).
  TrainConfig c = tiny_transformer();
  c.dropout = 0.1;
  c.batch = 16;
  TempDir dir;
  const std::vector<MetricsRow> want = read_rows(run_on(c, "cpu", dir / "cpu"));
  const std::vector<MetricsRow> got = read_rows(run_on(c, "cuda", dir / "gpu"));
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("step " << want[i].step);
    CHECK(relative_difference(got[i].train_loss, want[i].train_loss) < kLossTolerance);
    CHECK(relative_difference(got[i].weight_norm, want[i].weight_norm) < kNormTolerance);
  }
}

TEST_CASE("cuda train: a GPU run resumes exactly, continues on the CPU, and its checkpoint "
          "evaluates there", "[cuda][train]") {
  TG_REQUIRE_CUDA_DEVICE();
  TrainConfig c = tiny_transformer();
  c.device = "cuda";  // the resume below runs c itself
  c.eval_every = 2;  // divides the halfway step, so both runs log the same steps
  TempDir dir;
  const std::string whole = run_on(c, "cuda", dir / "whole");

  // Stop halfway (the final checkpoint of a shorter run), then resume to the end.
  TrainConfig first_half = c;
  first_half.steps = c.steps / 2;
  const std::string parts = run_on(first_half, "cuda", dir / "parts");
  const std::string moved = dir / "moved";
  fs::copy(parts, moved, fs::copy_options::recursive);
  REQUIRE(train(c, RunOptions{parts, true, false, true}) == RunStatus::Completed);

  // The same checkpoint resumed with --device cpu (a machine without the GPU): its rows up to the
  // checkpoint are the GPU's, and the rest follow the GPU's run to float tolerance.
  TrainConfig continued = c;
  continued.device = "cpu";
  REQUIRE(train(continued, RunOptions{moved, true, false, true}) == RunStatus::Completed);
  const std::vector<MetricsRow> moved_rows = read_rows(moved), whole_rows = read_rows(whole);
  REQUIRE(moved_rows.size() == whole_rows.size());
  for (size_t i = 0; i < whole_rows.size(); ++i) {
    INFO("step " << whole_rows[i].step);
    REQUIRE(moved_rows[i].step == whole_rows[i].step);
    if (moved_rows[i].step <= first_half.steps)
      CHECK(moved_rows[i].train_loss == whole_rows[i].train_loss);
    CHECK(relative_difference(moved_rows[i].train_loss, whole_rows[i].train_loss) <
          kLossTolerance);
  }

  // The GPU's kernels sum in fixed orders, so the resumed run is bitwise the uninterrupted one.
  CHECK(same_rows(read_rows(parts), read_rows(whole)));
  check_same_checkpoints(parts, whole);
  const Checkpoint b = load_checkpoint(whole);

  // The checkpoint's weights in a CPU model give the metrics the GPU logged for them.
  const Dataset data = make_dataset(parse_operation(c.op), c.p);
  const Split split = read_split((fs::path(whole) / "split.txt").string(), data);
  Generator gen(c.seed);
  std::shared_ptr<nn::Model> model = build_model(c, data, gen);
  model->load_state_dict(std::map<std::string, Tensor>(b.model.begin(), b.model.end()));
  const LossAccuracy on_cpu = evaluate(*model, make_tokens(data, split.test, token_format(c)),
                                       make_labels(data, split.test));
  const MetricsRow last = read_rows(whole).back();
  CHECK(relative_difference(on_cpu.loss, last.test_loss) < kLossTolerance);
  CHECK(std::abs(on_cpu.accuracy - last.test_acc) <=
        1.0 / static_cast<double>(split.test.size()) + 1e-9);
}

TEST_CASE("cuda train: the step recorded as a CUDA graph gives the eager step's run, bit for bit",
          "[cuda][train][graph]") {
  TG_REQUIRE_CUDA_DEVICE();
  // Several replays between evals (which read the summed losses back), a warm-up that is still
  // under way when the recording is made, and a cosine schedule: the replays must walk the
  // schedule and the step count on the device exactly as the eager steps do.
  TrainConfig c = tiny_transformer();
  c.eval_every = 3;
  c.checkpoint_every = 7;
  c.warmup = 5;
  c.schedule = "cosine";
  c.device = "cuda";
  TempDir dir;
  const std::string graph = require_recorded_equals_eager(c, dir, "cosine");
  CHECK(load_checkpoint(graph).run_state.at("optimizer_steps") == std::to_string(c.steps));

  // A recorded run resumed halfway (recording its step again) ends where the whole run did
  // (with a constant schedule: a cosine one depends on --steps, which the halves change).
  TrainConfig steady = c;
  steady.cuda_graph = "on";
  steady.schedule = "constant";
  TrainConfig half = steady;
  half.steps = 9;  // a multiple of eval_every: both runs log the same steps
  REQUIRE(train(steady, quiet_run(dir / "whole")) == RunStatus::Completed);
  REQUIRE(train(half, quiet_run(dir / "parts")) == RunStatus::Completed);
  REQUIRE(train(steady, RunOptions{dir / "parts", true, false, true}) == RunStatus::Completed);
  CHECK(same_rows(read_rows(dir / "parts"), read_rows(dir / "whole")));
}

// TG_PROFILE_STEP=N puts step N, and nothing else, inside the device's profiler range (for ncu
// --profile-from-start off). The emulator counts the kernels each range saw: two eager steps'
// ranges the same number (no eval's or checkpoint's kernels), a recorded step's range its
// replay's. On a GPU (no profiler attached) the runs just complete. A bad value is an error
// before the run directory is made.
TEST_CASE("cuda train: TG_PROFILE_STEP puts one step inside the profiler range", "[cuda][train]") {
  TG_REQUIRE_CUDA_DEVICE();
  TrainConfig c = tiny_transformer();
  c.device = "cuda";
  c.steps = 6;
  c.eval_every = 3;  // evals after steps 3 and 6, checkpoints at the end
  TempDir dir;
  std::vector<uint64_t> kernels;  // per range: step 2 and step 4 eager, step 5 recorded
  for (const auto& [step, graph] : {std::pair{"2", "off"}, {"4", "off"}, {"5", "on"}}) {
    INFO("TG_PROFILE_STEP=" << step << ", --cuda-graph " << graph);
    const ScopedEnv profile("TG_PROFILE_STEP", step);
    c.cuda_graph = graph;
#ifdef TG_CUDA_HOST_EMULATION
    const size_t ranges = tg_emulation::profiler_ranges.size();
#endif
    REQUIRE(train(c, quiet_run(dir / (std::string("step") + step))) == RunStatus::Completed);
#ifdef TG_CUDA_HOST_EMULATION
    REQUIRE(tg_emulation::profiler_ranges.size() == ranges + 1);
    const tg_emulation::ProfilerRange& r = tg_emulation::profiler_ranges.back();
    CHECK(!tg_emulation::profiling);
    kernels.push_back(r.end - r.first);
#endif
  }
#ifdef TG_CUDA_HOST_EMULATION
  CHECK(kernels[0] > 10);
  CHECK(kernels[1] == kernels[0]);
  CHECK(kernels[2] > 10);
#endif
  for (const char* bad : {"0", "two", "3x"}) {
    const ScopedEnv profile("TG_PROFILE_STEP", bad);
    REQUIRE_THROWS_WITH(train(c, quiet_run(dir / "bad")),
                        "TG_PROFILE_STEP: expected a step number >= 1, got '" + std::string(bad) +
                            "'");
    CHECK(!fs::exists(dir / "bad"));
  }
}

TEST_CASE("cuda train: the nanda step records as one graph of a bounded number of operations",
          "[cuda][train][graph]") {
  TG_REQUIRE_CUDA_DEVICE();
  // The nanda model itself on a few examples (the operation count depends on the architecture,
  // not on the batch): forward, loss, backward and AdamW, as train records them.
  const TrainConfig c = preset("nanda");
  const Dataset data = make_dataset(parse_operation(c.op), c.p);
  const std::vector<int64_t> pairs = {0, 1, 200, 5000, 12768};
  const Tensor tokens = make_tokens(data, pairs, token_format(c)).to(Device::cuda(0));
  const Tensor labels = make_labels(data, pairs).to(Device::cuda(0));
  Generator gen(c.seed);
  std::shared_ptr<nn::Model> model = build_model(c, data, gen);
  model->to(Device::cuda(0));
  optim::AdamW optimizer(model->parameters(), c.lr, c.beta1, c.beta2, 1e-8, c.wd);
  optimizer.keep_step_on_device(optim::LrSchedule{c.lr}.rule());
  const auto step = [&] {
    const Tensor loss = cross_entropy(model->forward(tokens), labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  };
  step();
  const std::unique_ptr<CapturedWork> graph = backend_for(Device::cuda(0)).capture(step);
  // 35 (2026-11-29; 71 before leaves took fresh gradients uncopied, mean became one kernel and
  // the loss took backward()'s seed 1 without a tensor of ones; 55 before the attention's
  // projections became per-head products written in place, head_matmul, and each bias gradient
  // one launch: 46; then 6 more, a sum for each product split over K, sgemm's split-K, which
  // trades one long GEMM on a few SMs for two short launches; then 2 fewer, the attention
  // backward's three scatter-adds in one launch; then 1 fewer, Adam's scalars computed by its
  // own blocks from the device's step count; then 1 fewer, the loss's mean taken by the last
  // block of the cross-entropy kernel; then 3 fewer, the residual's gather, add and scatter-add
  // in the attention's kernels; then 1 fewer, the table's gradient summed to W_E and W_pos in
  // one launch, reduce_sum_pair; then 1 fewer, h + mlp(h) added by the MLP's output GEMM as it
  // stores; then 11 fewer, the first attention layer as one op, table_attention_layer, whose
  // Q, K and V products and weight gradients run as grouped GEMMs and whose table gradient is
  // one sum; then 1 fewer, the skip's gradient added by the MLP's dx GEMM, the linear op adding
  // the gradient pending for its input: 31; then 4 more, index_add sorting its indices by row
  // (three launches for both index arrays) and summing in two, which trades the tiled kernel's
  // chain of thousands of adds for the "=" row for chains of at most 64): each kernel more is a
  // launch more in every step, so a new one should be a choice, and this budget moves with it;
  // then 6 more, split-K taking K from 64 (the unembedding and its input gradient, the table's
  // products; on these 5 examples also the MLP's K = 128 products), each trading a block's
  // loop over all of K for slices of at least 32 and a sum.
  INFO("the nanda step records " << graph->operations() << " device operations");
  CHECK(graph->operations() > 0);
  CHECK(graph->operations() <= 41);
}

TEST_CASE("cuda train: a recorded run's non-finite loss is found at the next wait, and stops it",
          "[cuda][train][graph]") {
  TG_REQUIRE_CUDA_DEVICE();
  // AdamW moves every weight by about lr per step: at lr 1e30 the logits overflow after one step.
  TrainConfig c = tiny_transformer();
  c.device = "cuda";
  c.cuda_graph = "on";
  c.lr = 1e30;
  c.warmup = 0;
  c.eval_every = 4;
  c.checkpoint_every = 4;
  TempDir dir;
  REQUIRE(train(c, quiet_run(dir / "nan")) == RunStatus::NanLoss);
  // Found when the host first waited (step 4), before that step's eval and checkpoint: only the
  // eval at step 0 is logged, and no checkpoint of the blown-up weights was written.
  const std::vector<MetricsRow> rows = read_rows(dir / "nan");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].step == 0);
  CHECK_FALSE(fs::exists(fs::path(checkpoint_dir(dir / "nan"))));
}

TEST_CASE("cuda train: --cuda-graph on refuses a step that cannot be recorded, naming why",
          "[cuda][train][graph]") {
  TG_REQUIRE_CUDA_DEVICE();
  TrainConfig c = tiny_transformer();
  c.device = "cuda";
  c.cuda_graph = "on";
  c.dropout = 0.1;
  TempDir dir;
  REQUIRE_THROWS_WITH(train(c, quiet_run(dir / "dropout")),
                      Catch::Matchers::Contains("--cuda-graph on: this run's step cannot be "
                                                "recorded (--dropout: the masks' random offsets "
                                                "advance on the host)"));
  CHECK_FALSE(fs::exists(dir / "dropout"));
  c.dropout = 0;
  c.batch = 1;  // 84 batches per epoch: more graphs than are recorded
  REQUIRE_THROWS_WITH(train(c, quiet_run(dir / "tiny_batches")),
                      Catch::Matchers::Contains("(--batch: 84 batches per epoch, more than the "
                                                "64 recorded (one graph each))"));
  c.cuda_graph = "auto";  // the same run goes ahead eagerly
  c.steps = 2;
  CHECK(train(c, quiet_run(dir / "tiny_batches")) == RunStatus::Completed);
}

TEST_CASE("cuda train: minibatch steps are recorded one graph per batch position, and equal the "
          "eager run's", "[cuda][train][graph]") {
  TG_REQUIRE_CUDA_DEVICE();
  // 84 training pairs in batches of 16: 5 batches per epoch (4 pairs dropped), so 20 steps are
  // 4 epochs, each uploaded once and its 5 positions replayed from their own graphs.
  TrainConfig c = tiny_transformer();
  c.device = "cuda";
  c.batch = 16;
  c.eval_every = 3;
  TempDir dir;
  const std::string recorded_run = require_recorded_equals_eager(c, dir, "minibatch");

  // The host-driven GPU step (what ran before the step moved to the device) on the same batches.
  TrainConfig host_driven = c;
  host_driven.dropout = 1e-9;  // any dropout keeps the step on the host; this one drops nothing
  REQUIRE(train(host_driven, quiet_run(dir / "host")) == RunStatus::Completed);
  const std::vector<MetricsRow> host = read_rows(dir / "host"), graph = read_rows(recorded_run);
  REQUIRE(host.size() == graph.size());
  for (size_t i = 0; i < host.size(); ++i) {
    INFO("step " << host[i].step);
    CHECK(relative_difference(graph[i].train_loss, host[i].train_loss) < kLossTolerance);
  }

  // The power preset's shape (two pre-LN layers on [a, op, b, =], Adam) records as well.
  TrainConfig deep = tiny_deep_transformer();
  deep.device = "cuda";
  deep.clip = 0;  // clipping reads the norm on the host
  deep.batch = 16;
  deep.eval_every = 5;
  deep.steps = 12;
  require_recorded_equals_eager(deep, dir, "deep");

  // Resumed mid-epoch (step 9 is batch 4 of epoch 2): the epoch is uploaded again from the
  // sampler's restored state, and the run ends where the whole one did.
  TrainConfig recorded = c;
  recorded.cuda_graph = "on";
  TrainConfig half = recorded;
  half.steps = 9;
  REQUIRE(train(half, quiet_run(dir / "parts")) == RunStatus::Completed);
  REQUIRE(train(recorded, RunOptions{dir / "parts", true, false, true}) == RunStatus::Completed);
  CHECK(same_rows(read_rows(dir / "parts"), read_rows(recorded_run)));
  check_same_checkpoints(dir / "parts", recorded_run);
}

TEST_CASE("cuda train: AdamW, Adam and SGD steps, clipping and norms on cuda:0 equal the CPU's",
          "[cuda][train]") {
  TG_REQUIRE_CUDA_DEVICE();
  // The GPU's update is a chain of elementwise ops in the CPU's fused order: the same roundings
  // but for the FMAs the CPU's compiler contracts, so each step agrees to a few ulps.
  const Device gpu = Device::cuda(0);
  const int steps = 3;
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    for (const std::string optimizer : {"adamw", "adam", "sgd"}) {
      INFO(dtype_name(dtype) << " " << optimizer);
      const double tolerance = dtype == DType::Float32 ? 1e-6 : 1e-13;
      Generator gen(11);
      // Awkward sizes; a third parameter that gets no gradient and must stay as it is.
      const std::vector<Tensor> init = {randn({7, 33}, gen, dtype), randn({33}, gen, dtype),
                                        randn({5}, gen, dtype)};
      std::vector<std::vector<Tensor>> grads(static_cast<size_t>(steps));
      for (auto& g : grads) g = {randn({7, 33}, gen, dtype), scale(randn({33}, gen, dtype), 1e-3)};
      auto make = [&](const std::vector<Tensor>& params) -> std::unique_ptr<optim::Optimizer> {
        if (optimizer == "adamw")
          return std::make_unique<optim::AdamW>(params, 1e-2, 0.9, 0.98, 1e-8, 1.0);
        if (optimizer == "adam")
          return std::make_unique<optim::Adam>(params, 1e-2, 0.9, 0.98, 1e-8, 0.1);
        return std::make_unique<optim::SGD>(params, 0.1, 0.9, 1e-2);
      };
      // The same steps on each device, with clipping that scales the gradients down.
      auto run = [&](Device device, std::vector<double>& norms) {
        std::vector<Tensor> params;
        for (const Tensor& t : init) params.push_back(t.to(device).clone().requires_grad_());
        std::unique_ptr<optim::Optimizer> opt = make(params);
        for (int s = 0; s < steps; ++s) {
          for (size_t i = 0; i < 2; ++i)
            params[i].impl()->grad = grads[static_cast<size_t>(s)][i].to(device).clone().impl_ptr();
          norms.push_back(optim::clip_grad_norm(params, 0.5));
          norms.push_back(optim::global_grad_norm(params));  // after clipping: 0.5
          opt->step();
          norms.push_back(optim::global_norm(params));
        }
        std::vector<Tensor> out;
        for (const Tensor& p : params) out.push_back(p.detach().to(Device::cpu()));
        for (const auto& [name, t] : opt->state()) out.push_back(t.to(Device::cpu()));
        return out;
      };
      std::vector<double> cpu_norms, gpu_norms;
      const std::vector<Tensor> want = run(Device::cpu(), cpu_norms);
      const std::vector<Tensor> got = run(gpu, gpu_norms);
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("tensor " << i << " (parameters, then the optimiser's state)");
        CHECK(relative_error(got[i], want[i]) < tolerance);
      }
      CHECK(got[2].to_vector<double>() == init[2].to_vector<double>());
      for (size_t i = 0; i < gpu_norms.size(); ++i)
        CHECK(relative_difference(gpu_norms[i], cpu_norms[i]) < tolerance);
    }
  }
}

TEST_CASE("cuda train: Module::to moves the parameters, keeping the handles", "[cuda][train]") {
  TG_REQUIRE_CUDA_DEVICE();
  TrainConfig c = tiny_transformer();
  const Dataset data = make_dataset(parse_operation(c.op), c.p);
  Generator gen(c.seed);
  std::shared_ptr<nn::Model> model = build_model(c, data, gen);
  const std::vector<Tensor> handles = model->parameters();
  std::vector<std::vector<double>> values;
  for (const Tensor& p : handles) values.push_back(p.to_vector<double>());
  model->to(Device::cuda(0));
  const std::vector<Tensor> moved = model->parameters();
  for (size_t i = 0; i < handles.size(); ++i) {
    CHECK(moved[i].same(handles[i]));
    CHECK(handles[i].device() == Device::cuda(0));
    CHECK(handles[i].requires_grad());
    CHECK(handles[i].to_vector<double>() == values[i]);
  }
  // Tokens outside the vocabulary are found on the device, and named as on the CPU.
  const Tensor bad = from_vector<int64_t>({1, 2, 13, 4, 5, 99}, {2, 3}).to(Device::cuda(0));
  REQUIRE_TG_ERROR(model->forward(bad),
                   Catch::Matchers::Equals("Transformer: token 99 at [1, 2] is outside the "
                                           "vocabulary [0, 14)"));
}
