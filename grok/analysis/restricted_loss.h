// Restricted and excluded loss (Nanda et al. 2023, REFERENCE §2): split a model's logits over
// every (a, b) into the part the key-frequency circuit explains — the components along
// cos(w_k(a+b)) and sin(w_k(a+b)), w_k = 2πk/p, as functions of (a, b), for each output c — and
// the rest. The restricted loss keeps only that part (plus, per output c, the logits' mean over
// (a, b): the "bias correction"); it falls as the generalising circuit forms, before the test
// loss does. The excluded loss removes it from the full logits; its train loss rises as the
// memorised answers come to depend on the circuit. Defined for a + b mod p only.
//
// Why these directions: the grokked network's logit for answer c is ~ Σ_k α_k cos(w_k(a+b−c))
// = Σ_k α_k [cos(w_k(a+b)) cos(w_k c) + sin(w_k(a+b)) sin(w_k c)], which for each c lies in the
// span of cos(w_k(a+b)) and sin(w_k(a+b)).
#pragma once

#include <cstdint>
#include <vector>

namespace tg::grok::analysis {

struct LogitDecomposition {
  std::vector<double> restricted;  // [p², C]: the key-frequency components plus the per-c mean
  std::vector<double> excluded;    // [p², C]: the logits minus the key-frequency components
};

// logits float64 [p², C], row a·p + b for every pair; keys in 1..⌊p/2⌋ (others are an error).
LogitDecomposition decompose_logits(const std::vector<double>& logits, int64_t p, int64_t classes,
                                    const std::vector<int64_t>& keys);

struct RestrictedExcludedLoss {
  double restricted_all = 0;    // restricted logits, cross-entropy over every pair (Nanda's)
  double restricted_train = 0;  // the same over the train pairs
  double excluded_train = 0;    // excluded logits, cross-entropy over the train pairs (Nanda's)
};

// labels[r] is the answer for row r (every pair); train_rows index the rows of the train set.
RestrictedExcludedLoss restricted_excluded_loss(const std::vector<double>& logits, int64_t p,
                                                int64_t classes, const std::vector<int64_t>& keys,
                                                const std::vector<int64_t>& labels,
                                                const std::vector<int64_t>& train_rows);

}  // namespace tg::grok::analysis
