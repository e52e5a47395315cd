// CudaGraph: the CUDA backend's recording of work for replay (Backend::capture in
// kernels/backend.h). The host code runs once while the device's stream captures what it queues
// into a CUDA graph, instantiated once; each replay() launches that graph on the stream: the same
// kernels and copies over the same addresses, with no allocation and no host wait, at one launch's
// cost instead of one per kernel.
//
// The memory the work allocates comes from a pool private to the graph
// (device_caching_allocator.h), so the addresses baked into it stay the graph's as long as it
// lives.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <memory>

#include "kernels/backend.h"
#include "kernels/cuda/device_caching_allocator.h"

namespace tg::cuda {

class CudaGraph final : public CapturedWork {
 public:
  // Runs `work` while the device's stream captures (thread-local mode: this thread may then not
  // wait for the device, nor free device memory), and instantiates what it queued. When work
  // throws or the capture breaks, everything is undone (the capture ended, its graph and pool
  // released) and tg::Error "cuda:N: capture failed: <why>" is thrown; the device stays usable.
  static std::unique_ptr<CudaGraph> capture(int device, const std::function<void()>& work);

  ~CudaGraph() override;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Launches the graph on the device's stream; returns without waiting for it.
  void replay() override;
  // The graph's nodes.
  size_t operations() const override { return nodes_; }

 private:
  using Pool = std::shared_ptr<DeviceCachingAllocator::PrivatePool>;
  CudaGraph(int device, cudaGraphExec_t exec, Pool pool, size_t nodes)
      : device_(device), exec_(exec), pool_(std::move(pool)), nodes_(nodes) {}

  const int device_;
  cudaGraphExec_t exec_;
  Pool pool_;  // the memory the graph's addresses point into
  size_t nodes_;
};

}  // namespace tg::cuda
