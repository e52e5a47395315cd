// CPU layer norm over the last axis, forward and backward, accumulating in double.
//   forward:  xhat = (x - mean) * rstd,  y = xhat * w + b
//   backward: dxhat = dy * w
//             dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//             dw = sum over rows of dy * xhat,  db = sum over rows of dy
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg {

using namespace cpu;

void CpuBackend::layer_norm(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in,
                            double eps, Tensor& y, Tensor& mean, Tensor& rstd) {
  const Tensor x = contiguous_copy_if_needed(x_in);
  const Tensor w = weight_in.defined() ? contiguous_copy_if_needed(weight_in) : Tensor();
  const Tensor b = bias_in.defined() ? contiguous_copy_if_needed(bias_in) : Tensor();
  const int64_t d = x.shape().back();
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  y = Tensor::empty(x.shape(), x.dtype());
  mean = Tensor::empty({rows}, x.dtype());
  rstd = Tensor::empty({rows}, x.dtype());
  dispatch_floating(x.dtype(), "layer_norm", [&]<typename T>() {
    const T* px = x.data<T>();
    const T* pw = w.defined() ? w.data<T>() : nullptr;
    const T* pb = b.defined() ? b.data<T>() : nullptr;
    T *py = y.data<T>(), *pm = mean.data<T>(), *pr = rstd.data<T>();
    parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(d, 1)),
                 [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = px + r * d;
        double mu = 0, var = 0;
        for (int64_t i = 0; i < d; ++i) mu += row[i];
        mu /= d;
        for (int64_t i = 0; i < d; ++i) var += (row[i] - mu) * (row[i] - mu);
        const double inv = 1.0 / std::sqrt(var / d + eps);
        for (int64_t i = 0; i < d; ++i) {
          double v = (row[i] - mu) * inv;
          if (pw) v *= pw[i];
          if (pb) v += pb[i];
          py[r * d + i] = static_cast<T>(v);
        }
        pm[r] = static_cast<T>(mu);
        pr[r] = static_cast<T>(inv);
      }
    });
  });
}

void CpuBackend::layer_norm_backward(const Tensor& dy_in, const Tensor& x_in,
                                     const Tensor& weight_in, const Tensor& mean,
                                     const Tensor& rstd, Tensor& dx, Tensor& dweight,
                                     Tensor& dbias) {
  const Tensor dy = contiguous_copy_if_needed(dy_in), x = contiguous_copy_if_needed(x_in);
  const Tensor w = weight_in.defined() ? contiguous_copy_if_needed(weight_in) : Tensor();
  const int64_t d = x.shape().back();
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  dx = Tensor::empty(x.shape(), x.dtype());
  dweight = Tensor::empty({d}, x.dtype());
  dbias = Tensor::empty({d}, x.dtype());
  dispatch_floating(x.dtype(), "layer_norm_backward", [&]<typename T>() {
    const T *px = x.data<T>(), *pdy = dy.data<T>(), *pm = mean.data<T>(), *pr = rstd.data<T>();
    const T* pw = w.defined() ? w.data<T>() : nullptr;
    T* pdx = dx.data<T>();
    parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(d, 1)),
                 [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        double mean_dxhat = 0, mean_dxhat_xhat = 0;
        for (int64_t i = 0; i < d; ++i) {
          const double xhat = (px[r * d + i] - double(pm[r])) * pr[r];
          const double dxhat = double(pdy[r * d + i]) * (pw ? pw[i] : T(1));
          mean_dxhat += dxhat;
          mean_dxhat_xhat += dxhat * xhat;
        }
        mean_dxhat /= d;
        mean_dxhat_xhat /= d;
        for (int64_t i = 0; i < d; ++i) {
          const double xhat = (px[r * d + i] - double(pm[r])) * pr[r];
          const double dxhat = double(pdy[r * d + i]) * (pw ? pw[i] : T(1));
          pdx[r * d + i] = static_cast<T>(pr[r] * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
        }
      }
    });
    // Column sums over rows, threads split by column: deterministic.
    T *pdw = dweight.data<T>(), *pdb = dbias.data<T>();
    parallel_for(d, 64, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double sw = 0, sb = 0;
        for (int64_t r = 0; r < rows; ++r) {
          sw += double(pdy[r * d + c]) * (px[r * d + c] - double(pm[r])) * pr[r];
          sb += pdy[r * d + c];
        }
        pdw[c] = static_cast<T>(sw);
        pdb[c] = static_cast<T>(sb);
      }
    });
  });
}

}  // namespace tg
