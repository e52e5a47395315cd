// CUDA reductions on both of their paths (kernels/cuda/reduce.cu): a block per output for few,
// long outputs (split into parts when very few), and a warp per output for many. Sizes sit on
// each side of the rule's edges; inputs are strided, permuted and broadcast views, reduced over
// one or several axes. Sum, mean, max, argmax and reduce_sum_pair of float32, float64 and int64
// are compared with the CPU backend's: within a relative error for float sums, exactly for
// int64 sums (which wrap), max and argmax (ties and NaNs included). Every case skips visibly
// without a GPU; the emulated twin (emulated_test_cuda_reduce) runs them on the CPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda_compare.h"
#include "kernels/backend.h"
#include "op_test_util.h"
#include "test_cuda_support.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::check_matches_cpu;
using tg::testing::random_values;

namespace {

const Device kGpu = Device::cuda(0);

// reduce.cu's rule (plan_for), repeated here to place the cases: a block per output when
// outer < 4096 and length >= 256; split into parts = min(length / 2048, ceil(1024 / outer))
// when that is 2 or more.

using View = std::function<Tensor(const Tensor&)>;

struct Case {
  std::string name;
  Shape base;  // the tensor the view is taken of
  View view;
  std::vector<int> axes;  // reduced, sorted
  int argmax_axis;        // of the view
};

const View kSame = [](const Tensor& t) { return t; };

// The path each case takes is in its name.
std::vector<Case> cases() {
  return {
      {"warp: length 1, one output", {1}, kSame, {0}, 0},
      {"warp: length 1, many outputs [3000, 1]", {3000, 1}, kSame, {1}, 1},
      {"warp: length 255, just under a block", {2, 255}, kSame, {1}, 1},
      {"block: length 256, exactly a block", {3, 256}, kSame, {1}, 1},
      {"block: length 257, just over a block", {2, 257}, kSame, {1}, 1},
      {"block: length 1000 of 5 rows", {5, 1000}, kSame, {1}, 1},
      {"block: full sum of 4095", {4095}, kSame, {0}, 0},
      {"split in 2: full sum of 4096", {4096}, kSame, {0}, 0},
      {"split in 4: full sum of 8192", {8192}, kSame, {0}, 0},
      {"split in 9: rows [3, 20011]", {3, 20011}, kSame, {1}, 1},
      {"split in 19: full sum of [37, 1103] over both axes", {37, 1103}, kSame, {0, 1}, 1},
      {"split in 6: column sums of [13001, 3]", {13001, 3}, kSame, {0}, 0},
      {"split in 2 (the GPU filled): rows [700, 6144]", {700, 6144}, kSame, {1}, 1},
      {"block: column sums of a transposed [7, 300]", {7, 300},
       [](const Tensor& t) { return t.t(); }, {0}, 0},
      {"split in 6: permuted [200, 3, 70] over axes 0 and 2", {3, 70, 200},
       [](const Tensor& t) { return t.permute({2, 0, 1}); }, {0, 2}, 2},
      {"block: broadcast [1, 600] -> [4, 600] over both axes", {1, 600},
       [](const Tensor& t) { return t.expand({4, 600}); }, {0, 1}, 1},
      {"block: every 3rd of 9000", {9000},
       [](const Tensor& t) { return t.slice(0, 0, 9000, 3); }, {0}, 0},
      {"block: 4095 rows of 256, the last count with a block each", {4095, 256}, kSame, {1}, 1},
      {"warp: 4096 rows of 256, the first count with a warp each", {4096, 256}, kSame, {1}, 1},
      {"warp: column sums of [5, 6000]", {5, 6000}, kSame, {0}, 0},
  };
}

// int64 values spread over most of the range, so that sums wrap around.
Tensor wrapping_int64(const Shape& shape, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> dist(-(int64_t{1} << 62), int64_t{1} << 62);
  std::vector<int64_t> v(static_cast<size_t>(numel(shape)));
  for (int64_t& e : v) e = dist(rng);
  return from_vector(v, {numel(shape)}).reshape(shape);
}

// x with NaN at a few places drawn from a fixed seed (float x only).
Tensor with_nans(const Tensor& x, uint32_t seed) {
  std::vector<double> v = x.to_vector<double>();
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> where(0, v.size() - 1);
  for (int k = 0; k < 3; ++k) v[where(rng)] = NAN;
  return from_vector(v, {x.numel()}).reshape(x.shape()).to(x.dtype());
}

// The same bits (a GPU result read twice, or two GPU results).
void check_same_bits(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  REQUIRE(a.dtype() == b.dtype());
  if (a.dtype() == DType::Int64) {
    CHECK(a.to_vector<int64_t>() == b.to_vector<int64_t>());
    return;
  }
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  CHECK((va.empty() || std::memcmp(va.data(), vb.data(), va.size() * sizeof(double)) == 0));
}

double sum_tolerance(DType dtype) { return dtype == DType::Float32 ? 1e-6 : 1e-12; }

}  // namespace

TEST_CASE("cuda reduce paths: sum and mean equal the CPU's on both paths", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  uint32_t seed = 1;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const Case& c : cases()) {
      INFO(dtype_name(dtype) << " " << c.name);
      const Tensor base = dtype == DType::Int64
                              ? wrapping_int64(c.base, seed++)
                              : random_values(c.base, dtype, -4, 4, seed++, false);
      const Tensor x = c.view(base), xg = c.view(base.to(kGpu));
      const Tensor sum = gpu.reduce(ReduceOp::Sum, xg, c.axes);
      check_matches_cpu(sum, cpu.reduce(ReduceOp::Sum, x, c.axes),
                        dtype == DType::Int64 ? 0 : sum_tolerance(dtype));
      check_same_bits(gpu.reduce(ReduceOp::Sum, xg, c.axes), sum);  // deterministic
      if (dtype == DType::Int64) continue;
      const Tensor mean = gpu.reduce(ReduceOp::Mean, xg, c.axes);
      check_matches_cpu(mean, cpu.reduce(ReduceOp::Mean, x, c.axes), sum_tolerance(dtype));
      // The mean is the sum, rounded to T, scaled by 1 / the whole length (not a part's).
      const double length = static_cast<double>(x.numel() / sum.numel());
      check_same_bits(mean, gpu.unary(UnaryOp::Scale, sum, 1 / length));
    }
  }
}

TEST_CASE("cuda reduce paths: max and argmax equal the CPU's (first maximum, first NaN)",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  uint32_t seed = 100;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const Case& c : cases()) {
      // Whole numbers in [-3, 3): the maximum is tied at many places.
      const Tensor plain = random_values(c.base, dtype, -3, 3, seed++, true);
      std::vector<Tensor> bases = {plain};
      if (dtype != DType::Int64) bases.push_back(with_nans(plain, seed++));
      for (const Tensor& base : bases) {
        INFO(dtype_name(dtype) << " " << c.name << (&base == &bases[0] ? "" : " with NaNs"));
        const Tensor x_gpu = c.view(base.to(kGpu)), x_cpu = c.view(base);
        check_matches_cpu(gpu.reduce(ReduceOp::Max, x_gpu, c.axes),
                          cpu.reduce(ReduceOp::Max, x_cpu, c.axes), 0);
        check_matches_cpu(gpu.argmax(x_gpu, c.argmax_axis), cpu.argmax(x_cpu, c.argmax_axis), 0);
      }
    }
  }
  // Rows with two equal maxima (or two NaNs) where the later index is reduced by an earlier
  // thread, warp or part, or by a later one: 255 (thread 255, warp 7) and 256 (thread 0); 2047
  // and 2048 (the first two parts of 8192); 256 and 4351 (parts 0 and 2); the last two. The
  // first wins.
  for (int64_t length : {int64_t{1000}, int64_t{8192}, int64_t{20011}}) {
    for (const auto& [first, second] : {std::pair<int64_t, int64_t>{255, 256},
                                        {2047, 2048},
                                        {256, 4351},
                                        {length - 2, length - 1}}) {
      if (second >= length) continue;
      for (double planted : {9.0, static_cast<double>(NAN)}) {
        for (DType dtype : {DType::Float32, DType::Float64}) {
          INFO("length " << length << ", " << dtype_name(dtype) << ": " << planted << " at "
                         << first << " and " << second);
          std::vector<double> v(static_cast<size_t>(length), 1.0);
          v[first] = v[second] = planted;
          const Tensor x = from_vector(v, {1, length}).expand({2, length}).to(dtype);
          const std::vector<int64_t> want = {first, first};
          CHECK(gpu.argmax(x.to(kGpu), 1).to_vector<int64_t>() == want);
          CHECK(cpu.argmax(x, 1).to_vector<int64_t>() == want);
        }
      }
    }
  }
}

TEST_CASE("cuda reduce paths: reduce_sum_pair gives reduce's bits on mixed paths", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  uint32_t seed = 300;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const Case& c : cases()) {
      const Tensor base = dtype == DType::Int64
                              ? wrapping_int64(c.base, seed++)
                              : random_values(c.base, dtype, -4, 4, seed++, false);
      const Tensor x = c.view(base), xg = c.view(base.to(kGpu));
      // The case's axes against each single axis: a block path beside a warp path (the rows of
      // [3000, 1] summed over 0 and over 1), split beside not, and the same set twice.
      for (int d = 0; d < x.dim(); ++d) {
        INFO(dtype_name(dtype) << " " << c.name << ", and over axis " << d);
        const auto [a, b] = gpu.reduce_sum_pair(xg, c.axes, {d});
        check_same_bits(a, gpu.reduce(ReduceOp::Sum, xg, c.axes));
        check_same_bits(b, gpu.reduce(ReduceOp::Sum, xg, {d}));
        const double tolerance = dtype == DType::Int64 ? 0 : sum_tolerance(dtype);
        check_matches_cpu(a, cpu.reduce(ReduceOp::Sum, x, c.axes), tolerance);
        check_matches_cpu(b, cpu.reduce(ReduceOp::Sum, x, {d}), tolerance);
      }
    }
  }
}
