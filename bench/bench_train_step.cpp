// Whole training steps of each preset (forward, cross-entropy, backward, AdamW) on the preset's
// own batch, as `tinygrok train` runs them; GFLOP/s counts the FLOPs the loss needs
// (step_flops below), so it compares directly with the sgemm ceiling in bench_cpu_ops.
//   ./build/bench/bench_train_step --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <omp.h>

#include "core/denormal.h"
#include "grok/config.h"
#include "grok/dataset.h"
#include "grok/split.h"
#include "grok/trainer.h"
#include "tinygrok.h"

using namespace tg;

namespace {

// FLOPs of one step counting only what the last-position loss reads: the matrix products of the
// forward (MLP, attention output, unembedding, keys and values of every position but the first
// layer's, which come from per-token tables), times 3 for the backward's two products per
// forward one. The first layer's table products and the T x T attention scores are negligible.
double step_flops(const grok::TrainConfig& c, int64_t batch, int64_t len, int64_t vocab_out) {
  const double b = static_cast<double>(batch), d = static_cast<double>(c.d_model);
  const double mlp = static_cast<double>(c.d_mlp), t = static_cast<double>(len);
  if (c.model == "mlp") return 3 * 2 * b * mlp * static_cast<double>(vocab_out);
  double forward = 2 * b * d * static_cast<double>(vocab_out);  // unembed
  for (int64_t layer = 0; layer < c.layers; ++layer) {
    const bool last = layer == c.layers - 1;
    const double rows = last ? b : b * t;                  // positions the layer's output feeds
    if (layer > 0) forward += 2 * (2 * b * t * d * d);     // keys and values at every position
    if (layer > 0) forward += 2 * rows * d * d;            // queries
    forward += 2 * rows * d * d + 2 * 2 * rows * d * mlp;  // attention output + MLP
  }
  return 3 * forward;
}

void BM_train_step(benchmark::State& state, const std::string& preset_name) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);
  const FlushDenormalGuard flush_denormal;  // as train() runs
  grok::TrainConfig config = grok::preset(preset_name);
  const grok::Dataset data = grok::make_dataset(grok::parse_operation(config.op), config.p);
  const grok::Split split = grok::random_split(data, config.frac, config.seed);
  const int64_t n_train = static_cast<int64_t>(split.train.size());
  const int64_t batch = config.batch == 0    ? n_train
                        : config.batch == -1 ? std::min<int64_t>(512, (n_train + 1) / 2)
                                             : config.batch;
  const std::vector<int64_t> rows(split.train.begin(), split.train.begin() + batch);
  const grok::TokenFormat format = grok::token_format(config);
  const Tensor tokens = grok::make_tokens(data, rows, format);
  const Tensor labels = grok::make_labels(data, rows);
  Generator gen(config.seed);
  auto model = grok::build_model(config, data, gen);
  optim::AdamW optimizer(model->parameters(), config.lr, config.beta1, config.beta2, 1e-8,
                         config.wd);
  for (auto _ : state) {
    const Tensor loss = cross_entropy(model->forward(tokens), labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    benchmark::DoNotOptimize(loss.item());
  }
  const double flops = step_flops(config, batch, tokens.size(1), data.p);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP"] = flops / 1e9;
  state.counters["batch"] = static_cast<double>(batch);
  omp_set_num_threads(omp_get_num_procs());
}

void thread_counts(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK_CAPTURE(BM_train_step, nanda, std::string("nanda"))->Apply(thread_counts);
BENCHMARK_CAPTURE(BM_train_step, power, std::string("power"))->Apply(thread_counts);
BENCHMARK_CAPTURE(BM_train_step, mlp, std::string("mlp"))->Apply(thread_counts);
BENCHMARK_CAPTURE(BM_train_step, default, std::string("default"))->Apply(thread_counts);

BENCHMARK_MAIN();
