// DType: the element types a tensor can hold, and their sizes and names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tg {

// float32 is the working type everywhere; float64 exists for gradient checks and references;
// int64 holds indices (embedding ids, targets, argmax results).
enum class DType : uint8_t { Float32, Float64, Int64 };

inline size_t dtype_size(DType d) {
  switch (d) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
  }
  return "?";
}

inline bool is_floating(DType d) { return d == DType::Float32 || d == DType::Float64; }

// The C++ type of each dtype, for kernels that switch on dtype once and then run typed code.
template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }

}  // namespace tg
