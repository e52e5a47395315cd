// The error side of TG_CUDA_CHECK and TG_CUBLAS_CHECK: builds the tg::Error message.
#include "kernels/cuda/check.h"

#include <string_view>

#include "core/error.h"

namespace tg::cuda {

namespace {
// "kernels/cuda/stream.cpp" rather than the absolute path the build passes as __FILE__.
std::string_view source_path(const char* file) {
  const std::string_view path(file);
  const size_t at = path.rfind("kernels/");
  return at == std::string_view::npos ? path : path.substr(at);
}
}  // namespace

void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line) {
  cudaGetLastError();  // reported here: the next launch check must not report it again
  throw Error(cat("cuda: ", call, " failed at ", source_path(file), ":", line, ": ",
                  cudaGetErrorString(error), " (", cudaGetErrorName(error), ")"));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw Error(cat("cublas: ", call, " failed at ", source_path(file), ":", line, ": ",
                  cublas_status_name(status)));
}

const char* cublas_status_name(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unknown cuBLAS status";
}

}  // namespace tg::cuda
