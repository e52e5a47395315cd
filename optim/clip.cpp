// Norms over lists of tensors (raw loops on the CPU, tensor ops elsewhere) and gradient clipping.
#include "optim/clip.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "kernels/cpu/block_sum_of_squares.h"
#include "kernels/cpu/loops.h"

namespace tg::optim {

namespace {

using cpu::block_sum_of_squares;
using cpu::kNormBlock;

template <typename T>
double sum_of_squares(const T* x, int64_t n) {
  const int64_t blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
  cpu::parallel_for(blocks, cpu::kParallelGrain / kNormBlock, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t start = b * kNormBlock;
      partial[static_cast<size_t>(b)] =
          block_sum_of_squares(x + start, std::min(n, start + kNormBlock) - start);
    }
  });
  double total = 0;
  for (const double s : partial) total += s;
  return total;
}

// A CPU tensor's sum of squares, in double.
double sum_of_squares(const Tensor& t) {
  const Tensor dense = contiguous_copy_if_needed(t);
  if (dense.dtype() == DType::Float32) return sum_of_squares(dense.data<float>(), dense.numel());
  return sum_of_squares(dense.data<double>(), dense.numel());
}

// Adds up the sums of squares of a list of tensors, in list order, in double. CPU tensors are
// summed by the loops above; a run of tensors on another device is summed there, each tensor
// reduced in double and the partial sums added on the device, and read back once per run (one
// synchronisation, rather than one per tensor).
class SumOfSquares {
 public:
  void add(const Tensor& t) {
    if (t.device().is_cpu()) {
      flush();
      total_ += sum_of_squares(t);
      return;
    }
    if (pending_.defined() && pending_.device() != t.device()) flush();
    add_on_device(pending_, t);
  }
  // pending += sum(t^2) in double, on t's device (pending = it, when undefined).
  static void add_on_device(Tensor& pending, const Tensor& t) {
    NoGradGuard no_grad;
    const Tensor x = t.detach().to(DType::Float64);
    const Tensor s = sum(x * x);
    pending = pending.defined() ? pending + s : s;
  }
  double total() {
    flush();
    return total_;
  }

 private:
  void flush() {
    if (pending_.defined()) total_ += pending_.item();
    pending_ = Tensor();
  }
  double total_ = 0;
  Tensor pending_;  // the device run's partial sum so far
};

void check_floating_entry(const Tensor& t, const char* op, const char* what, size_t i) {
  check(is_floating(t.dtype()), op, ": ", what, " ", i, " of shape ", shape_str(t.shape()), " is ",
        dtype_name(t.dtype()), ", not a float tensor");
}

// g *= factor, in place.
void scale_in_place(const Tensor& g, double factor) {
  if (g.device().is_cpu() && g.is_contiguous()) {
    const auto run = [&]<typename T>(T* x) {
      const T f = static_cast<T>(factor);
      cpu::parallel_for(g.numel(), cpu::kParallelGrain, [=](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) x[i] *= f;
      });
    };
    if (g.dtype() == DType::Float32) run(g.data<float>());
    else run(g.data<double>());
    g.storage()->bump_version();  // an in-place write, as copy_ below counts it
    return;
  }
  NoGradGuard no_grad;
  Tensor target = g;
  target.copy_(scale(g.detach(), factor));
}

}  // namespace

double global_grad_norm(const std::vector<Tensor>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    check(params[i].defined(), "global_grad_norm: parameter ", i, " is an undefined tensor");
    const Tensor g = params[i].grad();
    if (g.defined()) check_floating_entry(g, "global_grad_norm", "gradient of parameter", i);
  }
  SumOfSquares total;
  for (const Tensor& p : params)
    if (p.grad().defined()) total.add(p.grad());
  return std::sqrt(total.total());
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  check(std::isfinite(max_norm) && max_norm >= 0, "clip_grad_norm: max_norm ", max_norm,
        " must be finite and >= 0");
  const double norm = global_grad_norm(params);
  const double factor = max_norm / (norm + 1e-6);
  if (factor < 1) {
    for (const Tensor& p : params) {
      const Tensor g = p.grad();
      if (g.defined()) scale_in_place(g, factor);
    }
  }
  return norm;
}

Tensor sum_of_squares_on_device(const std::vector<Tensor>& tensors) {
  check(!tensors.empty(), "sum_of_squares_on_device: no tensors");
  Tensor total;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check(t.defined(), "sum_of_squares_on_device: tensor ", i, " is an undefined tensor");
    check_floating_entry(t, "sum_of_squares_on_device", "tensor", i);
    check(!t.device().is_cpu() && t.device() == tensors[0].device(),
          "sum_of_squares_on_device: tensor ", i, " is on ", t.device().str(),
          "; all must be on one device other than the CPU (tensor 0 is on ",
          tensors[0].device().str(), ")");
    SumOfSquares::add_on_device(total, t);
  }
  return total;
}

double global_norm(const std::vector<Tensor>& tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    check(tensors[i].defined(), "global_norm: tensor ", i, " is an undefined tensor");
    check_floating_entry(tensors[i], "global_norm", "tensor", i);
  }
  SumOfSquares total;
  for (const Tensor& t : tensors) total.add(t);
  return std::sqrt(total.total());
}

}  // namespace tg::optim
