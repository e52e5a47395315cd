// The CUDA backend's fused linear_backward (kernels/cuda/linear_epilogue.cu: for ReLU the two
// gradient GEMMs read dy zeroed where saved <= 0 through sgemm.h's operand masks, and the bias
// gradient sums the masked dy; dpre is never written) against the unfused composition it
// replaces (the base class's activation_backward + matmuls, on the same GPU) and against the CPU
// backend: dbias bit for bit (the same values summed in the same order), dx and dW within 1e-5.
// Awkward sizes (N = 1, K and D no multiples of any tile: v5's masked loads) and multiples of 4
// (v7's 16-byte masked loads); exact zeros in the pre-activation; transposed and offset views of
// x and W; with and without bias; dx or dW not wanted; Identity (no mask), and Gelu and Square
// (the composition, unchanged); N = 0 and a layer whose every unit is off; a dx residual (the
// gradient x's other consumers sent, added by dx's GEMM as it stores) and a dx ReLU mask (x a
// ReLU's output: dx zeroed where it is <= 0, by dx's GEMM as it stores) on rotating subsets.
// Then the autograd op end to end against the CPU, also when x feeds a skip connection, and
// the mlp op (its ReLU mask in dx's GEMM) against two linear ops. Every case skips visibly
// without a GPU.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <vector>

#include "kernels/backend.h"
#include "nn/activation.h"
#include "op_test_util.h"
#include "cuda_view_pair.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::Pair;
using tg::testing::check_bitwise;
using tg::testing::check_close;
using tg::testing::random_pair;
using tg::testing::View;

namespace {

const Device kGpu = Device::cuda(0);
const Activation kActivations[] = {Activation::Relu, Activation::Identity, Activation::Gelu,
                                   Activation::Square};

Backend& cpu_backend() { return backend_for(Device::cpu()); }
Backend& gpu_backend() { return backend_for(kGpu); }


// What the forward of `act` saved for backward, [rows, cols]: relu(pre) for Relu, pre for Gelu
// and Square, nothing for Identity. About one element of pre in five is exactly 0 (the kink,
// where the mask must drop dy), the rest normal; `all_off` makes every unit of a ReLU layer off.
Pair saved_for(Activation act, int64_t rows, int64_t cols, Generator& gen, bool all_off = false) {
  if (act == Activation::Identity) return {};
  std::vector<float> v = randn({rows, cols}, gen).to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) {
    if (all_off)
      v[i] = i % 2 ? -std::abs(v[i]) : 0.0f;
    else if ((i * 7 + 3) % 5 == 0)
      v[i] = 0.0f;
    if (act == Activation::Relu) v[i] = v[i] < 0.0f ? 0.0f : v[i];
  }
  const Tensor t = from_vector(v, {rows, cols});
  return {t, t.to(kGpu)};
}

struct Grads {
  Tensor dx, dW, db;
};

// One backward: the GPU's fused linear_backward against the GPU's composition and the CPU's.
// With with_dx_residual, a gradient [N, K] (x_view's layout) that dx's GEMM adds as it stores;
// with with_dx_relu_mask, a ReLU's output [N, K] through which it stores dx.
void check_backward(int64_t N, int64_t K, int64_t D, View x_view, View w_view, Activation act,
                    bool with_bias, bool want_dx, bool want_dW, Generator& gen,
                    bool all_off = false, bool with_dx_residual = false,
                    bool with_dx_relu_mask = false) {
  INFO("x [" << N << ", " << K << "] view " << static_cast<int>(x_view) << ", W [" << K << ", "
             << D << "] view " << static_cast<int>(w_view) << ", " << nn::activation_name(act)
             << ", bias " << with_bias << ", dx " << want_dx << ", dW " << want_dW
             << (with_dx_residual ? ", dx residual" : "")
             << (with_dx_relu_mask ? ", dx relu mask" : "")
             << (all_off ? ", every unit off" : ""));
  const Pair x = random_pair(N, K, x_view, gen), W = random_pair(K, D, w_view, gen);
  const Pair dy = random_pair(N, D, View::Plain, gen);
  const Pair saved = saved_for(act, N, D, gen, all_off);
  const bool residual = with_dx_residual && want_dx;
  const Pair dx_residual = residual ? random_pair(N, K, x_view, gen) : Pair{};
  // From a generator of its own, so that the other operands are those of the cases before it.
  Generator mask_gen(static_cast<uint64_t>(N * 1000003 + K * 1009 + D));
  const Pair dx_mask = with_dx_relu_mask && want_dx
                           ? saved_for(Activation::Relu, N, K, mask_gen)
                           : Pair{};
  // dx needs W and dW needs x: the caller passes only what the wanted gradients need.
  auto run = [&](Backend& backend, bool composed, const Tensor& dy_, const Tensor& x_,
                 const Tensor& W_, const Tensor& saved_, const Tensor& residual_,
                 const Tensor& mask_) {
    Grads g;
    const Tensor xs = want_dW ? x_ : Tensor(), Ws = want_dx ? W_ : Tensor();
    if (composed)
      backend.Backend::linear_backward(dy_, xs, Ws, saved_, act, with_bias, residual_, mask_,
                                       g.dx, g.dW, g.db);
    else
      backend.linear_backward(dy_, xs, Ws, saved_, act, with_bias, residual_, mask_, g.dx, g.dW,
                              g.db);
    return g;
  };
  const Grads fused = run(gpu_backend(), false, dy.gpu, x.gpu, W.gpu, saved.gpu, dx_residual.gpu,
                          dx_mask.gpu);
  const Grads unfused = run(gpu_backend(), true, dy.gpu, x.gpu, W.gpu, saved.gpu,
                            dx_residual.gpu, dx_mask.gpu);
  const Grads cpu = run(cpu_backend(), false, dy.cpu, x.cpu, W.cpu, saved.cpu, dx_residual.cpu,
                        dx_mask.cpu);

  CHECK(fused.dx.defined() == want_dx);
  CHECK(fused.dW.defined() == want_dW);
  CHECK(fused.db.defined() == with_bias);
  if (want_dx) {
    CHECK(fused.dx.device() == kGpu);
    CHECK(fused.dx.shape() == Shape{N, K});
    CHECK(fused.dx.is_contiguous());
    check_close(fused.dx, unfused.dx, "dx, fused vs unfused");
    check_close(fused.dx, cpu.dx, "dx vs CPU");
    if (dx_mask.cpu.defined()) {  // exactly 0 wherever the ReLU was off
      const std::vector<float> got = fused.dx.to_vector<float>();
      const std::vector<float> mask = dx_mask.cpu.to_vector<float>();
      int64_t leaked = 0;
      for (size_t i = 0; i < got.size(); ++i) leaked += mask[i] <= 0.0f && got[i] != 0.0f;
      CHECK(leaked == 0);
    }
  }
  if (want_dW) {
    CHECK(fused.dW.device() == kGpu);
    CHECK(fused.dW.shape() == Shape{K, D});
    CHECK(fused.dW.is_contiguous());
    check_close(fused.dW, unfused.dW, "dW, fused vs unfused");
    check_close(fused.dW, cpu.dW, "dW vs CPU");
  }
  if (with_bias) {
    CHECK(fused.db.device() == kGpu);
    CHECK(fused.db.shape() == Shape{D});
    check_bitwise(fused.db, unfused.db, "dbias, fused vs unfused");
    check_bitwise(fused.db, cpu.db, "dbias vs CPU");
  }
}

}  // namespace

TEST_CASE("cuda linear_backward: ReLU masks in v5's loads on awkward shapes", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(701);
  // 45 shapes; bias, the wanted gradients and the views rotate over them. Mostly ReLU, with
  // Identity (no mask) every fifth.
  int i = 0;
  for (int64_t N : {1, 7, 65})
    for (int64_t K : {1, 33, 130})
      for (int64_t D : {1, 7, 33, 70, 130}) {
        const Activation act = i % 5 == 4 ? Activation::Identity : Activation::Relu;
        const View x_view = i % 3 == 0 ? View::Transposed : i % 3 == 1 ? View::Offset : View::Plain;
        const View w_view = i % 2 == 0 ? View::Plain : View::Transposed;
        const bool want_dx = i % 7 != 3, want_dW = i % 7 != 5;
        check_backward(N, K, D, x_view, w_view, act, i % 2 == 0 || i % 3 == 0, want_dx, want_dW,
                       gen, false, /*with_dx_residual=*/i % 4 == 1,
                       /*with_dx_relu_mask=*/i % 3 != 1);
        ++i;
      }
}

TEST_CASE("cuda linear_backward: ReLU masks in v7's 16-byte loads on aligned rows", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(702);
  int i = 0;
  for (int64_t N : {4, 68, 132})
    for (int64_t K : {4, 36, 132})
      for (int64_t D : {4, 132}) {
        const View x_view = i % 2 == 0 ? View::Plain : View::Transposed;
        const View w_view = i % 3 == 0 ? View::Transposed : View::Plain;
        check_backward(N, K, D, x_view, w_view, Activation::Relu, i % 2 == 0, true, true, gen,
                       false, /*with_dx_residual=*/i % 3 != 2, /*with_dx_relu_mask=*/i % 2 == 0);
        ++i;
      }
}

#ifndef TG_CUDA_HOST_EMULATION  // too many threads to emulate, and nothing to race there
// The bias gradient's last-block sum (column_sums_kernel) over a thousand blocks: on a GPU they
// finish in any order, and the last must see every block's partial sums, bit for bit the CPU's.
TEST_CASE("cuda linear_backward: the bias gradient's last block over a thousand blocks",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(709);
  // 64,000 rows in 1,000 chunks of 64, 300 columns: 300,000 partial sums, 1,172 blocks of 256.
  check_backward(64000, 3, 300, View::Plain, View::Plain, Activation::Relu, true, false, true,
                 gen);
}
#endif

TEST_CASE("cuda linear_backward: the bias gradient's last block adds 11 chunks in order",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(710);
  // 650 rows: 10 chunks of 64 and one of 10, which the last block reads 8 at a time, then 3.
  for (Activation act : {Activation::Relu, Activation::Identity})
    check_backward(650, 3, 5, View::Plain, View::Plain, act, true, false, true, gen);
}

TEST_CASE("cuda linear_backward: every activation, bias and wanted gradient", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(703);
  for (Activation act : kActivations)
    for (bool with_bias : {false, true})
      for (int wanted = 0; wanted < 4; ++wanted) {
        const bool want_dx = wanted & 1, want_dW = wanted & 2;
        check_backward(65, 36, 20, View::Plain, View::Plain, act, with_bias, want_dx, want_dW,
                       gen, false, /*with_dx_residual=*/with_bias, /*with_dx_relu_mask=*/true);
        check_backward(33, 7, 130, View::Offset, View::Transposed, act, with_bias, want_dx,
                       want_dW, gen);
      }
}

TEST_CASE("cuda linear_backward: no rows, and every unit off", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(704);
  for (Activation act : {Activation::Relu, Activation::Identity}) {
    check_backward(0, 5, 7, View::Plain, View::Plain, act, true, true, true, gen);
    check_backward(0, 8, 4, View::Plain, View::Plain, act, false, true, true, gen);
  }
  // Every element of pre <= 0: dx, dW and dbias are all zero.
  for (auto [N, K, D] : {std::array<int64_t, 3>{70, 33, 9}, {68, 36, 8}})
    check_backward(N, K, D, View::Plain, View::Plain, Activation::Relu, true, true, true, gen,
                   /*all_off=*/true);
}

TEST_CASE("cuda linear_backward: the autograd op's gradients match the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(705);
  // [1, 1, 33] rows: N = 1; then a batch of rows. Every combination of inputs needing grad.
  for (const Shape& x_shape : {Shape{1, 1, 33}, Shape{3, 5, 36}})
    for (int needs = 1; needs < 8; ++needs) {
      const bool x_grad = needs & 1, w_grad = needs & 2, b_grad = needs & 4;
      INFO("x " << shape_str(x_shape) << " needs grad: x " << x_grad << " W " << w_grad << " b "
                << b_grad);
      const int64_t in = x_shape.back(), out = 12;
      const Tensor x0 = randn(x_shape, gen), W0 = randn({in, out}, gen), b0 = randn({out}, gen);
      Shape y_shape = x_shape;
      y_shape.back() = out;
      const Tensor g0 = randn(y_shape, gen);
      auto run = [&](Device device) {
        Tensor x = x0.to(device).detach().requires_grad_(x_grad);
        Tensor W = W0.to(device).detach().requires_grad_(w_grad);
        Tensor b = b0.to(device).detach().requires_grad_(b_grad);
        linear(x, W, b, Activation::Relu).backward(g0.to(device));
        return Grads{x_grad ? x.grad() : Tensor(), w_grad ? W.grad() : Tensor(),
                     b_grad ? b.grad() : Tensor()};
      };
      const Grads want = run(Device::cpu()), got = run(kGpu);
      if (x_grad) check_close(got.dx, want.dx, "dx");
      if (w_grad) check_close(got.dW, want.dW, "dW");
      if (b_grad) check_bitwise(got.db, want.db, "db");
    }
}

// A residual MLP block, y = x + linear(relu(linear(x))), x the output of an op: the skip's
// gradient, pending for x when the first linear's backward runs, is added by its dx GEMM as it
// stores (the nanda step's MLP). Against the CPU, at nanda's widths and an odd shape.
TEST_CASE("cuda linear_backward: a residual block's skip gradient joins dx in its GEMM",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(706);
  for (const std::array<int64_t, 3>& s :
       {std::array<int64_t, 3>{61, 128, 512}, std::array<int64_t, 3>{7, 33, 9}}) {
    const int64_t rows = s[0], d = s[1], hidden = s[2];
    INFO(rows << " rows, " << d << " -> " << hidden << " -> " << d);
    const Tensor x0 = randn({rows, d}, gen), W1 = randn({d, hidden}, gen);
    const Tensor b1 = randn({hidden}, gen), W2 = randn({hidden, d}, gen), b2 = randn({d}, gen);
    const Tensor g0 = randn({rows, d}, gen);
    auto run = [&](Device device) {
      Tensor leaf = x0.to(device).detach().requires_grad_();
      const Tensor x = leaf * 1.0;  // an op's output, read twice
      linear(linear(x, W1.to(device), b1.to(device), Activation::Relu), W2.to(device),
             b2.to(device), Activation::Identity, x)
          .backward(g0.to(device));
      return leaf.grad();
    };
    check_close(run(kGpu), run(Device::cpu()), "dx");
  }
}

// The mlp op (autograd/ops/mlp.cpp), whose backward on the GPU masks the hidden layer's gradient
// as the second layer's dx GEMM stores it, then runs the first layer's GEMMs unmasked: against
// the same block as two linear ops on the GPU (whose first layer reads dy through the mask in
// its GEMMs) and against the CPU (where the op runs the composition's calls). Three blocks: a
// plain MLP, x + mlp(x), and (x + mlp(x)) * x, x read again, at nanda's widths (rows
// 16-byte aligned: both GPU paths run the same SGEMM version on the same values, so every
// gradient has the same bits) and at odd ones (masked loads on unaligned rows take another
// version: within 1e-5).
TEST_CASE("cuda mlp: the ReLU mask in dx's GEMM gives the composition's gradients", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(707);
  for (const std::array<int64_t, 3>& s :
       {std::array<int64_t, 3>{61, 128, 512}, std::array<int64_t, 3>{7, 33, 9}})
    for (int block = 0; block < 3; ++block) {
      const int64_t rows = s[0], d = s[1], hidden = s[2];
      const bool aligned = d % 4 == 0 && hidden % 4 == 0;
      INFO(rows << " rows, " << d << " -> " << hidden << " -> " << d << ", block " << block);
      const Tensor x0 = randn({rows, d}, gen), W1 = randn({d, hidden}, gen);
      const Tensor b1 = randn({hidden}, gen), W2 = randn({hidden, d}, gen), b2 = randn({d}, gen);
      const Tensor g0 = randn({rows, d}, gen);
      auto run = [&](Device device, bool as_mlp) {
        Tensor leaf = x0.to(device).detach().requires_grad_();
        Tensor w1 = W1.to(device).detach().requires_grad_(), c1 = b1.to(device).detach();
        Tensor w2 = W2.to(device).detach().requires_grad_(), c2 = b2.to(device).detach();
        c1.requires_grad_(), c2.requires_grad_();
        const Tensor x = leaf * 1.0;  // an op's output
        const Tensor residual = block == 0 ? Tensor() : x;
        Tensor y = as_mlp ? mlp(x, w1, c1, Activation::Relu, w2, c2, residual)
                          : linear(linear(x, w1, c1, Activation::Relu), w2, c2,
                                   Activation::Identity, residual);
        if (block == 2) y = y * x;  // x's other consumer
        y.backward(g0.to(device));
        return std::vector<Tensor>{y, leaf.grad(), w1.grad(), c1.grad(), w2.grad(), c2.grad()};
      };
      const std::vector<Tensor> fused = run(kGpu, true), composed = run(kGpu, false);
      const std::vector<Tensor> cpu = run(Device::cpu(), true);
      const char* names[] = {"y", "dx", "dW_in", "db_in", "dW_out", "db_out"};
      for (size_t i = 0; i < fused.size(); ++i) {
        INFO(names[i]);
        if (aligned) check_bitwise(fused[i], composed[i], "mlp vs two linear ops on the GPU");
        check_close(fused[i], composed[i], "mlp vs two linear ops on the GPU");
        check_close(fused[i], cpu[i], "mlp on the GPU vs the CPU");
      }
    }
}
