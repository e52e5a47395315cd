// Factories: tensors made from sizes, values, host data, ranges or the seeded generator.
#include "core/factories.h"

#include <cmath>

#include "core/convert.h"
#include "kernels/backend.h"

namespace tg {

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  check_scalar_fits(value, dtype, "full");
  Tensor t = Tensor::empty(shape, dtype, device);
  backend_for(device).fill(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  check(std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
        "arange: unsupported range ", start, " to ", end, " by ", step, " (all must be finite)");
  check(step != 0, "arange: step must be nonzero");
  const double count = std::ceil((end - start) / step);
  check(count < 0x1p53, "arange: range ", start, " to ", end, " by ", step, " has ", count,
        " elements");
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  // 0, 1, 2, ... in int64 on another device is made there (no host copy, which would wait).
  if (!device.is_cpu() && dtype == DType::Int64 && start == 0 && step == 1) {
    Tensor t = Tensor::empty({n}, DType::Int64, device);
    backend_for(device).fill_iota(t);
    return t;
  }
  // Whole int64 bounds count in int64, as PyTorch's do: past 2^53 a double skips values.
  const auto whole = [](double v) { return std::floor(v) == v && std::fabs(v) < 0x1p63; };
  if (dtype == DType::Int64 && whole(start) && whole(step)) {
    const auto first = static_cast<int64_t>(start), by = static_cast<int64_t>(step);
    int64_t span = 0, last = first;
    check(n == 0 || (!__builtin_mul_overflow(n - 1, by, &span) &&
                     !__builtin_add_overflow(first, span, &last)),
          "arange: range ", start, " to ", end, " by ", step, " goes past int64");
    Tensor host = Tensor::empty({n}, DType::Int64);
    int64_t* values = host.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) values[i] = first + i * by;
    return host.to(device).detach();
  }
  // Filled in a tensor, not a std::vector: a range too large for memory is then allocate's
  // error, which says how many bytes, rather than std::bad_alloc.
  Tensor host = Tensor::empty({n}, DType::Float64);
  double* values = host.data<double>();
  for (int64_t i = 0; i < n; ++i) values[i] = start + static_cast<double>(i) * step;
  return host.to(dtype).to(device).detach();
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  const Shape target = shape.empty() ? Shape{static_cast<int64_t>(values.size())} : shape;
  check(numel(target) == static_cast<int64_t>(values.size()), "from_vector: ", values.size(),
        " values do not fill shape ", shape_str(target));
  Tensor t = Tensor::empty(target, dtype_of<T>(), device);
  if (!values.empty()) backend_for(device).copy_from_host(values.data(), t);
  return t;
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);

namespace {
Tensor random_tensor(const Shape& shape, RandomKind kind, double a, double b, Generator& gen,
                     DType dtype, Device device, const char* op) {
  check(is_floating(dtype), op, ": needs a float dtype, got ", dtype_name(dtype));
  Tensor t = Tensor::empty(shape, dtype, device);
  const uint64_t counter = gen.reserve(t.numel());
  backend_for(device).fill_random(t, kind, gen.seed(), counter, a, b);
  return t;
}
}  // namespace

Tensor rand(const Shape& shape, Generator& gen, DType dtype, Device device) {
  return random_tensor(shape, RandomKind::Uniform, 0, 1, gen, dtype, device, "rand");
}
Tensor uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype,
               Device device) {
  check(low <= high, "uniform: low ", low, " is above high ", high);
  return random_tensor(shape, RandomKind::Uniform, low, high, gen, dtype, device, "uniform");
}
Tensor randn(const Shape& shape, Generator& gen, DType dtype, Device device) {
  return random_tensor(shape, RandomKind::Normal, 0, 1, gen, dtype, device, "randn");
}
Tensor normal(const Shape& shape, double mean, double std, Generator& gen, DType dtype,
              Device device) {
  check(std >= 0, "normal: std must be >= 0, got ", std);
  return random_tensor(shape, RandomKind::Normal, mean, std, gen, dtype, device, "normal");
}

}  // namespace tg
