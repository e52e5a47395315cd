// The CUDA backend's fused linear_forward (kernels/cuda/matmul.cpp: the SGEMM with its bias +
// activation epilogue, kernels/cuda/sgemm/) against the unfused composition it replaces (the
// base class's matmul + bias_activation, on the same GPU: bit for bit) and against the CPU
// backend (1e-5): M, N, K over {1, 7, 33, 130} (rows no 16-byte version takes: v5's epilogue),
// then multiples of 4 (v7's epilogue), transposed and offset views, every activation, with and
// without bias, with and without the pre-activation output; K = 0 and empty outputs; float64
// (which the GPU's GEMM turns down) with matmul's message. Every case skips visibly without a GPU.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/gemm_operands.h"
#include "kernels/cuda/sgemm/sgemm.h"
#include "nn/activation.h"
#include "op_test_util.h"
#include "cuda_view_pair.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::error_of;
using tg::testing::Pair;
using tg::testing::check_bitwise;
using tg::testing::check_close;
using tg::testing::random_pair;
using tg::testing::View;

namespace {

const Device kGpu = Device::cuda(0);
const Activation kActivations[] = {Activation::Identity, Activation::Relu, Activation::Gelu,
                                   Activation::Square};

Backend& cpu_backend() { return backend_for(Device::cpu()); }
Backend& gpu_backend() { return backend_for(kGpu); }



// One product: fused on the GPU against the GPU's unfused composition (bitwise: the same GEMM
// accumulation, the same epilogue arithmetic, the residual's add) and the CPU's linear_forward.
// The residual, when there is one, is a view as `x_view` says ([M, N], maybe transposed).
void check_linear(int64_t M, int64_t N, int64_t K, View x_view, View w_view, Activation act,
                  bool has_bias, bool want_pre, Generator& gen, bool has_residual = false) {
  INFO(M << " x " << K << " @ " << K << " x " << N << " x view " << static_cast<int>(x_view)
          << " W view " << static_cast<int>(w_view) << " " << nn::activation_name(act)
          << " bias " << has_bias << " pre " << want_pre << " residual " << has_residual);
  const Pair x = random_pair(M, K, x_view, gen), W = random_pair(K, N, w_view, gen);
  const Pair b = has_bias ? random_pair(1, N, View::Plain, gen) : Pair{};
  const Tensor b_cpu = has_bias ? b.cpu.reshape({N}) : Tensor();
  const Tensor b_gpu = has_bias ? b.gpu.reshape({N}) : Tensor();
  const Pair r = has_residual ? random_pair(M, N, x_view, gen) : Pair{};
  Tensor pre_fused, pre_unfused, pre_cpu;
  const Tensor fused = gpu_backend().linear_forward(x.gpu, W.gpu, b_gpu, act, r.gpu,
                                                    want_pre ? &pre_fused : nullptr);
  const Tensor unfused = gpu_backend().Backend::linear_forward(
      x.gpu, W.gpu, b_gpu, act, r.gpu, want_pre ? &pre_unfused : nullptr);
  const Tensor cpu = cpu_backend().linear_forward(x.cpu, W.cpu, b_cpu, act, r.cpu,
                                                  want_pre ? &pre_cpu : nullptr);
  CHECK(fused.is_contiguous());
  check_bitwise(fused, unfused, "y, fused vs unfused");
  check_close(fused, cpu, "y vs CPU");
  if (want_pre) {
    REQUIRE(pre_fused.defined());
    CHECK(pre_fused.is_contiguous());
    check_bitwise(pre_fused, pre_unfused, "pre, fused vs unfused");
    check_close(pre_fused, cpu_backend().linear_forward(x.cpu, W.cpu, b_cpu, Activation::Identity,
                                                        Tensor(), nullptr),
                "pre vs CPU");
  }
}

// The linear op on `device`, forward and backward from the upstream gradient g0.
struct LayerRun {
  Tensor y, dx, dW, db;
};
LayerRun run_layer(Device device, const Tensor& x0, const Tensor& W0, const Tensor& b0,
                   const Tensor& g0, Activation act) {
  Tensor x = x0.to(device).detach().requires_grad_();
  Tensor W = W0.to(device).detach().requires_grad_();
  Tensor b = b0.to(device).detach().requires_grad_();
  const Tensor y = linear(x, W, b, act);
  y.backward(g0.to(device));
  return {y, x.grad(), W.grad(), b.grad()};
}

}  // namespace

TEST_CASE("cuda linear_forward: v5's epilogue on awkward shapes matches unfused and CPU",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(601);
  const int64_t sizes[] = {1, 7, 33, 130};
  // 64 shapes; the 32 combinations of activation, bias, pre and residual rotate over them (each
  // twice), and the views rotate too.
  int i = 0;
  for (int64_t M : sizes)
    for (int64_t N : sizes)
      for (int64_t K : sizes) {
        const int combo = i % 32;
        const View x_view = i % 3 == 0 ? View::Transposed : View::Offset;
        const View w_view = i % 2 == 0 ? View::Plain : View::Transposed;
        check_linear(M, N, K, x_view, w_view, kActivations[combo % 4], (combo / 4) % 2 != 0,
                     (combo / 8) % 2 != 0, gen, combo / 16 != 0);
        ++i;
      }
}

TEST_CASE("cuda linear_forward: v7's epilogue on 16-byte rows matches unfused and CPU",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(602);
  const int64_t sizes[] = {4, 36, 132};
  int i = 0;
  for (int64_t M : sizes)
    for (int64_t N : sizes)
      for (int64_t K : sizes) {
        const int combo = i % 32;
        const View x_view = i % 2 == 0 ? View::Plain : View::Transposed;
        const View w_view = i % 3 == 0 ? View::Transposed : View::Plain;
        check_linear(M, N, K, x_view, w_view, kActivations[combo % 4], (combo / 4) % 2 != 0,
                     (combo / 8) % 2 != 0, gen, combo / 16 != 0);
        ++i;
      }
  // Every combination on one shape with edges in both directions, aligned and not.
  for (Activation act : kActivations)
    for (bool has_bias : {false, true})
      for (bool want_pre : {false, true})
        for (bool has_residual : {false, true}) {
          check_linear(132, 36, 20, View::Plain, View::Plain, act, has_bias, want_pre, gen,
                       has_residual);
          check_linear(33, 7, 130, View::Offset, View::Plain, act, has_bias, want_pre, gen,
                       has_residual);
        }
  // A residual alone (no bias, no activation): still the fused GEMM, with the add's bits; and the
  // nanda MLP's output layer, which sgemm() splits over K (the residual added by the sum).
  check_linear(36, 12, 40, View::Plain, View::Plain, Activation::Identity, false, false, gen, true);
  check_linear(64, 128, 512, View::Plain, View::Plain, Activation::Identity, true, false, gen,
               true);
}

// No GPU needed: a size the SGEMM's int cannot hold is refused, not wrapped (a tensor that
// large would need 8 GB and more for one axis, so the check is tested on its own).
TEST_CASE("cuda products refuse sizes past 2^31 - 1", "[cuda]") {
  CHECK(cuda::gemm_size(int64_t{1} << 20, "a row count") == 1 << 20);
  CHECK(cuda::gemm_size(std::numeric_limits<int>::max(), "a row count") ==
        std::numeric_limits<int>::max());
  REQUIRE_TG_ERROR(cuda::gemm_size(int64_t{1} << 31, "an inner size"),
                   Catch::Equals("matmul: an inner size of 2147483648 is past the CUDA SGEMM's "
                                 "limit of 2^31 - 1"));
}

TEST_CASE("cuda linear_forward: K = 0, empty outputs, float64", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(603);
  // K = 0: the product is 0, so y = act(bias).
  for (Activation act : kActivations) {
    check_linear(7, 33, 0, View::Plain, View::Plain, act, true, true, gen);
    check_linear(8, 36, 0, View::Plain, View::Plain, act, true, false, gen);
  }
  // Empty outputs.
  for (auto [M, N] : {std::pair<int64_t, int64_t>{0, 7}, {7, 0}}) {
    Tensor pre;
    const Tensor x = randn({M, 5}, gen).to(kGpu), W = randn({5, N}, gen).to(kGpu);
    const Tensor b = randn({N}, gen).to(kGpu);
    const Tensor y = gpu_backend().linear_forward(x, W, b, Activation::Relu, Tensor(), &pre);
    CHECK(y.shape() == Shape{M, N});
    CHECK(pre.shape() == Shape{M, N});
  }
  // Float64: the GPU's GEMM is float32 only, with matmul's message.
  const Tensor x = randn({3, 4}, gen, DType::Float64).to(kGpu);
  const Tensor W = randn({4, 5}, gen, DType::Float64).to(kGpu);
  const Tensor b = randn({5}, gen, DType::Float64).to(kGpu);
  const std::string want = error_of([&] { gpu_backend().matmul(x, W); });
  CHECK(!want.empty());
  CHECK(error_of([&] {
          gpu_backend().linear_forward(x, W, b, Activation::Relu, Tensor(), nullptr);
        }) == want);
}

TEST_CASE("cuda linear: the autograd op keeps the pre-activation it needs", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(604);
  for (Activation act : kActivations) {
    INFO(nn::activation_name(act));
    const Tensor x0 = randn({2, 5, 33}, gen), W0 = randn({33, 7}, gen), b0 = randn({7}, gen);
    const Tensor g0 = randn({2, 5, 7}, gen);
    const LayerRun want = run_layer(Device::cpu(), x0, W0, b0, g0, act);
    const LayerRun got = run_layer(kGpu, x0, W0, b0, g0, act);
    check_close(got.y, want.y, "y");
    check_close(got.dx, want.dx, "dx");
    check_close(got.dW, want.dW, "dW");
    check_close(got.db, want.db, "db");
  }
}

TEST_CASE("cuda linear: ReLU keeps a NaN and passes its gradient, as on the CPU", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(605);
  // NaN biases make whole columns NaN: the epilogue keeps them, the backward's masks pass dy
  // there, and the bias gradient sums it. Odd sizes (v5) and 16-byte rows (v7).
  for (auto [M, K, N] : {std::array<int64_t, 3>{37, 33, 13}, {64, 32, 64}}) {
    INFO(M << " x " << K << " @ " << K << " x " << N);
    const Tensor x0 = randn({M, K}, gen), W0 = randn({K, N}, gen), g0 = randn({M, N}, gen);
    std::vector<float> bias = randn({N}, gen).to_vector<float>();
    bias[0] = bias[N / 2] = NAN;
    const Tensor b0 = from_vector<float>(bias);
    const LayerRun want = run_layer(Device::cpu(), x0, W0, b0, g0, Activation::Relu);
    const LayerRun got = run_layer(kGpu, x0, W0, b0, g0, Activation::Relu);
    const std::vector<float> y_want = want.y.to_vector<float>(), y_got = got.y.to_vector<float>();
    int64_t nan_mismatches = 0, nans = 0;
    for (size_t i = 0; i < y_want.size(); ++i) {
      nans += std::isnan(y_want[i]);
      nan_mismatches += std::isnan(y_got[i]) != std::isnan(y_want[i]);
    }
    CHECK(nans == 2 * M);
    CHECK(nan_mismatches == 0);
    check_close(got.dx, want.dx, "dx");
    check_close(got.dW, want.dW, "dW");
    check_close(got.db, want.db, "db");
    CHECK(want.db.to_vector<float>()[0] == Approx(sum(g0.select(1, 0)).item()).epsilon(1e-5));
  }
}

// With TF32 allowed (TG_CUDA_TF32=1, set_allow_tf32), products on 16-byte rows run on SGEMM v8's
// tensor cores: a ReLU layer forward and backward (epilogue, masks) within TF32's tolerance of the
// CPU, and off again afterwards.
TEST_CASE("cuda linear: with TF32 allowed, within TF32's tolerance of the CPU", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  struct AllowTf32 {
    AllowTf32() { cuda::set_allow_tf32(true); }
    ~AllowTf32() { cuda::set_allow_tf32(false); }
  };
  Generator gen(605);
  const Tensor x0 = randn({36, 64}, gen), W0 = randn({64, 32}, gen), b0 = randn({32}, gen);
  const Tensor g0 = randn({36, 32}, gen);
  const LayerRun want = run_layer(Device::cpu(), x0, W0, b0, g0, Activation::Relu);
  LayerRun got;
  {
    const AllowTf32 tf32;
    got = run_layer(kGpu, x0, W0, b0, g0, Activation::Relu);
  }
  CHECK_FALSE(cuda::allow_tf32());
  for (auto [g, w, what] : {std::tuple{got.y, want.y, "y"}, std::tuple{got.dx, want.dx, "dx"},
                            std::tuple{got.dW, want.dW, "dW"}}) {
    INFO(what);
    const double error = tg::testing::relative_error(g.to_vector<double>(), w.to_vector<double>());
    CHECK(error < 5e-3);
    // Rounded to TF32: not float32's result (unless TG_CUDA_SGEMM forces a version, such as
    // sgemm_v9_test_cuda_linear's v9, whose 3xTF32 gives float32's accuracy).
    if (cuda::forced_sgemm() == 0) CHECK(error > 1e-6);
  }
  check_close(got.db, want.db, "db");  // summed in float32, not by a GEMM
}
