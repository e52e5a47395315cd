// All-pairs logits and float64 cross-entropy over row subsets.
#include "grok/analysis/pair_logits.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace tg::grok::analysis {

Tensor all_pair_logits(nn::Model& model, int64_t p, TokenFormat format, int64_t chunk) {
  // The addition table holds every pair (a, b); make_tokens only reads a and b from it.
  const Dataset table = make_dataset(Operation::Add, p);
  const Tensor tokens = make_tokens(table, table.pairs, format);
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const Device device = model.parameters().front().device();
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < table.size(); start += chunk) {
    const int64_t end = std::min(table.size(), start + chunk);
    parts.push_back(model.forward(tokens.slice(0, start, end).to(device)).to(Device::cpu()));
  }
  model.train(was_training);
  return parts.size() == 1 ? parts.front().contiguous() : cat(parts, int64_t{0});
}

LossAccuracy64 loss_accuracy(const std::vector<double>& logits, int64_t classes,
                             const std::vector<int64_t>& rows, const std::vector<int64_t>& labels) {
  check(rows.size() == labels.size(), "loss_accuracy: ", rows.size(), " rows but ", labels.size(),
        " labels");
  LossAccuracy64 out;
  if (rows.empty()) return out;
  double loss = 0, correct = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const double* z = logits.data() + rows[i] * classes;
    const double peak = *std::max_element(z, z + classes);
    double total = 0;
    for (int64_t c = 0; c < classes; ++c) total += std::exp(z[c] - peak);
    loss += std::log(total) - (z[labels[i]] - peak);
    // argmax as the library's: the first of equal maxima
    correct += (std::max_element(z, z + classes) - z) == labels[i] ? 1 : 0;
  }
  out.loss = loss / static_cast<double>(rows.size());
  out.accuracy = correct / static_cast<double>(rows.size());
  return out;
}

std::vector<int64_t> labels_of(const Dataset& data, const std::vector<int64_t>& pairs) {
  std::vector<int64_t> labels;
  labels.reserve(pairs.size());
  for (int64_t pair : pairs) labels.push_back(data.label(pair));
  return labels;
}

}  // namespace tg::grok::analysis
