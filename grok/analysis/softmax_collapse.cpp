// Softmax collapse: the float32 softmax denominator, summed as the cross-entropy kernel does.
#include "grok/analysis/softmax_collapse.h"

#include <Eigen/Core>

namespace tg::grok::analysis {

bool softmax_sum_is_one(const float* logits, int64_t classes) {
  // The same expression as kernels/cpu/softmax.cpp's cross-entropy row, in float32.
  const Eigen::Map<const Eigen::Array<float, Eigen::Dynamic, 1>> row(logits, classes);
  const float peak = row.maxCoeff();
  const float total = (row - peak).exp().sum();
  return total == 1.0f;
}

double softmax_collapse_fraction(const Tensor& logits, const std::vector<int64_t>& rows) {
  check(logits.dim() == 2, "softmax_collapse_fraction: logits must be [N, C], got ",
        shape_str(logits.shape()));
  const Tensor host = logits.to(Device::cpu()).to(DType::Float32).contiguous();
  const int64_t n = host.size(0), classes = host.size(1);
  const float* data = host.data<float>();
  int64_t collapsed = 0, count = 0;
  auto visit = [&](int64_t r) {
    check(r >= 0 && r < n, "softmax_collapse_fraction: row ", r, " is not in [0, ", n, ")");
    collapsed += softmax_sum_is_one(data + r * classes, classes) ? 1 : 0;
    ++count;
  };
  if (rows.empty())
    for (int64_t r = 0; r < n; ++r) visit(r);
  else
    for (int64_t r : rows) visit(r);
  return count > 0 ? static_cast<double>(collapsed) / static_cast<double>(count) : 0.0;
}

}  // namespace tg::grok::analysis
