// The shared host-side checks of the CUDA primitives (device_checks.h).
#include "kernels/cuda/device_checks.h"

#include "kernels/cuda/check.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"

namespace tg::cuda {

namespace {

// The smallest i with index[i] outside [0, limit) goes to *first_bad (left at its initial
// UINT64_MAX when there is none).
__global__ void find_out_of_range_kernel(const int64_t* index, int64_t n, int64_t limit,
                                         unsigned long long* first_bad) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) {
    if (index[i] < 0 || index[i] >= limit)
      atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

}  // namespace

void check_on(const Tensor& t, Device device, const char* op, const char* role) {
  check(t.device() == device, op, ": ", role, " is on ", t.device().str(), ", not ",
        device.str());
}

int64_t first_out_of_range(const Tensor& index, int64_t limit) {
  const int64_t n = index.numel();
  if (n == 0) return -1;
  const int device = index.device().index;
  // No flag can come back while the stream records a graph: the caller's eager run checked these.
  if (is_capturing(device)) return -1;
  DeviceGuard guard(device);
  cudaStream_t stream = current_stream(device);
  const Tensor flag = Tensor::empty({1}, DType::Int64, index.device());
  TG_CUDA_CHECK(cudaMemsetAsync(flag.raw_data(), 0xff, sizeof(int64_t), stream));
  launch(find_out_of_range_kernel, grid_for(n), kBlockThreads, stream, index.data<int64_t>(), n,
         limit, static_cast<unsigned long long*>(flag.raw_data()));
  unsigned long long first_bad = 0;
  TG_CUDA_CHECK(cudaMemcpyAsync(&first_bad, flag.raw_data(), sizeof first_bad,
                                cudaMemcpyDeviceToHost, stream));
  TG_CUDA_CHECK(cudaStreamSynchronize(stream));
  return first_bad == ~0ull ? -1 : static_cast<int64_t>(first_bad);
}

}  // namespace tg::cuda
