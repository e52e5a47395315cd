// The stream of each CUDA device: every kernel and copy of the CUDA backend runs on it, in order.
//
// One stream per device keeps the ordering simple: a block freed to the caching allocator can be
// handed out again at once, because any work that still reads it was queued earlier on the same
// stream. The host waits only at explicit points: synchronize(), and copies to or from the host.
#pragma once

#include <cuda_runtime_api.h>

namespace tg::cuda {

// The stream of `device`, created on first use (non-blocking: it does not wait for work other
// libraries put on the legacy default stream).
cudaStream_t current_stream(int device);

// Waits until everything queued on the device's stream has finished; reports a kernel's failure.
void synchronize(int device);

}  // namespace tg::cuda
