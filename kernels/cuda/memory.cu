// CUDA memory primitives: allocation from the caching allocator, strided copy with dtype
// conversion (and the in-place add that shares its kernel), fill, and transfers to and from host
// memory (the CUDA twin of kernels/cpu/memory.cpp; fill_random is in random.cu).
#include "core/convert.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_caching_allocator.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/dispatch.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/strided_indexer.h"

namespace tg::cuda {

namespace {

// dst = convert(src), or dst += convert(src) when `add`.
template <typename S, typename D, bool add>
__global__ void copy_kernel(const S* src, D* dst, int64_t n, StridedIndexer<2> ix) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) {
    int64_t off[2];
    ix.offsets(i, off);
    const D v = convert_value<D>(src[off[0]]);
    if constexpr (add)
      dst[off[1]] += v;
    else
      dst[off[1]] = v;
  }
}

template <bool add>
void copy_or_add(const Tensor& src, const Tensor& dst, const char* who, int index) {
  check(src.shape() == dst.shape(), who, ": source ", shape_str(src.shape()), " and destination ",
        shape_str(dst.shape()), " differ");
  check_on(src, Device::cuda(index), who, "source");
  check_on(dst, Device::cuda(index), who, "destination");
  const int64_t n = src.numel();
  if (n == 0) return;
  const auto ix = make_indexer<2>(src.shape(), {src.strides(), dst.strides()}, who);
  DeviceGuard guard(index);
  cudaStream_t stream = current_stream(index);
  dispatch(src.dtype(), [&]<typename S>() {
    dispatch(dst.dtype(), [&]<typename D>() {
      launch(copy_kernel<S, D, add>, grid_for(n), kBlockThreads, stream, src.data<S>(),
             dst.data<D>(), n, ix);
    });
  });
}

template <typename T>
__global__ void fill_kernel(T* dst, int64_t n, StridedIndexer<1> ix, T value) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) {
    int64_t off[1];
    ix.offsets(i, off);
    dst[off[0]] = value;
  }
}

__global__ void iota_kernel(int64_t* dst, int64_t n) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) dst[i] = i;
}

}  // namespace

std::shared_ptr<Storage> CudaBackend::allocate(size_t nbytes) {
  DeviceCachingAllocator& allocator = device_allocator(index_);
  size_t capacity = 0;
  void* data = allocator.allocate(nbytes, capacity);
  return std::make_shared<Storage>(data, nbytes, device(), [&allocator, capacity](void* p) {
    allocator.release(p, capacity);
  });
}

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  copy_or_add<false>(src, dst, "copy", index_);
}

void CudaBackend::add_into(const Tensor& src, const Tensor& dst) {
  copy_or_add<true>(src, dst, "add_into", index_);
}

void CudaBackend::fill(const Tensor& dst, double value) {
  check_on(dst, device(), "fill", "destination");
  const int64_t n = dst.numel();
  if (n == 0) return;
  const auto ix = make_indexer<1>(dst.shape(), {dst.strides()}, "fill");
  DeviceGuard guard(index_);
  cudaStream_t stream = current_stream(index_);
  dispatch(dst.dtype(), [&]<typename T>() {
    launch(fill_kernel<T>, grid_for(n), kBlockThreads, stream, dst.data<T>(), n, ix,
           static_cast<T>(value));
  });
}

void CudaBackend::fill_iota(const Tensor& dst) {
  check_on(dst, device(), "fill_iota", "destination");
  check(dst.dtype() == DType::Int64 && dst.is_contiguous(),
        "fill_iota: destination must be contiguous int64, got ", dtype_name(dst.dtype()), " ",
        shape_str(dst.shape()));
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(index_);
  launch(iota_kernel, grid_for(n), kBlockThreads, current_stream(index_), dst.data<int64_t>(), n);
}

// Host transfers wait for the stream: the host reads or reuses its buffer right after the call.
void CudaBackend::copy_to_host(const Tensor& src, void* host) {
  check(src.is_contiguous(), "copy_to_host: source must be contiguous");
  check_on(src, device(), "copy_to_host", "source");
  const size_t nbytes = src.numel() * dtype_size(src.dtype());
  if (nbytes == 0) return;
  DeviceGuard guard(index_);
  TG_CUDA_CHECK(cudaMemcpyAsync(host, src.raw_data(), nbytes, cudaMemcpyDeviceToHost,
                                current_stream(index_)));
  synchronize(index_);
}

void CudaBackend::copy_from_host(const void* host, const Tensor& dst) {
  check(dst.is_contiguous(), "copy_from_host: destination must be contiguous");
  check_on(dst, device(), "copy_from_host", "destination");
  const size_t nbytes = dst.numel() * dtype_size(dst.dtype());
  if (nbytes == 0) return;
  DeviceGuard guard(index_);
  TG_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), host, nbytes, cudaMemcpyHostToDevice,
                                current_stream(index_)));
  synchronize(index_);
}

unsigned long long* CudaBackend::last_block_counter() {
  // Made and zeroed on first use, or before a capture begins (CudaBackend::capture), so that
  // its fill is never only recorded in a graph.
  if (!last_block_counter_.defined()) {
    last_block_counter_ = Tensor::empty({1}, DType::Int64, device());
    fill(last_block_counter_, 0);
  }
  static_assert(sizeof(unsigned long long) == sizeof(int64_t));
  return reinterpret_cast<unsigned long long*>(last_block_counter_.data<int64_t>());
}

}  // namespace tg::cuda
