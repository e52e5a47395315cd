// Dtype dispatch, shared by every backend's host code: switch on a tensor's dtype once, then run
// (or launch) typed code.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"

namespace tg {

// Calls fn.template operator()<T>() with T the C++ type of `dtype`.
template <typename Fn>
void dispatch(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Float32: fn.template operator()<float>(); return;
    case DType::Float64: fn.template operator()<double>(); return;
    case DType::Int64: fn.template operator()<int64_t>(); return;
  }
}

// As dispatch, for kernels defined only on float dtypes; `op` names the primitive in the error.
template <typename Fn>
void dispatch_floating(DType dtype, const char* op, Fn&& fn) {
  check(is_floating(dtype), op, ": not defined for ", dtype_name(dtype));
  if (dtype == DType::Float32) fn.template operator()<float>();
  else fn.template operator()<double>();
}

}  // namespace tg
