// gradcheck: autograd's Jacobian, row by row, against central differences, column by column.
#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/factories.h"

namespace tg {

namespace {

std::vector<Tensor> make_leaves(const std::vector<std::vector<double>>& values,
                                const std::vector<Tensor>& inputs) {
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].dtype() != DType::Float64) {
      leaves.push_back(inputs[i]);  // integer inputs (indices) pass through unchanged
      continue;
    }
    Tensor leaf = from_vector(values[i], inputs[i].shape());
    if (inputs[i].shape().empty()) leaf = scalar(values[i][0], DType::Float64);
    if (inputs[i].requires_grad()) leaf.requires_grad_();
    leaves.push_back(leaf);
  }
  return leaves;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  std::vector<std::vector<double>> values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    check(x.device().is_cpu(), "gradcheck: input ", i, " is on ", x.device().str(), ", not cpu");
    check(x.dtype() == DType::Float64 || !x.requires_grad(), "gradcheck: input ", i, " is ",
          dtype_name(x.dtype()), "; checked inputs must be float64");
    values.push_back(x.dtype() == DType::Float64 ? x.to_vector<double>() : std::vector<double>{});
  }

  bool any_checked = false;
  for (const Tensor& x : inputs) any_checked = any_checked || x.requires_grad();
  check(any_checked, "gradcheck: no input requires grad, so there is nothing to check");

  // Analytic Jacobian: one backward per output element, with a one-hot upstream gradient.
  std::vector<Tensor> leaves = make_leaves(values, inputs);
  const Tensor out = f(leaves);
  check(out.dtype() == DType::Float64, "gradcheck: f returned ", dtype_name(out.dtype()),
        "; it must compute in float64");
  check(out.requires_grad(), "gradcheck: f's output does not require grad");
  const int64_t n_out = out.numel();
  std::vector<std::vector<std::vector<double>>> analytic(inputs.size());  // [input][out][element]
  for (int64_t j = 0; j < n_out; ++j) {
    std::vector<double> one_hot(static_cast<size_t>(n_out), 0.0);
    one_hot[j] = 1.0;
    for (Tensor& leaf : leaves)
      if (leaf.requires_grad()) leaf.zero_grad();
    Tensor upstream = out.shape().empty() ? scalar(1.0, DType::Float64)
                                          : from_vector(one_hot, out.shape());
    out.backward(upstream, /*retain_graph=*/true);
    for (size_t i = 0; i < leaves.size(); ++i) {
      if (!leaves[i].requires_grad()) continue;
      analytic[i].push_back(leaves[i].grad().defined()
                                ? leaves[i].grad().to_vector<double>()
                                : std::vector<double>(values[i].size(), 0.0));
    }
  }

  // Numeric Jacobian: perturb one input element at a time by +-eps.
  NoGradGuard no_grad;
  GradcheckResult result;
  result.worst_ratio = -1;  // so that the first compared element is recorded
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    for (size_t k = 0; k < values[i].size(); ++k) {
      const double original = values[i][k];
      values[i][k] = original + options.eps;
      const std::vector<double> plus = f(make_leaves(values, inputs)).to_vector<double>();
      values[i][k] = original - options.eps;
      const std::vector<double> minus = f(make_leaves(values, inputs)).to_vector<double>();
      values[i][k] = original;
      for (int64_t j = 0; j < n_out; ++j) {
        const double numeric = (plus[j] - minus[j]) / (2 * options.eps);
        const double a = analytic[i][j][k];
        const double ratio = std::abs(a - numeric) / (options.atol + options.rtol * std::abs(numeric));
        if (!(ratio <= result.worst_ratio) || std::isnan(ratio)) {
          result = {ratio <= 1, i, static_cast<int64_t>(k), j, a, numeric, ratio, ""};
          if (std::isnan(ratio)) result.worst_ratio = INFINITY;
        }
      }
    }
  }
  result.worst_ratio = std::max(result.worst_ratio, 0.0);  // 0 when f has no outputs
  result.passed = result.worst_ratio <= 1;
  result.report = cat("gradcheck ", result.passed ? "passed" : "FAILED", ": worst at input ",
                      result.input, " element ", result.element, ", output ", result.output,
                      ": analytic ", result.analytic, " vs numeric ", result.numeric,
                      " (error ", result.worst_ratio, "x the tolerance)");
  return result;
}

}  // namespace tg
