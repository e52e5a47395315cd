// The stream of each CUDA device: every kernel and copy of the CUDA backend runs on it, in order.
//
// One stream per device keeps the ordering simple: a block freed to the caching allocator can be
// handed out again at once, because any work that still reads it was queued earlier on the same
// stream. The host waits only at explicit points: synchronize(), and copies to or from the host.
// While the stream captures a CUDA graph (cuda_graph.h) its work is recorded instead of run, and
// the host must not wait for it at all.
#pragma once

#include <cuda_runtime_api.h>

namespace tg::cuda {

// The stream of `device`, created on first use (non-blocking: it does not wait for work other
// libraries put on the legacy default stream).
cudaStream_t current_stream(int device);

// Waits until everything queued on the device's stream has finished; reports a kernel's failure.
void synchronize(int device);

// Whether the device's stream is capturing a graph (also when that capture has already been
// invalidated): its work is then recorded, not run, so a result cannot be read back to the host.
bool is_capturing(int device);

}  // namespace tg::cuda
