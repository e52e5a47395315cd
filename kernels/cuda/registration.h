// How the CUDA backend joins the registry: kernels/backend.cpp calls register_backends() once,
// the first time a CUDA device is asked for (a call, not a static initialiser, which the linker
// may drop from a static library when nothing refers to its object file).
#pragma once

#include <string>

namespace tg::cuda {

// Registers one CudaBackend per visible GPU with tg::register_backend(); returns why there is
// none ("" when at least one was registered), e.g.
//   no CUDA device is available (cudaGetDeviceCount: CUDA driver version is insufficient ...)
std::string register_backends();

}  // namespace tg::cuda
