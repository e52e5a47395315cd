// Recording work for replay on the CUDA backend (Backend::capture, a CUDA graph): a step with
// autograd ops (embedding, linear + ReLU, cross-entropy, table attention, an int64 division) and
// its backward, replayed after its inputs change in place, gives what the same step gives run
// eagerly; replays allocate nothing; memory the graph uses (also blocks freed after the capture)
// is never handed to other tensors while the graph lives, and goes back to the cache when it
// dies; a host read or an error inside the captured work fails the capture with a clear message
// and leaves the device usable; the CPU backend refuses to capture. Every CUDA case skips visibly
// without a GPU.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/device_caching_allocator.h"
#include "kernels/cuda/stream.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using Catch::Matchers::Contains;

namespace {

const Device kGpu = Device::cuda(0);

// Fresh values for `t` (on the device), in place: normal for floating tensors, uniform in
// [lo, hi) for int64 ones. Outside the graph of autograd, so leaves may be refilled too.
void refill(Tensor& t, uint32_t seed, int64_t lo = 0, int64_t hi = 0) {
  std::mt19937 rng(seed);
  std::vector<double> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::Int64) {
    std::uniform_int_distribution<int64_t> dist(lo, hi - 1);
    for (double& e : v) e = static_cast<double>(dist(rng));
  } else {
    std::normal_distribution<double> dist(0, 1);
    for (double& e : v) e = dist(rng);
  }
  NoGradGuard no_grad;
  t.copy_(from_vector(v, {t.numel()}).reshape(t.shape()).to(t.dtype()).to(kGpu));
}

Tensor leaf(const Shape& shape) {
  Tensor t = zeros(shape, DType::Float32, kGpu);
  t.requires_grad_();
  return t;
}

// Equal element for element (as doubles: -0 and +0 are equal, which is all that may differ
// between attention's backward paths for distinct and repeated rows).
void require_equal(const std::vector<std::vector<double>>& got,
                   const std::vector<std::vector<double>>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("output " << i);
    REQUIRE(got[i] == want[i]);
  }
}

// A training-like step on preallocated tensors: a forward through autograd ops, its backward,
// and every result copied into outputs allocated once (the leaves' gradients then dropped, as an
// optimiser would after using them).
struct Step {
  Tensor table = leaf({17, 33}), w = leaf({33, 65}), b = leaf({65});
  Tensor q_table = leaf({5, 2, 4}), k_table = leaf({6, 2, 4}), v_table = leaf({6, 2, 4});
  Tensor tokens = zeros({7}, DType::Int64, kGpu), targets = zeros({7}, DType::Int64, kGpu);
  Tensor divisor = zeros({7}, DType::Int64, kGpu);
  Tensor q_rows = zeros({2, 2}, DType::Int64, kGpu), kv_rows = zeros({2, 3}, DType::Int64, kGpu);
  std::vector<Tensor> leaves{table, w, b, q_table, k_table, v_table};

  Tensor out_h = zeros({7, 65}, DType::Float32, kGpu), out_loss = zeros({}, DType::Float32, kGpu);
  Tensor out_quotient = zeros({7}, DType::Int64, kGpu);
  std::vector<Tensor> out_grads;

  Step() {
    for (const Tensor& l : leaves) out_grads.push_back(zeros(l.shape(), DType::Float32, kGpu));
  }

  void set_inputs(uint32_t seed) {
    for (size_t i = 0; i < leaves.size(); ++i) refill(leaves[i], seed * 16 + i);
    refill(tokens, seed * 16 + 8, 0, 17);
    refill(targets, seed * 16 + 9, 0, 65);
    refill(divisor, seed * 16 + 10, 1, 5);
    refill(q_rows, seed * 16 + 11, 0, 5);
    refill(kv_rows, seed * 16 + 12, 0, 6);
  }

  void run() {
    const Tensor x = embedding(table, tokens);                  // [7, 33]
    const Tensor h = relu(x.matmul(w) + b);                     // [7, 65]
    const Tensor z = table_attention(q_table, k_table, v_table, q_rows, kv_rows, 0.5);
    const Tensor loss = cross_entropy(h, targets) + scale(z.sum(), 0.25);
    loss.backward();
    NoGradGuard no_grad;
    out_h.copy_(h);
    out_loss.copy_(loss);
    out_quotient.copy_(div(tokens, divisor));
    for (size_t i = 0; i < leaves.size(); ++i) {
      out_grads[i].copy_(leaves[i].grad());
      leaves[i].zero_grad();
    }
  }

  std::vector<std::vector<double>> outputs() const {
    std::vector<std::vector<double>> all{out_h.to_vector<double>(), out_loss.to_vector<double>(),
                                         out_quotient.to_vector<double>()};
    for (const Tensor& g : out_grads) all.push_back(g.to_vector<double>());
    return all;
  }

  void fill_outputs(double value) {
    NoGradGuard no_grad;
    out_h.fill_(value);
    out_loss.fill_(value);
    out_quotient.fill_(value);
    for (Tensor& g : out_grads) g.fill_(value);
  }
};

bool all_equal(const Tensor& t, double value) {
  for (double v : t.to_vector<double>())
    if (v != value) return false;
  return true;
}

}  // namespace

// First in this program, so that no case before it has used the device's last-block counter
// (CudaBackend::last_block_counter, made on first use): a capture that the first user of it
// abandons must leave it made and zeroed, or the next bias gradient never finishes its sum.
TEST_CASE("cuda graph: an abandoned capture of the first bias gradient leaves later ones right",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& gpu = backend_for(kGpu);
  Tensor dy = zeros({37, 5}, DType::Float32, kGpu);
  refill(dy, 9);
  Tensor dbias = zeros({5}, DType::Float32, kGpu);
  REQUIRE_TG_ERROR(gpu.capture([&] {
                     (void)gpu.activation_backward(dy, dy, Activation::Identity, dbias);
                     throw Error("the work gives up");
                   }),
                   Contains("capture failed: the work gives up"));
  const Tensor dy_host = dy.to(Device::cpu());
  Tensor want = zeros({5});
  (void)backend_for(Device::cpu()).activation_backward(dy_host, dy_host, Activation::Identity,
                                                       want);
  (void)gpu.activation_backward(dy, dy, Activation::Identity, dbias);
  CHECK(dbias.to_vector<float>() == want.to_vector<float>());  // the CPU's order: its bits
}

TEST_CASE("cuda graph: a replay gives what the eager step gives, on inputs changed in place",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& backend = backend_for(kGpu);
  Step step;
  step.set_inputs(1);
  step.run();  // eagerly first: this run checks the index tensors the capture cannot
  const auto eager1 = step.outputs();

  step.fill_outputs(-7);
  const std::unique_ptr<CapturedWork> graph = backend.capture([&] { step.run(); });
  CHECK_FALSE(cuda::is_capturing(0));
  for (const auto& output : step.outputs())  // recorded, not run
    for (double v : output) REQUIRE(v == -7);

  graph->replay();
  require_equal(step.outputs(), eager1);
  CHECK(graph->operations() > 10);  // the step's kernels, one graph launch

  // One fill is one operation.
  Tensor filled = Tensor::empty({5}, DType::Float32, kGpu);
  const std::unique_ptr<CapturedWork> one = backend.capture([&] { filled.fill_(3); });
  CHECK(one->operations() == 1);
  one->replay();
  CHECK(filled.to_vector<double>() == std::vector<double>(5, 3.0));
  // Index rows made on the device record too (a host copy could not).
  Tensor rows = Tensor::empty({4}, DType::Int64, kGpu);
  const std::unique_ptr<CapturedWork> iota =
      backend.capture([&] { rows.copy_(arange(0, 4, 1, DType::Int64, kGpu)); });
  iota->replay();
  CHECK(rows.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});

  // New values in the same tensors (indices too): the replay reads them.
  step.set_inputs(2);
  const uint64_t mallocs_before = cuda::device_allocator(0).device_mallocs();
  graph->replay();
  graph->replay();  // the same inputs again: the same results
  CHECK(cuda::device_allocator(0).device_mallocs() == mallocs_before);  // replays allocate nothing
  const auto replayed2 = step.outputs();
  CHECK(replayed2[0] != eager1[0]);
  step.run();
  require_equal(replayed2, step.outputs());

  step.set_inputs(3);
  const uint64_t mallocs_later = cuda::device_allocator(0).device_mallocs();
  for (int i = 0; i < 3; ++i) graph->replay();
  CHECK(cuda::device_allocator(0).device_mallocs() == mallocs_later);
  const auto replayed3 = step.outputs();
  step.run();
  require_equal(replayed3, step.outputs());
}

TEST_CASE("cuda graph: the graph's memory is its own while it lives, then the cache's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& backend = backend_for(kGpu);
  cuda::DeviceCachingAllocator& allocator = cuda::device_allocator(0);
  Tensor x = zeros({7, 33}, DType::Float32, kGpu), w = zeros({33, 65}, DType::Float32, kGpu);
  Tensor b = zeros({65}, DType::Float32, kGpu), out = zeros({7, 65}, DType::Float32, kGpu);
  refill(x, 1);
  refill(w, 2);
  refill(b, 3);
  const auto work = [&](Tensor* kept) {
    NoGradGuard no_grad;
    Tensor product = x.matmul(w);
    out.copy_(relu(product + b));
    if (kept) *kept = product;  // outlives the capture
  };
  work(nullptr);
  const std::vector<double> eager = out.to_vector<double>();

  Tensor kept;
  std::unique_ptr<CapturedWork> graph = backend.capture([&] { work(&kept); });
  const void* kept_address = kept.raw_data();
  kept = Tensor();  // freed while the graph lives: back to the graph's pool, not to the cache

  // Tensors of the sizes of the graph's temporaries, allocated and filled after the capture:
  // none may sit where a replay writes.
  std::vector<Tensor> others;
  for (int i = 0; i < 16; ++i) {
    others.push_back(full({7, 65}, 42, DType::Float32, kGpu));
    others.push_back(full({7, 33}, 42, DType::Float32, kGpu));
    CHECK(others[others.size() - 2].raw_data() != kept_address);
  }
  graph->replay();
  CHECK(out.to_vector<double>() == eager);
  refill(x, 4);
  graph->replay();
  graph->replay();
  for (const Tensor& t : others) REQUIRE(all_equal(t, 42));
  const std::vector<double> replayed = out.to_vector<double>();
  CHECK(replayed != eager);
  work(nullptr);
  CHECK(out.to_vector<double>() == replayed);

  // Destroying the graph returns its pool (the temporaries, and kept's block) to the cache.
  const size_t cached_before = allocator.cached_bytes();
  graph.reset();
  CHECK(allocator.cached_bytes() > cached_before);
  const uint64_t mallocs = allocator.device_mallocs();
  const Tensor reused = full({7, 65}, 1, DType::Float32, kGpu);
  CHECK(allocator.device_mallocs() == mallocs);  // served from the returned blocks
}

TEST_CASE("cuda graph: a host read or an error in the work fails the capture, cleanly",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& backend = backend_for(kGpu);
  Tensor x = zeros({7, 33}, DType::Float32, kGpu);
  refill(x, 5);
  const Tensor x_host = x.to(Device::cpu());

  // Reading a result on the host waits for the device: the runtime refuses, the capture fails.
  REQUIRE_TG_ERROR(backend.capture([&] { (void)(x * 2.0).sum().item(); }),
                   Contains("cuda:0: capture failed") && Contains("capturing") &&
                       Contains("must not wait for the device"));
  CHECK_FALSE(cuda::is_capturing(0));
  REQUIRE_TG_ERROR(backend.capture([&] { (void)relu(x).to(Device::cpu()); }),
                   Contains("cuda:0: capture failed") && Contains("must not wait for the device"));
  // Any other error of the work: the capture fails with it.
  REQUIRE_TG_ERROR(backend.capture([&] { (void)x.matmul(x); }),
                   Contains("cuda:0: capture failed: matmul"));
  // One capture at a time.
  REQUIRE_TG_ERROR(backend.capture([&] { backend.capture([] {}); }),
                   Contains("capture failed") && Contains("already capturing"));
  CHECK_FALSE(cuda::is_capturing(0));

  // The device works as before: eagerly, and for a later capture.
  const Tensor doubled = x * 2.0;
  CHECK(doubled.to_vector<double>() == (x_host * 2.0).to_vector<double>());
  Tensor out = zeros({7, 33}, DType::Float32, kGpu);
  const std::unique_ptr<CapturedWork> graph = backend.capture([&] {
    NoGradGuard no_grad;
    out.copy_(x * 3.0);
  });
  graph->replay();
  CHECK(out.to_vector<double>() == (x_host * 3.0).to_vector<double>());
}

// No GPU needed: the CPU backend is in every build.
TEST_CASE("cuda graph: the CPU backend cannot capture", "[cuda]") {
  REQUIRE_TG_ERROR(backend_for(Device::cpu()).capture([] {}),
                   Contains("cpu: capture: this backend cannot record work for replay"));
}
