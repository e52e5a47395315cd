// Adam and AdamW: the fused update over raw contiguous data (CPU, float32 and float64), and the
// same update as a chain of tensor ops for parameters on other devices.
//
// One pass per parameter: p, g, m and v are each read once and p, m and v written once, one SIMD
// vector of elements at a time (std::experimental::simd), with no temporaries. The lanes are
// explicit because GCC will not auto-vectorise a loop that calls std::sqrt unless the whole build
// uses -fno-math-errno (the errno branch is control flow), and Eigen's vector sqrt (with its
// default EIGEN_FAST_MATH) is an rsqrt approximation rather than IEEE sqrt. On this project's
// 2-core AVX-512 machine an AdamW step over 226k float32 elements (the nanda model's size) takes
// ~90 us; the same loop with scalar std::sqrt ran 6-7x slower.
//
// GCC 12 reports a false -W(maybe-)uninitialized inside its own AVX-512 sqrt intrinsics (their
// pass-through operand is _mm512_undefined_ps()); the warnings are located in the intrinsic
// headers, so they must be silenced before those headers are read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "optim/adam.h"

#include <algorithm>
#include <cmath>

#if __has_include(<experimental/simd>)
#include <experimental/simd>
#define TG_ADAM_SIMD 1
#endif

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/factories.h"
#include "kernels/cpu/loops.h"

namespace tg::optim {

namespace {

// The step's scalars in the parameter's type, computed in double first as PyTorch does.
template <typename T>
struct AdamScalars {
  T beta1, one_minus_beta1, beta2, one_minus_beta2;
  T step_size;   // lr / (1 - b1^t)
  T bias2_sqrt;  // sqrt(1 - b2^t)
  T eps;
  T weight_decay;  // L2 (Adam)
  T decay;         // 1 - lr * weight_decay (AdamW)
};

// The update of one element or one SIMD vector V of elements of type T. kL2 adds
// weight_decay * p to g (Adam); kDecoupled scales p by 1 - lr * weight_decay (AdamW).
template <bool kL2, bool kDecoupled, typename V, typename T>
inline void adam_lanes(V& p, V g, V& m, V& v, const AdamScalars<T>& s) {
  using std::sqrt;  // for V = T; a SIMD V finds its own sqrt by argument-dependent lookup
  if constexpr (kL2) g = g + s.weight_decay * p;
  if constexpr (kDecoupled) p = p * s.decay;
  m = s.beta1 * m + s.one_minus_beta1 * g;
  v = s.beta2 * v + s.one_minus_beta2 * (g * g);
  p = p - s.step_size * (m / (sqrt(v) / s.bias2_sqrt + s.eps));
}

#ifdef TG_ADAM_SIMD
namespace stdx = std::experimental;
template <typename T>
using Lanes = stdx::native_simd<T>;
#else
template <typename T>
struct Lanes {  // without <experimental/simd>: one element at a time
  static constexpr size_t size() { return 1; }
};
#endif

// Updates `count` consecutive SIMD vectors (Lanes<T>::size() elements each). Every element of a
// parameter is computed by this one compiled function: the serial and the OpenMP branches of
// parallel_for, and the tail, all call it. (Inlined or cloned into each, the compiler may
// contract a * b + c into an FMA in one copy and not in another, and the result would then
// depend on the thread count; it did, by one ulp, before this function existed.)
template <typename T, bool kL2, bool kDecoupled>
TG_ONE_COPY void adam_vectors(T* p, const T* g, T* m, T* v, int64_t count,
                              const AdamScalars<T>& s) {
#ifdef TG_ADAM_SIMD
  using V = Lanes<T>;
  constexpr int64_t W = static_cast<int64_t>(V::size());
  constexpr auto kUnaligned = stdx::element_aligned;
  for (int64_t i = 0; i < count * W; i += W) {
    V pv(p + i, kUnaligned), mv(m + i, kUnaligned), vv(v + i, kUnaligned);
    adam_lanes<kL2, kDecoupled>(pv, V(g + i, kUnaligned), mv, vv, s);
    pv.copy_to(p + i, kUnaligned);
    mv.copy_to(m + i, kUnaligned);
    vv.copy_to(v + i, kUnaligned);
  }
#else
  for (int64_t i = 0; i < count; ++i) adam_lanes<kL2, kDecoupled>(p[i], g[i], m[i], v[i], s);
#endif
}

template <typename T, bool kL2, bool kDecoupled>
void fused_adam_update(T* p, const T* g, T* m, T* v, int64_t n, const AdamScalars<T>& s) {
  constexpr int64_t W = static_cast<int64_t>(Lanes<T>::size());
  // Whole vectors, split across threads by vector index.
  cpu::parallel_for(n / W, std::max<int64_t>(1, cpu::kParallelGrain / W),
                    [&](int64_t begin, int64_t end) {
                      const int64_t i = begin * W;
                      adam_vectors<T, kL2, kDecoupled>(p + i, g + i, m + i, v + i, end - begin, s);
                    });
  // The last n % W elements go through the same code, from zero-padded copies.
  const int64_t tail = n % W, i = n - tail;
  if (tail == 0) return;
  T pt[W] = {}, gt[W] = {}, mt[W] = {}, vt[W] = {};
  std::copy_n(p + i, tail, pt);
  std::copy_n(g + i, tail, gt);
  std::copy_n(m + i, tail, mt);
  std::copy_n(v + i, tail, vt);
  adam_vectors<T, kL2, kDecoupled>(pt, gt, mt, vt, 1, s);
  std::copy_n(pt, tail, p + i);
  std::copy_n(mt, tail, m + i);
  std::copy_n(vt, tail, v + i);
}

template <typename T>
void fused_adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                     const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                     double weight_decay, bool decoupled, int64_t t) {
  const double bias1 = 1 - std::pow(beta1, static_cast<double>(t));
  const double bias2 = 1 - std::pow(beta2, static_cast<double>(t));
  const AdamScalars<T> s{static_cast<T>(beta1),
                         static_cast<T>(1 - beta1),
                         static_cast<T>(beta2),
                         static_cast<T>(1 - beta2),
                         static_cast<T>(lr / bias1),
                         static_cast<T>(std::sqrt(bias2)),
                         static_cast<T>(eps),
                         static_cast<T>(weight_decay),
                         static_cast<T>(1 - lr * weight_decay)};
  T* p = param.data<T>();
  const T* g = grad.data<T>();
  T* m = exp_avg.data<T>();
  T* v = exp_avg_sq.data<T>();
  const int64_t n = param.numel();
  // Zero weight decay is skipped rather than applied: 0 * inf is NaN (PyTorch skips it too).
  if (weight_decay == 0) fused_adam_update<T, false, false>(p, g, m, v, n, s);
  else if (decoupled) fused_adam_update<T, false, true>(p, g, m, v, n, s);
  else fused_adam_update<T, true, false>(p, g, m, v, n, s);
}

// The step's scalars as 0-d tensors of one dtype on one device, for the update off the CPU.
struct AdamScalarTensors {
  DType dtype;
  Device device;
  Tensor beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bias2_sqrt, eps,
      weight_decay, decay;
};

AdamScalarTensors adam_scalar_tensors(DType dtype, Device device, double lr, double beta1,
                                      double beta2, double eps, double weight_decay, int64_t t) {
  const double bias1 = 1 - std::pow(beta1, static_cast<double>(t));
  const double bias2 = 1 - std::pow(beta2, static_cast<double>(t));
  // fill converts each double to the dtype as static_cast does: the CPU's AdamScalars<T>.
  auto s = [&](double value) { return scalar(value, dtype, device); };
  return {dtype,          device,           s(beta1),         s(1 - beta1),
          s(beta2),       s(1 - beta2),     s(lr / bias1),    s(std::sqrt(bias2)),
          s(eps),         s(weight_decay),  s(1 - lr * weight_decay)};
}

// The update of one parameter off the CPU (where there is no fused kernel yet), as a chain of
// elementwise tensor ops in adam_lanes' order, so that it rounds as the CPU does (but for the
// FMAs the CPU's compiler may contract): about 17 kernels and 5 temporaries per parameter.
void adam_step_with_ops(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                        const Tensor& exp_avg_sq, const AdamScalarTensors& s, bool l2,
                        bool decoupled) {
  Tensor p = param.detach(), g = grad.detach();
  if (l2) g = g + s.weight_decay * p;
  if (decoupled) p = p * s.decay;
  const Tensor m = s.beta1 * exp_avg + s.one_minus_beta1 * g;
  const Tensor v = s.beta2 * exp_avg_sq + s.one_minus_beta2 * (g * g);
  p = p - s.step_size * (m / (sqrt(v) / s.bias2_sqrt + s.eps));
  // In place, through the handles the optimiser and the model share.
  Tensor(exp_avg).copy_(m);
  Tensor(exp_avg_sq).copy_(v);
  Tensor(param).copy_(p);
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
           double weight_decay)
    : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, false) {}

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool decoupled)
    : Optimizer(std::move(params)),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay),
      decoupled_(decoupled) {
  set_lr(lr);
  check(beta1 >= 0 && beta1 < 1, name(), ": beta1 ", beta1, " must be in [0, 1)");
  check(beta2 >= 0 && beta2 < 1, name(), ": beta2 ", beta2, " must be in [0, 1)");
  check(std::isfinite(eps) && eps >= 0, name(), ": eps ", eps, " must be finite and >= 0");
  check(std::isfinite(weight_decay) && weight_decay >= 0, name(), ": weight decay ",
        weight_decay, " must be finite and >= 0");
  exp_avg_ = zeros_like_params();
  exp_avg_sq_ = zeros_like_params();
}

void Adam::step() {
  // Check everything before writing anything, so that an error leaves no parameter half-updated.
  std::vector<Tensor> grads(params().size());
  for (size_t i = 0; i < params().size(); ++i) grads[i] = checked_grad(name(), i);
  NoGradGuard no_grad;  // the update is not part of the graph
  const int64_t t = steps() + 1;
  AdamScalarTensors scalars{};  // off the CPU: made again when the dtype or device changes
  for (size_t i = 0; i < params().size(); ++i) {
    if (!grads[i].defined()) continue;
    const Tensor& p = params()[i];
    if (!p.device().is_cpu()) {
      if (!scalars.beta1.defined() || scalars.dtype != p.dtype() || scalars.device != p.device())
        scalars = adam_scalar_tensors(p.dtype(), p.device(), lr(), beta1_, beta2_, eps_,
                                      weight_decay_, t);
      // Zero weight decay is skipped, as on the CPU.
      adam_step_with_ops(p, grads[i], exp_avg_[i], exp_avg_sq_[i], scalars,
                         weight_decay_ != 0 && !decoupled_, weight_decay_ != 0 && decoupled_);
    } else if (p.dtype() == DType::Float32) {
      fused_adam_step<float>(p, grads[i], exp_avg_[i], exp_avg_sq_[i], lr(), beta1_, beta2_, eps_,
                             weight_decay_, decoupled_, t);
    } else {
      fused_adam_step<double>(p, grads[i], exp_avg_[i], exp_avg_sq_[i], lr(), beta1_, beta2_,
                              eps_, weight_decay_, decoupled_, t);
    }
  }
  count_step();
}

std::vector<std::pair<std::string, Tensor>> Adam::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(2 * exp_avg_.size());
  for (size_t i = 0; i < exp_avg_.size(); ++i) {
    out.emplace_back("exp_avg." + std::to_string(i), exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + std::to_string(i), exp_avg_sq_[i]);
  }
  return out;
}

void Adam::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  load_buffers(name(), this->state(), state, steps);
}

AdamW::AdamW(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
             double weight_decay)
    : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, true) {}

}  // namespace tg::optim
