// The same random matrix on the CPU and on cuda:0, as one kind of view on both, for the CUDA
// tests that compare a GPU primitive with the CPU's on plain, transposed and offset operands,
// and the two comparisons they make.
#pragma once

#include <catch2/catch.hpp>

#include <cstring>

#include "core/factories.h"
#include "core/random.h"
#include "core/tensor.h"
#include "op_test_util.h"

namespace tg::testing {

struct Pair {
  Tensor cpu, gpu;
};

// A random [rows, cols] float32 matrix as a view: plain, transposed (a [cols, rows] tensor's
// transpose) or offset (columns 1 .. cols of a [rows, cols + 1] tensor: rows neither tight nor
// 16-byte aligned).
enum class View { Plain, Transposed, Offset };

inline Pair random_pair(int64_t rows, int64_t cols, View view, Generator& gen) {
  const Device gpu = Device::cuda(0);
  switch (view) {
    case View::Plain: {
      const Tensor t = randn({rows, cols}, gen);
      return {t, t.to(gpu)};
    }
    case View::Transposed: {
      const Tensor t = randn({cols, rows}, gen);
      return {t.transpose(0, 1), t.to(gpu).transpose(0, 1)};
    }
    case View::Offset: {
      const Tensor t = randn({rows, cols + 1}, gen);
      return {t.slice(1, 1, cols + 1), t.to(gpu).slice(1, 1, cols + 1)};
    }
  }
  return {};
}

// A float32 result equal to `want` bit for bit.
inline void check_bitwise(const Tensor& got, const Tensor& want, const char* what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  const auto g = got.to_vector<float>(), w = want.to_vector<float>();
  CHECK((g.empty() || std::memcmp(g.data(), w.data(), g.size() * sizeof(float)) == 0));
}

// A result on cuda:0 within float32 rounding (relative error 1e-5) of `want`.
inline void check_close(const Tensor& got, const Tensor& want, const char* what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  CHECK(got.device() == Device::cuda(0));
  CHECK(relative_error(got.to_vector<double>(), want.to_vector<double>()) < 1e-5);
}

}  // namespace tg::testing
