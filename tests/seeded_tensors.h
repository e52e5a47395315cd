// Random tensors made on the host from a fixed seed, for the CUDA op tests that compare a GPU
// primitive with the CPU's: normal values, and int64 indices (with repeats).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "tinygrok.h"

namespace tg::testing {

// Normal values of `shape`, scaled and shifted, from a fixed seed.
inline Tensor random_normal(const Shape& shape, DType dtype, uint32_t seed, double scale = 1,
                            double shift = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(shift, scale);
  std::vector<double> v(static_cast<size_t>(numel(shape)));
  for (double& e : v) e = dist(rng);
  return from_vector(v, {numel(shape)}).reshape(shape).to(dtype);
}

// int64 values uniform in [lo, hi) (with repeats), of `shape`, from a fixed seed.
inline Tensor random_indices(const Shape& shape, int64_t lo, int64_t hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> dist(lo, hi - 1);
  std::vector<int64_t> v(static_cast<size_t>(numel(shape)));
  for (int64_t& e : v) e = dist(rng);
  return from_vector(v, {numel(shape)}).reshape(shape);
}

}  // namespace tg::testing
