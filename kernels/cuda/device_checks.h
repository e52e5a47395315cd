// Host-side checks the CUDA primitives share: that an operand is on the backend's device, and
// where an int64 index first leaves its range (searched on the device, so only a flag comes back).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tg::cuda {

// Throws "<op>: <role> is on <device>, not <device>" when t is not on `device`. A kernel handed
// another device's memory fails with an illegal address long after its launch: catching the mix-up
// here lets the message name the primitive.
void check_on(const Tensor& t, Device device, const char* op, const char* role);

// The smallest position i with index[i] outside [0, limit), or -1 when there is none; index is a
// contiguous int64 tensor on a CUDA device. The search runs on the device (an integer atomicMin,
// so the answer does not depend on timing) and the call waits for the stream to read it back.
int64_t first_out_of_range(const Tensor& index, int64_t limit);

}  // namespace tg::cuda
