// Factories: tensors made from sizes, values, host data, ranges or the seeded generator.
#pragma once

#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace tg {

Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32,
            Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor scalar(double value, DType dtype = DType::Float32, Device device = Device::cpu());

// [start, end) by step, like numpy.arange; int64 unless a dtype is given.
Tensor arange(double start, double end, double step = 1, DType dtype = DType::Int64,
              Device device = Device::cpu());
inline Tensor arange(int64_t end) { return arange(0, static_cast<double>(end)); }

// Copies host values into a new tensor of `shape` (default: 1-D) with the dtype of T.
// (A 0-d tensor comes from scalar().)
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape = {},
                   Device device = Device::cpu());

// Random tensors from `gen` (default: the process-wide generator, see manual_seed).
Tensor rand(const Shape& shape, Generator& gen = default_generator(),
            DType dtype = DType::Float32, Device device = Device::cpu());       // U[0, 1)
Tensor uniform(const Shape& shape, double low, double high, Generator& gen = default_generator(),
               DType dtype = DType::Float32, Device device = Device::cpu());
Tensor randn(const Shape& shape, Generator& gen = default_generator(),
             DType dtype = DType::Float32, Device device = Device::cpu());      // N(0, 1)
Tensor normal(const Shape& shape, double mean, double std, Generator& gen = default_generator(),
              DType dtype = DType::Float32, Device device = Device::cpu());

}  // namespace tg
