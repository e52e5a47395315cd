// CUDA layer norm and linear-epilogue kernels (kernels/cuda/layer_norm.cu, linear_epilogue.cu)
// against the CPU backend: each primitive directly on awkward shapes (D = 1, 7, 33, 130 and
// 1, 5, 257 rows), strided views, with and without weight and bias, every activation, outputs
// aliasing the input, float32 and float64; then through the autograd ops layer_norm and linear;
// then empty tensors, run-to-run determinism and the CPU's error messages. Every case skips
// visibly without a GPU.
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda_compare.h"
#include "kernels/backend.h"
#include "nn/activation.h"
#include "op_test_util.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::error_of;
using tg::testing::check_matches_cpu;
using tg::testing::tolerance_for;

namespace {

const Device kGpu = Device::cuda(0);
const DType kFloatTypes[] = {DType::Float32, DType::Float64};
const Activation kActivations[] = {Activation::Identity, Activation::Relu, Activation::Gelu,
                                   Activation::Square};
const int64_t kRows[] = {1, 5, 257};
const int64_t kWidths[] = {1, 7, 33, 130};

Backend& cpu_backend() { return backend_for(Device::cpu()); }
Backend& gpu_backend() { return backend_for(kGpu); }

// A GPU result against the CPU's: both defined or both not, and then as cuda_compare.h
// compares them.
void check_close(const Tensor& got, const Tensor& want, double tol, const char* what) {
  INFO(what);
  REQUIRE(got.defined() == want.defined());
  if (want.defined()) check_matches_cpu(got, want, tol);
}

// Bitwise equality of two tensors' values (on any devices).
void check_bitwise(const Tensor& got, const Tensor& want, const char* what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  // (memcmp must not see the null data() of an empty vector)
  CHECK((g.empty() || std::memcmp(g.data(), w.data(), g.size() * sizeof(double)) == 0));
}

// The same random values as a CPU view and a GPU view, [rows, cols]; transposed views of a
// [cols, rows] tensor when `transposed` (not contiguous).
struct Pair {
  Tensor cpu, gpu;
};

Pair random_pair(int64_t rows, int64_t cols, DType dtype, Generator& gen, bool transposed = false,
                 double mean = 0, double std = 1) {
  if (!transposed) {
    const Tensor t = normal({rows, cols}, mean, std, gen, dtype);
    return {t, t.to(kGpu)};
  }
  const Tensor t = normal({cols, rows}, mean, std, gen, dtype);
  return {t.transpose(0, 1), t.to(kGpu).transpose(0, 1)};
}

// A random [d] vector; a stride-2 view of a [2d] one when `strided`.
Pair random_vector(int64_t d, DType dtype, Generator& gen, bool strided, double mean = 0) {
  if (!strided) {
    const Tensor t = normal({d}, mean, 1, gen, dtype);
    return {t, t.to(kGpu)};
  }
  const Tensor t = normal({2 * d}, mean, 1, gen, dtype);
  return {t.slice(0, 0, 2 * d, 2), t.to(kGpu).slice(0, 0, 2 * d, 2)};
}

// Values k / 4 for k in [-8, 8], float32: small sums of their products are exact, so any two
// GEMMs agree on them bit for bit (no pre-activation can land on the other side of Relu's kink).
Tensor grid_values(const Shape& shape, std::mt19937& rng) {
  std::uniform_int_distribution<int> k(-8, 8);
  std::vector<float> v(static_cast<size_t>(numel(shape)));
  for (float& e : v) e = static_cast<float>(k(rng)) / 4;
  return from_vector(v, shape);
}


}  // namespace

TEST_CASE("cuda layer_norm: forward and backward primitives match the CPU", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(301);
  for (DType dtype : kFloatTypes) {
    for (int64_t rows : kRows) {
      for (int64_t d : kWidths) {
        for (int affine = 0; affine < 4; ++affine) {
          const bool has_w = affine & 1, has_b = affine & 2;
          // Strided inputs on every other case: transposed x and dy, stride-2 weight and bias.
          const bool strided = (rows + d + affine) % 2 == 1;
          INFO(dtype_name(dtype) << " rows " << rows << " d " << d << " weight " << has_w
                                 << " bias " << has_b << " strided " << strided);
          const Pair x = random_pair(rows, d, dtype, gen, strided, 1.5, 3);
          const Pair w = has_w ? random_vector(d, dtype, gen, strided, 1) : Pair{};
          const Pair b = has_b ? random_vector(d, dtype, gen, strided) : Pair{};
          const double tol = tolerance_for(dtype);

          Tensor y, mean, rstd, gy, gmean, grstd;
          cpu_backend().layer_norm(x.cpu, w.cpu, b.cpu, 1e-5, y, mean, rstd);
          gpu_backend().layer_norm(x.gpu, w.gpu, b.gpu, 1e-5, gy, gmean, grstd);
          check_close(gy, y, tol, "y");
          check_close(gmean, mean, tol, "mean");
          check_close(grstd, rstd, tol, "rstd");

          const Pair dy = random_pair(rows, d, dtype, gen, !strided);
          Tensor dx, dw, db, gdx, gdw, gdb;
          cpu_backend().layer_norm_backward(dy.cpu, x.cpu, w.cpu, mean, rstd, dx, dw, db);
          gpu_backend().layer_norm_backward(dy.gpu, x.gpu, w.gpu, gmean, grstd, gdx, gdw, gdb);
          check_close(gdx, dx, tol, "dx");
          check_close(gdw, dw, tol, "dweight");
          check_close(gdb, db, tol, "dbias");
        }
      }
    }
  }
}

TEST_CASE("cuda layer_norm: the autograd op on the GPU matches the CPU", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(302);
  for (DType dtype : kFloatTypes) {
    for (int affine = 0; affine < 4; ++affine) {
      const bool has_w = affine & 1, has_b = affine & 2;
      INFO(dtype_name(dtype) << " weight " << has_w << " bias " << has_b);
      // x [3, 11, 33] read through a transposed view of the leaf [3, 33, 11].
      const Tensor x0 = normal({3, 33, 11}, -2, 2, gen, dtype);
      const Tensor w0 = has_w ? normal({33}, 1, 1, gen, dtype) : Tensor();
      const Tensor b0 = has_b ? normal({33}, 0, 1, gen, dtype) : Tensor();
      const Tensor g0 = normal({3, 11, 33}, 0, 1, gen, dtype);
      struct Result {
        Tensor y, dx, dw, db;
      };
      auto run = [&](Device device) {
        Tensor x = x0.to(device).detach().requires_grad_();
        Tensor w = has_w ? w0.to(device).detach().requires_grad_() : Tensor();
        Tensor b = has_b ? b0.to(device).detach().requires_grad_() : Tensor();
        const Tensor y = layer_norm(x.transpose(1, 2), w, b, 1e-5);
        y.backward(g0.to(device));
        return Result{y, x.grad(), has_w ? w.grad() : Tensor(), has_b ? b.grad() : Tensor()};
      };
      const Result want = run(Device::cpu()), got = run(kGpu);
      const double tol = tolerance_for(dtype);
      check_close(got.y, want.y, tol, "y");
      check_close(got.dx, want.dx, tol, "dx");
      check_close(got.dw, want.dw, tol, "dweight");
      check_close(got.db, want.db, tol, "dbias");
    }
  }
}

TEST_CASE("cuda bias_activation: every activation, with and without bias, matches the CPU",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(303);
  for (DType dtype : kFloatTypes) {
    for (Activation act : kActivations) {
      for (int64_t rows : kRows) {
        for (int64_t cols : kWidths) {
          for (bool has_bias : {false, true}) {
            INFO(dtype_name(dtype) << " " << nn::activation_name(act) << " rows " << rows
                                   << " cols " << cols << " bias " << has_bias);
            const Pair x = random_pair(rows, cols, dtype, gen);
            // The GPU gets the bias as a stride-2 view on every other case; the CPU twin reads
            // its bias as contiguous, so it gets a contiguous copy of the same values.
            const Pair b = has_bias ? random_vector(cols, dtype, gen, rows != 5) : Pair{};
            const Tensor pre = Tensor::empty({rows, cols}, dtype);
            const Tensor y = Tensor::empty({rows, cols}, dtype);
            const Tensor cpu_bias = has_bias ? contiguous_copy_if_needed(b.cpu) : Tensor();
            cpu_backend().bias_activation(x.cpu, cpu_bias, act, pre, y);
            const double tol = tolerance_for(dtype);

            const Tensor gpre = Tensor::empty({rows, cols}, dtype, kGpu);
            const Tensor gy = Tensor::empty({rows, cols}, dtype, kGpu);
            gpu_backend().bias_activation(x.gpu, b.gpu, act, gpre, gy);
            check_close(gpre, pre, tol, "pre and y: pre");
            check_close(gy, y, tol, "pre and y: y");
            // Identity, Relu and Square are one rounding each: the same bits as the CPU.
            if (act != Activation::Gelu) {
              check_bitwise(gpre, pre, "pre, bitwise");
              check_bitwise(gy, y, "y, bitwise");
            }

            const Tensor only_y = Tensor::empty({rows, cols}, dtype, kGpu);
            gpu_backend().bias_activation(x.gpu, b.gpu, act, Tensor(), only_y);
            check_close(only_y, y, tol, "y only");

            const Tensor only_pre = Tensor::empty({rows, cols}, dtype, kGpu);
            gpu_backend().bias_activation(x.gpu, b.gpu, act, only_pre, Tensor());
            check_close(only_pre, pre, tol, "pre only");
          }
        }
      }
    }
  }
}

TEST_CASE("cuda bias_activation: outputs may alias the input", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(304);
  for (DType dtype : kFloatTypes) {
    for (Activation act : kActivations) {
      for (int64_t rows : {int64_t{1}, int64_t{257}}) {
        for (int64_t cols : {int64_t{7}, int64_t{130}}) {
          INFO(dtype_name(dtype) << " " << nn::activation_name(act) << " rows " << rows
                                 << " cols " << cols);
          const Pair x = random_pair(rows, cols, dtype, gen);
          const Pair b = random_vector(cols, dtype, gen, false);
          const Tensor pre = Tensor::empty({rows, cols}, dtype);
          const Tensor y = Tensor::empty({rows, cols}, dtype);
          cpu_backend().bias_activation(x.cpu, b.cpu, act, pre, y);
          const double tol = tolerance_for(dtype);

          // x = act(x + b) in place.
          const Tensor io = x.gpu.clone();
          gpu_backend().bias_activation(io, b.gpu, act, Tensor(), io);
          check_close(io, y, tol, "y in place");

          // x = x + b in place, y = act(x) beside it.
          const Tensor io_pre = x.gpu.clone();
          const Tensor gy = Tensor::empty({rows, cols}, dtype, kGpu);
          gpu_backend().bias_activation(io_pre, b.gpu, act, io_pre, gy);
          check_close(io_pre, pre, tol, "pre in place");
          check_close(gy, y, tol, "y beside pre in place");

          // y in place without a bias (the linear op's Relu without b).
          const Tensor io_nb = x.gpu.clone();
          const Tensor y_nb = Tensor::empty({rows, cols}, dtype);
          cpu_backend().bias_activation(x.cpu, Tensor(), act, Tensor(), y_nb);
          gpu_backend().bias_activation(io_nb, Tensor(), act, Tensor(), io_nb);
          check_close(io_nb, y_nb, tol, "y in place, no bias");
        }
      }
    }
  }
}

TEST_CASE("cuda activation_backward: dpre and the bias gradient match the CPU", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(305);
  for (DType dtype : kFloatTypes) {
    for (Activation act : kActivations) {
      for (int64_t rows : kRows) {
        for (int64_t cols : kWidths) {
          for (bool has_dbias : {false, true}) {
            INFO(dtype_name(dtype) << " " << nn::activation_name(act) << " rows " << rows
                                   << " cols " << cols << " dbias " << has_dbias);
            // saved as the linear op keeps it: y for Identity and Relu (with exact zeros), pre
            // for Gelu and Square.
            const Pair x = random_pair(rows, cols, dtype, gen);
            const Tensor pre = Tensor::empty({rows, cols}, dtype);
            const Tensor y = Tensor::empty({rows, cols}, dtype);
            cpu_backend().bias_activation(x.cpu, Tensor(), act, pre, y);
            const bool keep_y = act == Activation::Identity || act == Activation::Relu;
            const Tensor saved = keep_y ? y : pre;
            const Tensor gsaved = saved.to(kGpu);
            const Pair dy = random_pair(rows, cols, dtype, gen);

            const Tensor db = has_dbias ? Tensor::empty({cols}, dtype) : Tensor();
            const Tensor gdb = has_dbias ? Tensor::empty({cols}, dtype, kGpu) : Tensor();
            const Tensor dpre = cpu_backend().activation_backward(dy.cpu, saved, act, db);
            const Tensor gdpre = gpu_backend().activation_backward(dy.gpu, gsaved, act, gdb);
            const double tol = tolerance_for(dtype);
            check_close(gdpre, dpre, tol, "dpre");
            check_close(gdb, db, tol, "dbias");
            // Identity and Relu pass dy through or zero it, and the bias gradient is summed in
            // the CPU's order and precision: the same bits.
            if (keep_y) {
              check_bitwise(gdpre, dpre, "dpre, bitwise");
              if (has_dbias) check_bitwise(gdb, db, "dbias, bitwise");
            }
          }
        }
      }
    }
  }
}

TEST_CASE("cuda linear: the autograd op on the GPU matches the CPU", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(306);
  std::mt19937 rng(306);
  // Float32 only: the GPU's matmul is our SGEMM (float64 runs on the CPU).
  const DType dtype = DType::Float32;
  struct Case {
    Shape x;
    int64_t out;
  };
  for (const Case& c : {Case{{3, 7, 33}, 130}, Case{{5, 7}, 1}, Case{{1, 1}, 33}}) {
    for (Activation act : kActivations) {
      for (bool has_bias : {false, true}) {
        const int64_t in = c.x.back();
        INFO(shape_str(c.x) << " -> " << c.out << " " << nn::activation_name(act) << " bias "
                            << has_bias);
        const Tensor x0 = grid_values(c.x, rng);
        const Tensor W0 = grid_values({in, c.out}, rng);
        const Tensor b0 = has_bias ? grid_values({c.out}, rng) : Tensor();
        Shape y_shape = c.x;
        y_shape.back() = c.out;
        const Tensor g0 = normal(y_shape, 0, 1, gen, dtype);
        struct Result {
          Tensor y, dx, dW, db;
        };
        auto run = [&](Device device) {
          Tensor x = x0.to(device).detach().requires_grad_();
          Tensor W = W0.to(device).detach().requires_grad_();
          Tensor b = has_bias ? b0.to(device).detach().requires_grad_() : Tensor();
          const Tensor y = linear(x, W, b, act);
          y.backward(g0.to(device));
          return Result{y, x.grad(), W.grad(), has_bias ? b.grad() : Tensor()};
        };
        const Result want = run(Device::cpu()), got = run(kGpu);
        // The forward GEMM is exact; the backward GEMMs differ from the CPU's in their
        // summation order.
        const double tol = 1e-5;
        check_close(got.y, want.y, tol, "y");
        if (act != Activation::Gelu) check_bitwise(got.y, want.y, "y, bitwise");
        check_close(got.dx, want.dx, tol, "dx");
        check_close(got.dW, want.dW, tol, "dW");
        check_close(got.db, want.db, tol, "db");
      }
    }
  }
}

TEST_CASE("cuda layer ops: empty tensors", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  for (DType dtype : kFloatTypes) {
    INFO(dtype_name(dtype));
    // No rows: empty y, mean and rstd; weight and bias gradients are zeros, as on the CPU.
    for (const Shape& shape : {Shape{0, 7}, Shape{2, 0, 5}, Shape{3, 0}}) {
      INFO(shape_str(shape));
      const int64_t d = shape.back();
      const Tensor x = zeros(shape, dtype), w = ones({d}, dtype), b = zeros({d}, dtype);
      Tensor y, mean, rstd, gy, gmean, grstd;
      cpu_backend().layer_norm(x, w, b, 1e-5, y, mean, rstd);
      gpu_backend().layer_norm(x.to(kGpu), w.to(kGpu), b.to(kGpu), 1e-5, gy, gmean, grstd);
      CHECK(gy.shape() == y.shape());
      CHECK(gmean.shape() == mean.shape());
      CHECK(grstd.shape() == rstd.shape());
      Tensor dx, dw, db, gdx, gdw, gdb;
      cpu_backend().layer_norm_backward(x, x, w, mean, rstd, dx, dw, db);
      gpu_backend().layer_norm_backward(x.to(kGpu), x.to(kGpu), w.to(kGpu), gmean, grstd, gdx, gdw,
                                        gdb);
      CHECK(gdx.shape() == dx.shape());
      check_bitwise(gdw, dw, "dweight");
      check_bitwise(gdb, db, "dbias");
    }
    for (const Shape& shape : {Shape{0, 5}, Shape{4, 0}}) {
      INFO(shape_str(shape));
      const int64_t cols = shape[1];
      const Tensor x = zeros(shape, dtype);
      const Tensor gx = x.to(kGpu);
      const Tensor gy = Tensor::empty(shape, dtype, kGpu);
      gpu_backend().bias_activation(gx, zeros({cols}, dtype, kGpu), Activation::Gelu, gx, gy);
      CHECK(gy.shape() == shape);
      const Tensor db = Tensor::empty({cols}, dtype);
      const Tensor gdb = Tensor::empty({cols}, dtype, kGpu);
      const Tensor dpre = cpu_backend().activation_backward(x, x, Activation::Square, db);
      const Tensor gdpre = gpu_backend().activation_backward(gx, gx, Activation::Square, gdb);
      CHECK(gdpre.shape() == dpre.shape());
      check_bitwise(gdb, db, "dbias");  // zeros when there are no rows
    }
  }
}

TEST_CASE("cuda layer ops: the same bits on every run", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(307);
  for (DType dtype : kFloatTypes) {
    INFO(dtype_name(dtype));
    const Tensor x = normal({257, 33}, 0, 1, gen, dtype, kGpu);  // 5 chunks of rows
    const Tensor w = normal({33}, 1, 1, gen, dtype, kGpu);
    const Tensor dy = normal({257, 33}, 0, 1, gen, dtype, kGpu);
    Tensor y[2], mean[2], rstd[2], dx[2], dw[2], db[2], dpre[2], dbias[2];
    for (int run = 0; run < 2; ++run) {
      gpu_backend().layer_norm(x, w, Tensor(), 1e-5, y[run], mean[run], rstd[run]);
      gpu_backend().layer_norm_backward(dy, x, w, mean[run], rstd[run], dx[run], dw[run],
                                        db[run]);
      dbias[run] = Tensor::empty({33}, dtype, kGpu);
      dpre[run] = gpu_backend().activation_backward(dy, x, Activation::Gelu, dbias[run]);
    }
    check_bitwise(y[1], y[0], "y");
    check_bitwise(dx[1], dx[0], "dx");
    check_bitwise(dw[1], dw[0], "dweight");
    check_bitwise(db[1], db[0], "dbias");
    check_bitwise(dpre[1], dpre[0], "dpre");
    check_bitwise(dbias[1], dbias[0], "activation dbias");
  }
}

TEST_CASE("cuda layer ops: the CPU's errors for bad input", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  const Tensor i64 = zeros({2, 3}, DType::Int64);
  const Tensor gi64 = i64.to(kGpu);
  auto same_error = [](const std::function<void(Backend&, bool)>& f) {
    const std::string want = error_of([&] { f(cpu_backend(), false); });
    const std::string got = error_of([&] { f(gpu_backend(), true); });
    INFO("cpu: " << want << "\ncuda: " << got);
    CHECK(!want.empty());
    CHECK(got == want);
  };
  same_error([&](Backend& be, bool gpu) {
    Tensor y, mean, rstd;
    be.layer_norm(gpu ? gi64 : i64, Tensor(), Tensor(), 1e-5, y, mean, rstd);
  });
  same_error([&](Backend& be, bool gpu) {
    Tensor dx, dw, db;
    const Tensor& t = gpu ? gi64 : i64;
    be.layer_norm_backward(t, t, Tensor(), zeros({2}, DType::Int64, t.device()),
                           zeros({2}, DType::Int64, t.device()), dx, dw, db);
  });
  same_error([&](Backend& be, bool gpu) {
    const Tensor& t = gpu ? gi64 : i64;
    be.bias_activation(t, Tensor(), Activation::Relu, Tensor(), Tensor::empty({2, 3}, DType::Int64,
                                                                              t.device()));
  });
  same_error([&](Backend& be, bool gpu) {
    const Tensor& t = gpu ? gi64 : i64;
    be.activation_backward(t, t, Activation::Relu, Tensor());
  });
  same_error([&](Backend& be, bool gpu) {
    const Tensor x = zeros({2, 3, 4}, DType::Float32, gpu ? kGpu : Device::cpu());
    be.bias_activation(x, Tensor(), Activation::Relu, Tensor(), x);
  });
  same_error([&](Backend& be, bool gpu) {
    const Device device = gpu ? kGpu : Device::cpu();
    const Tensor t = zeros({4, 3}, DType::Float32, device).transpose(0, 1);
    be.bias_activation(t, Tensor(), Activation::Relu, Tensor(), Tensor());
  });
  same_error([&](Backend& be, bool gpu) {
    const Device device = gpu ? kGpu : Device::cpu();
    be.activation_backward(zeros({2, 3}, DType::Float32, device),
                           zeros({3, 2}, DType::Float32, device), Activation::Gelu, Tensor());
  });
  // A CPU tensor handed to the GPU backend is refused before any kernel reads it.
  Tensor y, mean, rstd;
  CHECK_THROWS_WITH(
      gpu_backend().layer_norm(zeros({2, 3}), Tensor(), Tensor(), 1e-5, y, mean, rstd),
      Catch::Matchers::Contains("layer_norm: x is on cpu"));
}
