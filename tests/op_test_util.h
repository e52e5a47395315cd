// Helpers shared by the op tests: a host reader that walks a view's strides itself (so it can
// serve as a reference independent of the backend's copy kernel), NumPy broadcasting on host
// vectors, element-by-element comparison, the relative error ||out - ref|| / ||ref||, and a
// gradcheck assertion that prints the worst element when it fails.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "tinygrok.h"

namespace tg::testing {

// The elements of t in row-major order, read straight from storage through shape, strides and
// offset. CPU only.
inline std::vector<double> strided_values(const Tensor& t) {
  std::vector<double> out;
  if (t.numel() == 0) return out;
  out.reserve(static_cast<size_t>(t.numel()));
  const Shape& shape = t.shape();
  const Strides& strides = t.strides();
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t n = 0; n < t.numel(); ++n) {
    int64_t offset = 0;
    for (size_t d = 0; d < shape.size(); ++d) offset += index[d] * strides[d];
    switch (t.dtype()) {
      case DType::Float32: out.push_back(t.data<float>()[offset]); break;
      case DType::Float64: out.push_back(t.data<double>()[offset]); break;
      case DType::Int64: out.push_back(static_cast<double>(t.data<int64_t>()[offset])); break;
    }
    for (size_t d = shape.size(); d-- > 0;) {  // odometer increment, last axis fastest
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

// Row-major values of shape `from` broadcast (NumPy rules) to shape `to`.
inline std::vector<double> broadcast_values(const std::vector<double>& values, const Shape& from,
                                            const Shape& to) {
  const Strides src_strides = contiguous_strides(from);
  const size_t lead = to.size() - from.size();
  std::vector<double> out;
  out.reserve(static_cast<size_t>(numel(to)));
  std::vector<int64_t> index(to.size(), 0);
  for (int64_t n = 0; n < numel(to); ++n) {
    int64_t offset = 0;
    for (size_t d = 0; d < from.size(); ++d)
      if (from[d] != 1) offset += index[lead + d] * src_strides[d];
    out.push_back(values[static_cast<size_t>(offset)]);
    for (size_t d = to.size(); d-- > 0;) {
      if (++index[d] < to[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

// ||out - ref|| / ||ref|| (or ||out - ref|| when ref is all zeros).
inline double relative_error(const std::vector<double>& out, const std::vector<double>& ref) {
  REQUIRE(out.size() == ref.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff += (out[i] - ref[i]) * (out[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

// Checks t's shape, then each element against `expected` within tol (absolute and relative).
// Infinite expected values must match exactly.
inline void check_tensor(const Tensor& t, const Shape& shape, const std::vector<double>& expected,
                         double tol = 1e-6) {
  INFO("shape " << shape_str(t.shape()) << ", expected " << shape_str(shape));
  REQUIRE(t.shape() == shape);
  const std::vector<double> got = t.to_vector<double>();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    if (std::isinf(expected[i]))
      CHECK(got[i] == expected[i]);
    else
      CHECK(got[i] == Approx(expected[i]).epsilon(tol).margin(tol));
  }
}

// Runs tg::gradcheck with the inputs given as a braced list.
inline GradcheckResult run_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                     const std::vector<Tensor>& inputs,
                                     const GradcheckOptions& options = {}) {
  return gradcheck(f, inputs, options);
}

}  // namespace tg::testing

// CHECK_GRADCHECK(f, {x, y}[, options]): asserts that the check passes and reports the worst
// element otherwise. Variadic so that the braced input list may contain commas.
#define CHECK_GRADCHECK(...)                                                \
  do {                                                                      \
    const ::tg::GradcheckResult gradcheck_result_ =                         \
        ::tg::testing::run_gradcheck(__VA_ARGS__);                          \
    INFO(gradcheck_result_.report);                                         \
    CHECK(gradcheck_result_.passed);                                        \
  } while (0)
