// gradcheck: compares autograd's Jacobian against central finite differences in float64.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // an element passes when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-4;
};

struct GradcheckResult {
  bool passed = true;
  // The worst element, by |analytic - numeric| / (atol + rtol * |numeric|):
  size_t input = 0;         // which input
  int64_t element = 0;      // flat index into that input
  int64_t output = 0;       // flat index into the output
  double analytic = 0, numeric = 0;
  double worst_ratio = 0;   // <= 1 means within tolerance
  std::string report;       // one line describing the worst element
};

// f maps the inputs to a tensor of any shape. Every input must be float64 on the CPU; those
// with requires_grad set are checked, the others held constant. f is called many times (twice
// per checked input element, plus once), so keep the inputs small.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace tg
