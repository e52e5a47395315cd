// CudaGraph: capture, instantiation and replay of a CUDA graph, and CudaBackend::capture.
#include "kernels/cuda/cuda_graph.h"

#include <exception>
#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/stream.h"

namespace tg::cuda {

namespace {

// Why a capture that the runtime invalidated failed, in the terms of the Backend::capture contract.
constexpr const char* kInvalidatedHint =
    "; captured work must not wait for the device nor read device data on the host";

// Ends a capture that is being abandoned and drops what it recorded; returns how it ended
// (cudaErrorStreamCaptureInvalidated when the runtime had already refused part of the work).
cudaError_t abandon_capture(cudaStream_t stream) noexcept {
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (graph != nullptr) cudaGraphDestroy(graph);
  cudaGetLastError();  // reported by the caller, not by the next launch check
  return ended;
}

}  // namespace

std::unique_ptr<CudaGraph> CudaGraph::capture(int device, const std::function<void()>& work) {
  const std::string where = Device::cuda(device).str();
  DeviceGuard guard(device);
  const cudaStream_t stream = current_stream(device);
  DeviceCachingAllocator& allocator = device_allocator(device);
  Pool pool = allocator.begin_private_pool();
  // Every way out below but success: the allocator serves ordinary blocks again, and the pool's
  // blocks (no graph will use them) go back to the cache.
  const auto give_back_pool = [&] {
    allocator.end_private_pool();
    allocator.release_private_pool(pool);
  };

  if (const cudaError_t begun = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
      begun != cudaSuccess) {
    cudaGetLastError();
    give_back_pool();
    throw Error(cat(where, ": capture failed: cudaStreamBeginCapture: ",
                    cudaGetErrorString(begun), " (", cudaGetErrorName(begun), ")"));
  }
  try {
    work();
  } catch (const std::exception& e) {
    const cudaError_t ended = abandon_capture(stream);
    give_back_pool();
    throw Error(cat(where, ": capture failed: ", e.what(),
                    ended == cudaErrorStreamCaptureInvalidated ? kInvalidatedHint : ""));
  } catch (...) {
    abandon_capture(stream);
    give_back_pool();
    throw;
  }

  cudaGraph_t graph = nullptr;
  if (const cudaError_t ended = cudaStreamEndCapture(stream, &graph); ended != cudaSuccess) {
    // The work returned, but the runtime refused part of it (an error it did not report).
    cudaGetLastError();
    if (graph != nullptr) cudaGraphDestroy(graph);
    give_back_pool();
    throw Error(cat(where, ": capture failed: cudaStreamEndCapture: ", cudaGetErrorString(ended),
                    " (", cudaGetErrorName(ended), ")",
                    ended == cudaErrorStreamCaptureInvalidated ? kInvalidatedHint : ""));
  }
  allocator.end_private_pool();  // the capture is over; the pool stays the graph's

  size_t nodes = 0;
  if (cudaGraphGetNodes(graph, nullptr, &nodes) != cudaSuccess) {
    cudaGetLastError();  // only a count for reports: not worth failing the capture
    nodes = 0;
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);  // the executable graph does not need it
  if (instantiated != cudaSuccess) {
    cudaGetLastError();
    allocator.release_private_pool(pool);
    throw Error(cat(where, ": capture failed: cudaGraphInstantiate: ",
                    cudaGetErrorString(instantiated), " (", cudaGetErrorName(instantiated), ")"));
  }
  return std::unique_ptr<CudaGraph>(new CudaGraph(device, exec, std::move(pool), nodes));
}

CudaGraph::~CudaGraph() {
  // A launch still running finishes first (the runtime frees the graph after it); the pool's
  // blocks then go to work queued later on the same stream. Errors are dropped: a destructor
  // cannot throw.
  cudaGraphExecDestroy(exec_);
  cudaGetLastError();
  device_allocator(device_).release_private_pool(pool_);
}

void CudaGraph::replay() {
  DeviceGuard guard(device_);
  TG_CUDA_CHECK(cudaGraphLaunch(exec_, current_stream(device_)));
}

std::unique_ptr<CapturedWork> CudaBackend::capture(const std::function<void()>& work) {
  // Made and zeroed now if it is not yet: inside the capture its fill would only be recorded,
  // and a capture that is abandoned would leave it unzeroed for later launches.
  last_block_counter();
  return CudaGraph::capture(index_, work);
}

bool CudaBackend::capturing() const { return is_capturing(index_); }

}  // namespace tg::cuda
