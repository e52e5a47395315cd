// Softmax collapse (Prieto et al. 2025, "Grokking at the edge of numerical stability"): once a
// training sample's correct logit leads the others by enough (~17 in float32), every other term
// of the softmax denominator Σ_j exp(z_j − max z) is absorbed and the sum is exactly 1; the
// sample's loss rounds to 0 and its gradient vanishes, so it stops teaching anything. The
// metric: the fraction of training samples where that float32 sum is exactly 1.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tg::grok::analysis {

// Σ_j exp(z_j − max z) == 1 for one row of float32 logits, summed in float32 exactly as the
// library's cross-entropy kernel sums it (Eigen's exp and sum over the row), so a collapsed
// sample is one whose gradient training really sees as zero.
bool softmax_sum_is_one(const float* logits, int64_t classes);

// The fraction of `rows` of logits [N, C] (converted to float32 on the host if they are not)
// whose softmax sum is exactly 1; empty `rows` means every row. 0 for no rows.
double softmax_collapse_fraction(const Tensor& logits, const std::vector<int64_t>& rows = {});

}  // namespace tg::grok::analysis
