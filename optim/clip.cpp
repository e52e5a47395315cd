// Norms over lists of tensors (raw loops on the CPU, tensor ops elsewhere) and gradient clipping.
#include "optim/clip.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "kernels/cpu/loops.h"

namespace tg::optim {

namespace {

// Elements per partial sum. Blocks are fixed, and their partial sums are added in order, so the
// result is the same for any number of threads.
constexpr int64_t kNormBlock = 8192;

// sum of x[i]^2 over [0, n), in double. Not inlined, so that every block, whichever branch of
// parallel_for runs it, goes through the same machine code and gives the same bits.
template <typename T>
TG_ONE_COPY double block_sum_of_squares(const T* x, int64_t n) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

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

double sum_of_squares(const Tensor& t) {
  if (!t.device().is_cpu()) {
    NoGradGuard no_grad;
    const Tensor x = t.detach().to(DType::Float64);
    return sum(x * x).item();
  }
  const Tensor dense = contiguous_copy_if_needed(t);
  if (dense.dtype() == DType::Float32) return sum_of_squares(dense.data<float>(), dense.numel());
  return sum_of_squares(dense.data<double>(), dense.numel());
}

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
    return;
  }
  NoGradGuard no_grad;
  Tensor target = g;
  target.copy_(scale(g.detach(), factor));
}

}  // namespace

double global_grad_norm(const std::vector<Tensor>& params) {
  double total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    check(params[i].defined(), "global_grad_norm: parameter ", i, " is an undefined tensor");
    const Tensor g = params[i].grad();
    if (!g.defined()) continue;
    check_floating_entry(g, "global_grad_norm", "gradient of parameter", i);
    total += sum_of_squares(g);
  }
  return std::sqrt(total);
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

double global_norm(const std::vector<Tensor>& tensors) {
  double total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    check(tensors[i].defined(), "global_norm: tensor ", i, " is an undefined tensor");
    check_floating_entry(tensors[i], "global_norm", "tensor", i);
    total += sum_of_squares(tensors[i]);
  }
  return std::sqrt(total);
}

}  // namespace tg::optim
