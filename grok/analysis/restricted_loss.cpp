// Restricted and excluded logits: projections on cos/sin(w_k(a+b)) over the (a, b) table.
#include "grok/analysis/restricted_loss.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "grok/analysis/pair_logits.h"

namespace tg::grok::analysis {

LogitDecomposition decompose_logits(const std::vector<double>& logits, int64_t p, int64_t classes,
                                    const std::vector<int64_t>& keys) {
  const int64_t pairs = p * p;
  check(static_cast<int64_t>(logits.size()) == pairs * classes, "decompose_logits: expected ",
        pairs, " x ", classes, " logits, got ", logits.size());
  // The unit directions over (a, b): cos and sin of w_k(a+b) for each key k. They are orthogonal
  // to each other and to the constant, so the projection on their span is the sum of the
  // projections on each. (The sine of k = p/2 vanishes and is skipped.)
  std::vector<std::vector<double>> directions;
  for (int64_t k : keys) {
    check(k >= 1 && k <= p / 2, "decompose_logits: key frequency ", k, " is not in [1, ", p / 2,
          "]");
    for (int phase = 0; phase < 2; ++phase) {
      std::vector<double> u(static_cast<size_t>(pairs));
      double squared = 0;
      for (int64_t a = 0; a < p; ++a)
        for (int64_t b = 0; b < p; ++b) {
          const double x = 2 * std::numbers::pi * static_cast<double>(k * ((a + b) % p)) /
                           static_cast<double>(p);
          u[a * p + b] = phase == 0 ? std::cos(x) : std::sin(x);
          squared += u[a * p + b] * u[a * p + b];
        }
      if (squared < 1e-9) continue;
      for (double& v : u) v /= std::sqrt(squared);
      directions.push_back(std::move(u));
    }
  }
  std::vector<double> component(logits.size(), 0.0);
  std::vector<double> coefficient(static_cast<size_t>(classes));
  for (const std::vector<double>& u : directions) {
    std::fill(coefficient.begin(), coefficient.end(), 0.0);
    for (int64_t r = 0; r < pairs; ++r)
      for (int64_t c = 0; c < classes; ++c) coefficient[c] += u[r] * logits[r * classes + c];
    for (int64_t r = 0; r < pairs; ++r)
      for (int64_t c = 0; c < classes; ++c) component[r * classes + c] += u[r] * coefficient[c];
  }
  // Bias correction: the restricted logits get the full logits' mean over (a, b) for each c
  // (the component's own mean is zero up to rounding; subtracting it keeps that exact).
  std::vector<double> mean_difference(static_cast<size_t>(classes), 0.0);
  for (int64_t r = 0; r < pairs; ++r)
    for (int64_t c = 0; c < classes; ++c)
      mean_difference[c] += (logits[r * classes + c] - component[r * classes + c]) / pairs;
  LogitDecomposition out;
  out.restricted.resize(logits.size());
  out.excluded.resize(logits.size());
  for (int64_t r = 0; r < pairs; ++r)
    for (int64_t c = 0; c < classes; ++c) {
      const int64_t i = r * classes + c;
      out.restricted[i] = component[i] + mean_difference[c];
      out.excluded[i] = logits[i] - component[i];
    }
  return out;
}

RestrictedExcludedLoss restricted_excluded_loss(const std::vector<double>& logits, int64_t p,
                                                int64_t classes, const std::vector<int64_t>& keys,
                                                const std::vector<int64_t>& labels,
                                                const std::vector<int64_t>& train_rows) {
  const LogitDecomposition parts = decompose_logits(logits, p, classes, keys);
  std::vector<int64_t> all_rows(labels.size());
  for (size_t r = 0; r < all_rows.size(); ++r) all_rows[r] = static_cast<int64_t>(r);
  std::vector<int64_t> train_labels;
  for (int64_t r : train_rows) train_labels.push_back(labels.at(r));
  RestrictedExcludedLoss out;
  out.restricted_all = loss_accuracy(parts.restricted, classes, all_rows, labels).loss;
  out.restricted_train = loss_accuracy(parts.restricted, classes, train_rows, train_labels).loss;
  out.excluded_train = loss_accuracy(parts.excluded, classes, train_rows, train_labels).loss;
  return out;
}

}  // namespace tg::grok::analysis
