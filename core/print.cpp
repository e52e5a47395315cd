// Printing: "tensor([[1, 2], [3, 4]], shape=[2, 2], dtype=float32, device=cpu)", NumPy-style,
// with "..." in place of the middle of any axis longer than a dozen elements.
#include <cstdio>
#include <sstream>

#include "core/tensor.h"

namespace tg {

namespace {

constexpr int64_t kEdgeItems = 3;   // shown at each end of a summarised axis
constexpr int64_t kSummariseAbove = 12;

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
std::string format_value(int64_t v) { return std::to_string(v); }

// T: double for the floating types, int64_t for Int64 (past 2^53 a double would round them).
template <typename T>
void print_axis(std::ostream& out, const std::vector<T>& values, const Shape& shape,
                const Strides& strides, size_t axis, int64_t base, int indent) {
  if (axis == shape.size()) {
    out << format_value(values[base]);
    return;
  }
  out << "[";
  const int64_t n = shape[axis];
  for (int64_t i = 0; i < n; ++i) {
    if (n > kSummariseAbove && i == kEdgeItems) {
      out << "...";
      i = n - kEdgeItems - 1;
      out << (axis + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
      continue;
    }
    print_axis(out, values, shape, strides, axis + 1, base + i * strides[axis], indent + 1);
    if (i + 1 < n) out << (axis + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  out << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream out;
  out << "tensor(";
  if (dtype() == DType::Int64)
    print_axis(out, to_vector<int64_t>(), shape(), contiguous_strides(shape()), 0, 0, 7);
  else
    print_axis(out, to_vector<double>(), shape(), contiguous_strides(shape()), 0, 0, 7);
  out << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype())
      << ", device=" << device().str();
  if (requires_grad()) out << ", requires_grad";
  out << ")";
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) { return out << t.str(); }

}  // namespace tg
