// CPU adam_step: the fused Adam/AdamW update over raw contiguous data (float32 and float64), one
// parameter after another, with the gradient and weight norms taken in the same pass when asked.
//
// One pass per parameter: p, g, m and v are each read once and p, m and v written once, one SIMD
// vector of elements at a time (std::experimental::simd), with no temporaries. The lanes are
// explicit because GCC will not auto-vectorise a loop that calls std::sqrt unless the whole build
// uses -fno-math-errno (the errno branch is control flow), and Eigen's vector sqrt (with its
// default EIGEN_FAST_MATH) is an rsqrt approximation rather than IEEE sqrt. On this project's
// 2-core AVX-512 machine an AdamW step over 226k float32 elements (the nanda model's size) takes
// ~90 us; the same loop with scalar std::sqrt ran 6-7x slower.
//
// With norms, each parameter goes in fixed blocks of kNormBlock elements: the block's sum of g^2
// (before the update), its update, then its sum of p^2 (after), while the block is in cache; the
// blocks' sums are added in order, so the result does not depend on the thread count. Every
// element is updated by the same function either way, so the norms change no bit of the update.
//
// GCC 12 reports a false -W(maybe-)uninitialized inside its own AVX-512 sqrt intrinsics (their
// pass-through operand is _mm512_undefined_ps()); the warnings are located in the intrinsic
// headers, so they must be silenced before those headers are read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <algorithm>
#include <cmath>
#include <vector>

#if __has_include(<experimental/simd>)
#include <experimental/simd>
#define TG_ADAM_SIMD 1
#endif

#include "kernels/adam_step.h"
#include "kernels/cpu/block_sum_of_squares.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg {

namespace {

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

// The last n % W elements of a span, through the same code, from zero-padded copies.
template <typename T, bool kL2, bool kDecoupled>
void adam_tail(T* p, const T* g, T* m, T* v, int64_t n, const AdamScalars<T>& s) {
  constexpr int64_t W = static_cast<int64_t>(Lanes<T>::size());
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

template <typename T, bool kL2, bool kDecoupled>
void fused_adam_update(T* p, const T* g, T* m, T* v, int64_t n, const AdamScalars<T>& s) {
  constexpr int64_t W = static_cast<int64_t>(Lanes<T>::size());
  // Whole vectors, split across threads by vector index.
  cpu::parallel_for(n / W, std::max<int64_t>(1, cpu::kParallelGrain / W),
                    [&](int64_t begin, int64_t end) {
                      const int64_t i = begin * W;
                      adam_vectors<T, kL2, kDecoupled>(p + i, g + i, m + i, v + i, end - begin, s);
                    });
  adam_tail<T, kL2, kDecoupled>(p, g, m, v, n, s);
}

// The norms' blocks are optim/clip.cpp's: the same block size and the same block sums.
using cpu::block_sum_of_squares;
using cpu::kNormBlock;

// The update with norms: adds the parameter's sum of g^2 (as read) to *grad_sq and its sum of p^2
// (after the update) to *weight_sq, where those are not null.
template <typename T, bool kL2, bool kDecoupled>
void fused_adam_update_with_norms(T* p, const T* g, T* m, T* v, int64_t n,
                                  const AdamScalars<T>& s, double* grad_sq, double* weight_sq) {
  constexpr int64_t W = static_cast<int64_t>(Lanes<T>::size());
  static_assert(kNormBlock % W == 0);
  const int64_t blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> grad_partial(static_cast<size_t>(blocks)),
      weight_partial(static_cast<size_t>(blocks));
  cpu::parallel_for(blocks, std::max<int64_t>(1, cpu::kParallelGrain / kNormBlock),
                    [&](int64_t begin, int64_t end) {
                      for (int64_t b = begin; b < end; ++b) {
                        const int64_t i = b * kNormBlock, len = std::min(n - i, kNormBlock);
                        if (grad_sq) grad_partial[b] = block_sum_of_squares(g + i, len);
                        adam_vectors<T, kL2, kDecoupled>(p + i, g + i, m + i, v + i, len / W, s);
                        adam_tail<T, kL2, kDecoupled>(p + i, g + i, m + i, v + i, len, s);
                        if (weight_sq) weight_partial[b] = block_sum_of_squares(p + i, len);
                      }
                    });
  for (int64_t b = 0; b < blocks; ++b) {
    if (grad_sq) *grad_sq += grad_partial[b];
    if (weight_sq) *weight_sq += weight_partial[b];
  }
}

template <typename T, bool kL2, bool kDecoupled>
void adam_one(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
              const Tensor& exp_avg_sq, const AdamScalars<T>& s, double* grad_sq,
              double* weight_sq) {
  T* p = param.data<T>();
  const T* g = grad.data<T>();
  T* m = exp_avg.data<T>();
  T* v = exp_avg_sq.data<T>();
  const int64_t n = param.numel();
  if (grad_sq || weight_sq)
    fused_adam_update_with_norms<T, kL2, kDecoupled>(p, g, m, v, n, s, grad_sq, weight_sq);
  else
    fused_adam_update<T, kL2, kDecoupled>(p, g, m, v, n, s);
}

}  // namespace

void CpuBackend::adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                           const std::vector<Tensor>& exp_avg,
                           const std::vector<Tensor>& exp_avg_sq, const AdamHyper& hyper,
                           double* grad_norm_sq, double* weight_norm_sq) {
  check_adam_step(device(), params, grads, exp_avg, exp_avg_sq, hyper);
  if (grad_norm_sq) *grad_norm_sq = 0;
  if (weight_norm_sq) *weight_norm_sq = 0;
  AdamHyper h = hyper;
  if (hyper.device_steps.defined()) {  // host memory here: count, then schedule, on the host
    h.step = ++*hyper.device_steps.data<int64_t>();
    h.lr = lr_at(hyper.lr_rule, h.step - 1);
  }
  if (params.empty()) return;
  dispatch_floating(params[0].dtype(), "adam_step", [&]<typename T>() {
    const AdamScalars<T> s = adam_scalars<T>(h);
    for (size_t i = 0; i < params.size(); ++i) {
      dispatch_weight_decay(hyper, [&]<bool kL2, bool kDecoupled>() {
        adam_one<T, kL2, kDecoupled>(params[i], grads[i], exp_avg[i], exp_avg_sq[i], s,
                                     grad_norm_sq, weight_norm_sq);
      });
    }
  });
}

}  // namespace tg
