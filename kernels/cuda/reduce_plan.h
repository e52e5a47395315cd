// How CudaBackend::reduce spreads a reduction over threads (kernels/cuda/reduce.cu), as a
// function of its number of outputs and their length alone; shared with the kernels that must
// give reduce's bits for a sum of their own (block_sum_as_reduce in full_sum.cuh).
#pragma once

#include <cstdint>

#include "core/host_device.h"
#include "kernels/cuda/launch.h"

namespace tg::cuda {

// A warp per output fills a GPU only when there are thousands of outputs (an H200 holds 132 SMs
// x 64 warps = 8,448 warps at once). Below this many (about half that), most warp slots would
// idle while each warp walks its output 32 elements at a time, so outputs get a block each.
constexpr int64_t kFewOutputs = 4096;
// Split outputs: the parts make the grid up to about as many blocks as a GPU holds at once (an
// H200: 132 SMs x 8 blocks of 256 threads)...
constexpr int64_t kSplitBlocks = 1024;
// ...but each part keeps at least this many elements (8 per thread of its block), so that the
// partial pass does enough to be worth the second launch.
constexpr int64_t kMinPartLength = 8 * kBlockThreads;

struct ReducePlan {
  bool by_block = false;  // else a warp per output
  int64_t parts = 1;      // > 1: split outputs, each part's result combined by a second launch
};

// The path of a reduction of `outer` outputs of `length` elements each. A block per output when
// outputs are few (kFewOutputs) and each has a block's worth of elements (else most of its
// threads would idle instead); split into parts only when the outputs are too few to give the
// GPU kSplitBlocks blocks. A function of (outer, length) only: reduce and reduce_sum_pair reduce
// an output alike, to the bit.
TG_HOST_DEVICE inline ReducePlan plan_for(int64_t outer, int64_t length) {
  if (outer >= kFewOutputs || length < kBlockThreads) return {};
  const int64_t to_fill = (kSplitBlocks + outer - 1) / outer;
  const int64_t parts = length / kMinPartLength < to_fill ? length / kMinPartLength : to_fill;
  return {true, parts > 1 ? parts : 1};
}

}  // namespace tg::cuda
