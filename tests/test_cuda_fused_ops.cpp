// CUDA fused ops against their unfused compositions and the CPU: cross_entropy_with_grad (loss
// and dlogits in one pass over the logits) and embed_with_positions (token gather plus position
// add) with its backward. Each is compared, on awkward shapes and strided views, in float32 and
// float64, with the two-kernel route on the same device (the Backend base's default, called
// directly), with the CPU backend, and through the autograd ops; bad targets and tokens give the
// CPU's messages; the backward runs twice to show it is bitwise reproducible. Every case skips
// visibly without a GPU.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_compare.h"
#include "kernels/backend.h"
#include "seeded_tensors.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::check_matches_cpu;
using tg::testing::error_of;
using tg::testing::random_indices;
using tg::testing::random_normal;
using tg::testing::tolerance_for;

namespace {

const Device kGpu = Device::cuda(0);

// A GPU result against the CPU's or another GPU result (cuda_compare.h).
void check_close(const Tensor& got, const Tensor& want, double tolerance) {
  check_matches_cpu(got, want, tolerance);
}

}  // namespace

// ---- cross-entropy --------------------------------------------------------------------------------

TEST_CASE("cuda fused cross_entropy: one pass equals the two kernels and the CPU", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& gpu = backend_for(kGpu);
  Backend& cpu = backend_for(Device::cpu());
  uint32_t seed = 1;
  // 520 classes pass the 512 a lane's registers hold: the rest are read again from memory.
  // The last block's sum of the row losses follows reduce's plan for the loss: below 256 rows a
  // warp (130: 4 or 5 a lane), then a block (300: 1 or 2 a thread, 3830: nanda's batch, 14 or 15
  // a thread, more than the 8 read at a time), from 4,096 rows a block per part of 2,048 or more
  // (4,100: two parts), combined by a warp.
  for (int64_t classes : {1, 7, 113, 257, 520}) {
    for (int64_t rows : {1, 5, 130, 300, 3830, 4100}) {
      if (classes * rows > 40000) continue;  // the emulator runs a host thread per CUDA thread
      for (DType dtype : {DType::Float32, DType::Float64}) {
        for (bool transposed : {false, true}) {
          INFO("rows " << rows << ", classes " << classes << ", " << dtype_name(dtype)
                       << (transposed ? ", transposed" : ""));
          ++seed;
          const Tensor logits = transposed
                                    ? random_normal({classes, rows}, dtype, seed, 3).t()
                                    : random_normal({rows, classes}, dtype, seed, 3);
          const Tensor targets = random_indices({rows}, 0, classes, seed + 1000);
          const Tensor logits_gpu = transposed ? logits.t().to(kGpu).t() : logits.to(kGpu);
          const Tensor targets_gpu = targets.to(kGpu);
          for (ReduceOp reduction : {ReduceOp::Mean, ReduceOp::Sum}) {
            INFO((reduction == ReduceOp::Mean ? "mean" : "sum"));
            Tensor loss, dlogits;
            gpu.cross_entropy_with_grad(logits_gpu, targets_gpu, reduction, loss, dlogits);
            CHECK(loss.device() == kGpu);
            CHECK(loss.shape() == Shape{});
            CHECK(dlogits.is_contiguous());
            // The composition on the same device (cross_entropy, reduce, a filled row gradient,
            // cross_entropy_backward): the same sums in the same order, so the same bits, the
            // loss reduced by the fused kernel's last block included.
            Tensor loss2, dlogits2;
            gpu.Backend::cross_entropy_with_grad(logits_gpu, targets_gpu, reduction, loss2,
                                                 dlogits2);
            check_close(loss, loss2, 0);
            check_close(dlogits, dlogits2, 0);
            // The CPU.
            Tensor loss_cpu, dlogits_cpu;
            cpu.cross_entropy_with_grad(logits, targets, reduction, loss_cpu, dlogits_cpu);
            check_close(loss, loss_cpu, tolerance_for(dtype));
            check_close(dlogits, dlogits_cpu, tolerance_for(dtype));
          }
        }
      }
    }
  }
}

TEST_CASE("cuda fused cross_entropy: large logits, bad targets, no rows", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& gpu = backend_for(kGpu);
  Backend& cpu = backend_for(Device::cpu());
  // Logits near 1000: the shifted log-sum-exp keeps float32's precision.
  const Tensor big = random_normal({6, 40}, DType::Float32, 7) + 1000.0;
  const Tensor targets = random_indices({6}, 0, 40, 8);
  Tensor loss, dlogits, loss_cpu, dlogits_cpu;
  gpu.cross_entropy_with_grad(big.to(kGpu), targets.to(kGpu), ReduceOp::Mean, loss, dlogits);
  cpu.cross_entropy_with_grad(big, targets, ReduceOp::Mean, loss_cpu, dlogits_cpu);
  check_close(loss, loss_cpu, 1e-5);
  check_close(dlogits, dlogits_cpu, 1e-5);

  const Tensor logits = random_normal({3, 5}, DType::Float32, 9);
  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{0, 5, 1}, {-1, 0, 7}}) {
    const Tensor t = from_vector(bad);
    const std::string want = error_of(
        [&] { cpu.cross_entropy_with_grad(logits, t, ReduceOp::Sum, loss, dlogits); });
    CHECK(!want.empty());
    CHECK(error_of([&] {
            gpu.cross_entropy_with_grad(logits.to(kGpu), t.to(kGpu), ReduceOp::Sum, loss,
                                        dlogits);
          }) == want);
    CHECK(error_of([&] { cross_entropy(logits.to(kGpu).requires_grad_(), t.to(kGpu)); }) == want);
  }
  gpu.cross_entropy_with_grad(zeros({0, 5}, DType::Float64, kGpu),
                              zeros({0}, DType::Int64, kGpu), ReduceOp::Sum, loss, dlogits);
  CHECK(loss.shape() == Shape{});
  CHECK(loss.item() == 0);
  CHECK(dlogits.shape() == Shape{0, 5});
}

#ifndef TG_CUDA_HOST_EMULATION  // 65,536 blocks: too many to emulate, and nothing to race there
// The loss's last-block sum over the largest grid the kernel launches (8 rows a block, 65,536
// blocks, the grid-stride loop taking the last rows): on a GPU the blocks finish in any order,
// and the block that counts itself last must still see every other block's row losses. The
// emulator runs blocks one after another, so only a GPU can show a missing fence.
TEST_CASE("cuda fused cross_entropy: the last of 65,536 blocks sums every row", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& gpu = backend_for(kGpu);
  Backend& cpu = backend_for(Device::cpu());
  const int64_t rows = 8 * 65536 + 5, classes = 3;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    const Tensor logits = random_normal({rows, classes}, dtype, 31, 2);
    const Tensor targets = random_indices({rows}, 0, classes, 32);
    Tensor loss, dlogits, loss2, dlogits2;
    for (int again = 0; again < 3; ++again) {  // the counter is reset for the next launch
      gpu.cross_entropy_with_grad(logits.to(kGpu), targets.to(kGpu), ReduceOp::Sum, loss,
                                  dlogits);
      gpu.Backend::cross_entropy_with_grad(logits.to(kGpu), targets.to(kGpu), ReduceOp::Sum,
                                           loss2, dlogits2);
      check_close(loss, loss2, 0);
    }
    check_close(dlogits, dlogits2, 0);
    if (dtype == DType::Float64) {  // float32's sums of half a million rows differ by order
      Tensor loss_cpu, dlogits_cpu;
      cpu.cross_entropy_with_grad(logits, targets, ReduceOp::Sum, loss_cpu, dlogits_cpu);
      check_close(loss, loss_cpu, 1e-10);  // a block left out would be ~1e-6 off
    }
  }
}
#endif

TEST_CASE("cuda fused cross_entropy: the autograd op, forward and backward, equals the CPU's",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 300;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
      for (double upstream : {1.0, -2.5}) {
        INFO(dtype_name(dtype) << ", reduction " << static_cast<int>(reduction) << ", upstream "
                               << upstream);
        ++seed;
        const Tensor x = random_normal({37, 113}, dtype, seed);
        const Tensor targets = random_indices({37}, 0, 113, seed + 1);
        Tensor x_cpu = x.clone().requires_grad_();
        Tensor x_gpu = x.to(kGpu).requires_grad_();
        Tensor loss_cpu = cross_entropy(x_cpu, targets, reduction);
        Tensor loss_gpu = cross_entropy(x_gpu, targets.to(kGpu), reduction);
        check_close(loss_gpu, loss_cpu, tolerance_for(dtype));
        sum(loss_cpu * upstream).backward();
        sum(loss_gpu * upstream).backward();
        CHECK(x_gpu.grad().device() == kGpu);
        check_close(x_gpu.grad(), x_cpu.grad(), tolerance_for(dtype));
      }
    }
  }
}

// ---- embedding with positions ---------------------------------------------------------------

namespace {
struct EmbedCase {
  int64_t batch, len, width, vocab, n_pos;
};
}  // namespace

TEST_CASE("cuda fused embedding: forward and backward equal the composition and the CPU",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& gpu = backend_for(kGpu);
  Backend& cpu = backend_for(Device::cpu());
  const std::vector<EmbedCase> cases = {
      {1, 1, 1, 1, 1},   {5, 3, 33, 7, 3},   {130, 3, 33, 114, 5}, {7, 7, 128, 7, 7},
      {130, 1, 128, 3, 2}, {5, 7, 1, 114, 9}, {0, 3, 33, 7, 4},     {4, 0, 5, 7, 3},
      // dW_pos's blocks of 32 columns x 32 row groups: rows past a multiple of 32, columns
      // past a multiple of 32, and a batch of many rows per group.
      {70, 3, 40, 9, 3},   {1001, 2, 33, 5, 3},
  };
  uint32_t seed = 500;
  for (const EmbedCase& c : cases) {
    for (DType dtype : {DType::Float32, DType::Float64}) {
      for (bool strided : {false, true}) {
        INFO("B " << c.batch << ", T " << c.len << ", D " << c.width << ", V " << c.vocab
                  << ", P " << c.n_pos << ", " << dtype_name(dtype)
                  << (strided ? ", transposed tables" : ""));
        ++seed;
        const Tensor W_E = strided ? random_normal({c.width, c.vocab}, dtype, seed).t()
                                   : random_normal({c.vocab, c.width}, dtype, seed);
        const Tensor W_pos = strided ? random_normal({c.width, c.n_pos}, dtype, seed + 1).t()
                                     : random_normal({c.n_pos, c.width}, dtype, seed + 1);
        const Tensor tokens = random_indices({c.batch, c.len}, 0, c.vocab, seed + 2);
        const Tensor dy = random_normal({c.batch, c.len, c.width}, dtype, seed + 3);
        auto to_gpu = [&](const Tensor& t) { return strided ? t.t().to(kGpu).t() : t.to(kGpu); };
        const Tensor W_E_gpu = to_gpu(W_E), W_pos_gpu = to_gpu(W_pos);
        const Tensor tokens_gpu = tokens.to(kGpu), dy_gpu = dy.to(kGpu);

        // Forward: one add of the same two values everywhere, so bit for bit.
        const Tensor out = gpu.embed_with_positions(W_E_gpu, W_pos_gpu, tokens_gpu);
        CHECK(out.device() == kGpu);
        CHECK(out.shape() == Shape{c.batch, c.len, c.width});
        check_close(out, gpu.Backend::embed_with_positions(W_E_gpu, W_pos_gpu, tokens_gpu), 0);
        check_close(out, cpu.embed_with_positions(W_E, W_pos, tokens), 0);

        // Backward: dW_E is index_add's (index_add_sorted.h: the CPU's within rounding); dW_pos
        // summed in double, 32 row groups then their partial sums in order.
        Tensor dW_E, dW_pos, dW_E2, dW_pos2, dW_E_ref, dW_pos_ref;
        gpu.embed_with_positions_backward(dy_gpu, tokens_gpu, c.vocab, c.n_pos, dW_E, dW_pos);
        CHECK(dW_E.shape() == Shape{c.vocab, c.width});
        CHECK(dW_pos.shape() == Shape{c.n_pos, c.width});
        gpu.Backend::embed_with_positions_backward(dy_gpu, tokens_gpu, c.vocab, c.n_pos,
                                                   dW_E_ref, dW_pos_ref);
        check_close(dW_E, dW_E_ref, 0);
        check_close(dW_pos, dW_pos_ref, tolerance_for(dtype));
        cpu.embed_with_positions_backward(dy, tokens, c.vocab, c.n_pos, dW_E_ref, dW_pos_ref);
        check_close(dW_E, dW_E_ref, tolerance_for(dtype));
        check_close(dW_pos, dW_pos_ref, tolerance_for(dtype));
        // Run again: bitwise reproducible.
        gpu.embed_with_positions_backward(dy_gpu, tokens_gpu, c.vocab, c.n_pos, dW_E2, dW_pos2);
        check_close(dW_E2, dW_E, 0);
        check_close(dW_pos2, dW_pos, 0);
      }
    }
  }
}

TEST_CASE("cuda fused embedding: bad tokens, bad shapes and the autograd op", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& gpu = backend_for(kGpu);
  Backend& cpu = backend_for(Device::cpu());
  const Tensor W_E = random_normal({7, 5}, DType::Float32, 40);
  const Tensor W_pos = random_normal({3, 5}, DType::Float32, 41);
  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{0, 7, 1, 2}, {3, 1, -1, 9}}) {
    const Tensor t = from_vector(bad).reshape({2, 2});
    const std::string want = error_of([&] { cpu.embed_with_positions(W_E, W_pos, t); });
    CHECK(!want.empty());
    CHECK(error_of([&] { gpu.embed_with_positions(W_E.to(kGpu), W_pos.to(kGpu), t.to(kGpu)); }) ==
          want);
  }
  CHECK(!error_of([&] {
           gpu.embed_with_positions(W_E.to(kGpu).to(DType::Int64), W_pos.to(kGpu).to(DType::Int64),
                                    from_vector<int64_t>({0}).reshape({1, 1}).to(kGpu));
         }).empty());

  // More tokens than positions (the kernels index W_pos and dy by position), and a dy that is
  // not the tokens' [B, T, D]: the same error on both backends, and on the composition.
  const Tensor four = from_vector<int64_t>({0, 1, 2, 3}).reshape({1, 4});
  const std::string too_long = error_of([&] { cpu.embed_with_positions(W_E, W_pos, four); });
  CHECK(too_long == "embed_with_positions: tokens [1, 4] must be [B, T] with T <= 3 positions");
  CHECK(error_of([&] {
          gpu.embed_with_positions(W_E.to(kGpu), W_pos.to(kGpu), four.to(kGpu));
        }) == too_long);
  Tensor dW_E, dW_pos;
  const auto backward_error = [&](Backend& b, const Tensor& dy, const Tensor& tokens) {
    return error_of([&] {
      b.embed_with_positions_backward(dy.to(b.device()), tokens.to(b.device()), 7, 3, dW_E,
                                      dW_pos);
    });
  };
  const Tensor dy4 = random_normal({1, 4, 5}, DType::Float32, 44);
  CHECK(backward_error(cpu, dy4, four) ==
        "embed_with_positions_backward: tokens [1, 4] must be [B, T] with T <= 3 positions");
  CHECK(backward_error(gpu, dy4, four) == backward_error(cpu, dy4, four));
  const Tensor two = from_vector<int64_t>({0, 1, 2, 3}).reshape({2, 2});
  CHECK(backward_error(cpu, dy4, two) ==
        "embed_with_positions_backward: dy [1, 4, 5] must be [2, 2, D], the tokens' [B, T] and "
        "a row each");
  CHECK(backward_error(gpu, dy4, two) == backward_error(cpu, dy4, two));

  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    Tensor E_cpu = W_E.to(dtype).detach().requires_grad_();
    Tensor P_cpu = W_pos.to(dtype).detach().requires_grad_();
    Tensor E_gpu = W_E.to(dtype).to(kGpu).detach().requires_grad_();
    Tensor P_gpu = W_pos.to(dtype).to(kGpu).detach().requires_grad_();
    const Tensor tokens = random_indices({11, 2}, 0, 7, 42);
    const Tensor dy = random_normal({11, 2, 5}, dtype, 43);
    Tensor y_cpu = embed_positions(E_cpu, P_cpu, tokens);
    Tensor y_gpu = embed_positions(E_gpu, P_gpu, tokens.to(kGpu));
    check_close(y_gpu, y_cpu, 0);
    y_cpu.backward(dy);
    y_gpu.backward(dy.to(kGpu));
    check_close(E_gpu.grad(), E_cpu.grad(), 0);
    check_close(P_gpu.grad(), P_cpu.grad(), tolerance_for(dtype));
  }
}
