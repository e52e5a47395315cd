// Checks for CUDA runtime and cuBLAS calls: a failure becomes tg::Error naming the call, where it
// was made and CUDA's own description of the error.
//
//   TG_CUDA_CHECK(cudaMalloc(&p, n));         // any cudaError_t call
//   kernel<<<grid, block, 0, stream>>>(...);
//   TG_CUDA_CHECK_LAUNCH();                   // a bad launch configuration shows here
//   TG_CUBLAS_CHECK(cublasSgemm(...));        // any cublasStatus_t call
//
// Errors inside a running kernel surface at the next synchronising call, which is checked too.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>

namespace tg::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line);

// "CUBLAS_STATUS_NOT_INITIALIZED" and so on, without linking cuBLAS (the library does not).
const char* cublas_status_name(cublasStatus_t status);

}  // namespace tg::cuda

#define TG_CUDA_CHECK(call)                                                              \
  do {                                                                                   \
    const cudaError_t tg_cuda_error_ = (call);                                           \
    if (tg_cuda_error_ != cudaSuccess)                                                   \
      ::tg::cuda::throw_cuda_error(tg_cuda_error_, #call, __FILE__, __LINE__);           \
  } while (false)

// cudaGetLastError also clears a launch error, so that it is not reported again by a later call.
#define TG_CUDA_CHECK_LAUNCH() TG_CUDA_CHECK(cudaGetLastError())

#define TG_CUBLAS_CHECK(call)                                                            \
  do {                                                                                   \
    const cublasStatus_t tg_cublas_status_ = (call);                                     \
    if (tg_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                      \
      ::tg::cuda::throw_cublas_error(tg_cublas_status_, #call, __FILE__, __LINE__);      \
  } while (false)
