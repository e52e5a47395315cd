// CPU memory primitives: allocation, strided copy with dtype conversion (and the in-place add
// that shares its loop), fill, random fill and host transfers (which on the CPU are plain memcpy).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/convert.h"
#include "kernels/cpu/block_cache.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "kernels/random_element.h"

namespace tg {

using namespace cpu;

std::shared_ptr<Storage> CpuBackend::allocate(size_t nbytes) {
  size_t capacity = 0;
  void* data = host_block_cache().allocate(nbytes, capacity);
  check(data != nullptr, "allocate: out of host memory for ", nbytes, " bytes");
  return std::make_shared<Storage>(data, nbytes, Device::cpu(), [capacity](void* p) {
    host_block_cache().release(p, capacity);
  });
}

namespace {

// dst[i] = convert(src[i]), or dst[i] += convert(src[i]) when `add`.
template <bool add>
void copy_or_add(const Tensor& src, const Tensor& dst, const char* who) {
  check(src.shape() == dst.shape(), who, ": source ", shape_str(src.shape()), " and destination ",
        shape_str(dst.shape()), " differ");
  dispatch(src.dtype(), [&]<typename S>() {
    dispatch(dst.dtype(), [&]<typename D>() {
      const S* in = src.data<S>();
      D* out = dst.data<D>();
      for_each_row<2>(src.shape(), {src.strides(), dst.strides()},
                      [&](const auto& off, int64_t n, const auto& step) {
                        const S* s = in + off[0];
                        D* d = out + off[1];
                        for (int64_t i = 0; i < n; ++i) {
                          const D v = convert_value<D>(s[i * step[0]]);
                          if constexpr (add)
                            d[i * step[1]] += v;
                          else
                            d[i * step[1]] = v;
                        }
                      });
    });
  });
}

}  // namespace

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  copy_or_add<false>(src, dst, "copy");
}

void CpuBackend::add_into(const Tensor& src, const Tensor& dst) {
  copy_or_add<true>(src, dst, "add_into");
}

void CpuBackend::fill(const Tensor& dst, double value) {
  dispatch(dst.dtype(), [&]<typename T>() {
    T* out = dst.data<T>();
    const T v = static_cast<T>(value);
    for_each_row<1>(dst.shape(), {dst.strides()}, [&](const auto& off, int64_t n, const auto& step) {
      for (int64_t i = 0; i < n; ++i) out[off[0] + i * step[0]] = v;
    });
  });
}

void CpuBackend::fill_random(const Tensor& dst, RandomKind kind, uint64_t seed, uint64_t counter,
                             double a, double b) {
  check(dst.is_contiguous(), "fill_random: destination must be contiguous");
  dispatch_floating(dst.dtype(), "fill_random", [&]<typename T>() {
    T* out = dst.data<T>();
    if (kind == RandomKind::DropoutMask) {
      // Drawn at every training step: one Philox block serves its four elements here, where
      // random_element (the reference, and what other kinds use) computes it once per element.
      const T kept = static_cast<T>(1.0 / (1.0 - a));
      parallel_for(dst.numel(), 4096, [&](int64_t begin, int64_t end) {
        for (int64_t block_start = begin / 4 * 4; block_start < end; block_start += 4) {
          uint32_t block[4];
          philox4x32_10(seed, counter + static_cast<uint64_t>(block_start / 4), block);
          for (int64_t i = std::max(begin, block_start); i < std::min(end, block_start + 4); ++i)
            out[i] = uniform_float(block[i % 4]) >= a ? kept : T(0);
        }
      });
      return;
    }
    // Element i depends only on (seed, counter, i): any split across threads gives the same values.
    parallel_for(dst.numel(), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        out[i] = random_element<T>(kind, seed, counter, i, a, b);
    });
  });
}

void CpuBackend::copy_to_host(const Tensor& src, void* host) {
  check(src.is_contiguous(), "copy_to_host: source must be contiguous");
  std::memcpy(host, src.raw_data(), src.numel() * dtype_size(src.dtype()));
}

void CpuBackend::copy_from_host(const void* host, const Tensor& dst) {
  check(dst.is_contiguous(), "copy_from_host: destination must be contiguous");
  std::memcpy(dst.raw_data(), host, dst.numel() * dtype_size(dst.dtype()));
}

}  // namespace tg
