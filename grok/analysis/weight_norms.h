// Weight norms per parameter group: ‖W‖₂ of each named parameter and ‖θ‖₂ of them all, in
// float64 — which parts of the network weight decay is shrinking (seed survey §3.2).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tg::grok::analysis {

struct WeightNorms {
  std::vector<std::pair<std::string, double>> groups;  // parameter name -> ‖W‖₂, in model order
  double total = 0;                                    // sqrt(Σ ‖W‖₂²)
};

// Any device and float dtype; read on the host in float64.
WeightNorms weight_norms(const std::vector<std::pair<std::string, Tensor>>& weights);

}  // namespace tg::grok::analysis
