// The full-batch nanda training step (forward, cross-entropy, backward, AdamW) on cuda:0, three
// ways, to show where a tiny model's step time goes:
//   host_driven  the CPU loop's step: lr set from the host, the loss read back every step (a
//                host wait per step, as a plain PyTorch loop with loss.item() has);
//   on_device    the step as `tinygrok train --device cuda --cuda-graph off` runs it: Adam
//                counts steps and schedules lr on the device, the loss is summed there; the
//                host still waits for the index checks of the embedding, the attention's rows,
//                the scatter-adds and the targets, which a replay skips;
//   graph        the same step recorded once as a CUDA graph and replayed (the default).
// Each iteration times kStepsPerBatch steps between CUDA events on the backend's stream.
//   ./build/bench/bench_cuda_train_step --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "cuda_bench_util.h"
#include "grok/config.h"
#include "grok/dataset.h"
#include "grok/loss.h"
#include "grok/split.h"
#include "grok/trainer.h"
#include "kernels/backend.h"
#include "optim/adam.h"
#include "optim/schedule.h"

using namespace tg;

namespace {

constexpr int kStepsPerBatch = 50;

enum class Mode { HostDriven, OnDevice, Graph };

void BM_nanda_step(benchmark::State& state, Mode mode) {
  if (!bench::device_present()) {
    state.SkipWithError("skipped: no CUDA device");
    return;
  }
  try {
    const grok::TrainConfig config = grok::preset("nanda");
    const grok::Dataset data = grok::make_dataset(grok::parse_operation(config.op), config.p);
    const grok::Split split = grok::random_split(data, config.frac, config.seed);
    const grok::TokenFormat format = grok::token_format(config);
    const Tensor tokens = grok::make_tokens(data, split.train, format).to(bench::kGpu);
    const Tensor labels = grok::make_labels(data, split.train).to(bench::kGpu);
    Generator gen(config.seed);
    auto model = grok::build_model(config, data, gen);
    model->to(bench::kGpu);
    optim::AdamW optimizer(model->parameters(), config.lr, config.beta1, config.beta2, 1e-8,
                           config.wd);
    optim::LrSchedule schedule{config.lr};
    schedule.warmup_steps = config.warmup;
    if (mode != Mode::HostDriven) optimizer.keep_step_on_device(schedule.rule());
    Tensor loss_sum = zeros({}, DType::Float64, bench::kGpu);
    int64_t host_steps = 0;
    const auto step = [&] {
      if (mode == Mode::HostDriven) optimizer.set_lr(schedule.at(host_steps++));
      const Tensor loss = cross_entropy(model->forward(tokens), labels);
      if (mode == Mode::HostDriven) benchmark::DoNotOptimize(loss.item());  // the host waits
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      if (mode != Mode::HostDriven) loss_sum.add_(loss.detach());  // as DeviceStep sums it
    };
    step();  // eager first: allocator cache warm, index tensors checked
    std::unique_ptr<CapturedWork> graph;
    if (mode == Mode::Graph) graph = backend_for(bench::kGpu).capture(step);
    const auto run = [&] {
      if (graph) graph->replay();
      else step();
    };
    const cudaStream_t stream = cuda::current_stream(0);
    bench::Events ev;
    for (int i = 0; i < 3; ++i) bench::time_batch(stream, ev.start, ev.stop, kStepsPerBatch, run);
    std::vector<double> ms;
    for (auto _ : state) {
      ms.push_back(bench::time_batch(stream, ev.start, ev.stop, kStepsPerBatch, run));
      state.SetIterationTime(ms.back() / 1e3);
    }
    const double us_per_step = 1e3 * bench::median(ms) / kStepsPerBatch;
    state.counters["us/step"] = us_per_step;
    state.counters["steps/batch"] = kStepsPerBatch;
    state.counters["spread_%"] = bench::spread_percent(ms);
    state.counters["batch"] = static_cast<double>(tokens.size(0));
    if (graph) state.counters["graph_nodes"] = static_cast<double>(graph->operations());
    const double last_loss = mode == Mode::HostDriven
                                 ? cross_entropy(model->forward(tokens), labels).item()
                                 : loss_sum.item();
    if (!std::isfinite(last_loss)) state.SkipWithError("the loss went non-finite");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

}  // namespace

BENCHMARK_CAPTURE(BM_nanda_step, host_driven, Mode::HostDriven)
    ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(40);
BENCHMARK_CAPTURE(BM_nanda_step, on_device, Mode::OnDevice)
    ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(40);
BENCHMARK_CAPTURE(BM_nanda_step, graph, Mode::Graph)
    ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(40);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  tg::bench::warm_up_gpu();  // clocks up before host_driven, the first mode timed
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
