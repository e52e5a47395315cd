// Switches of the CUDA attention (kernels/cuda/attention.cu): whether its one-kernel paths for
// short sequences are used, and whether they take a shape. For tests and benchmarks, which
// compare the one-kernel paths with the multi-kernel ones on the same inputs.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace tg::cuda {

// On (the default): shapes that fit run as one forward kernel and one backward kernel (plus
// index_add where examples share table rows). Off: the multi-kernel paths always. Process-wide;
// not for use while another thread runs attention.
void set_fused_attention(bool enabled);
bool fused_attention_enabled();

// On (the default): the one-query backward, where key and value rows are shared and the sorted
// scatter-add sums them, hands it dk and dv as weights of rows (cuda::WeightedRows). Off: as
// dense per-example buffers, as before. The sums are the same bits either way; for the tests
// that check so and the benchmark that times the two. Process-wide, as above.
void set_weighted_key_value_rows(bool enabled);
bool weighted_key_value_rows_enabled();

// Whether the one-kernel forward (backward: false) or backward (true) takes T keys, Tq queries,
// head size Dh and value size Dv in `dtype`: T <= 64 and the head's rows fit in shared memory.
bool fused_attention_fits(int64_t keys, int64_t queries, int64_t head_size, int64_t value_size,
                          DType dtype, bool backward);

}  // namespace tg::cuda
