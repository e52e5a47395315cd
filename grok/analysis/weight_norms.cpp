// Weight norms per parameter, summed in float64 on the host.
#include "grok/analysis/weight_norms.h"

#include <cmath>

namespace tg::grok::analysis {

WeightNorms weight_norms(const std::vector<std::pair<std::string, Tensor>>& weights) {
  WeightNorms out;
  double total = 0;
  for (const auto& [name, tensor] : weights) {
    double squared = 0;
    for (double v : tensor.to(Device::cpu()).to_vector<double>()) squared += v * v;
    out.groups.emplace_back(name, std::sqrt(squared));
    total += squared;
  }
  out.total = std::sqrt(total);
  return out;
}

}  // namespace tg::grok::analysis
