// A model's logits over the whole table of pairs (a, b) in [0, p)², and float64 loss and
// accuracy on any subset of its rows: what the analyses of one set of weights start from.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "grok/dataset.h"
#include "nn/model.h"

namespace tg::grok::analysis {

// The logits of every (a, b), row a·p + b, as the model computes them (its dtype, float32 for a
// trained run), on the host: [p², p_out]. Eval mode and no graph; the model's mode is restored.
// Pairs the dataset leaves out (b = 0 for div) are computed too: the model reads any token.
Tensor all_pair_logits(nn::Model& model, int64_t p, TokenFormat format, int64_t chunk = 4096);

struct LossAccuracy64 {
  double loss = 0;      // mean softmax cross-entropy, in float64
  double accuracy = 0;  // fraction of rows whose argmax is the label
};

// logits float [R, C] (any float dtype; read as float64); rows index into it, labels[i] is the
// class of rows[i]. Empty rows give loss and accuracy 0.
LossAccuracy64 loss_accuracy(const std::vector<double>& logits, int64_t classes,
                             const std::vector<int64_t>& rows, const std::vector<int64_t>& labels);

// The labels of `pairs` (a·p + b) under the dataset's operation.
std::vector<int64_t> labels_of(const Dataset& data, const std::vector<int64_t>& pairs);

}  // namespace tg::grok::analysis
