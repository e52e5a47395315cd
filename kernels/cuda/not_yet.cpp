// The CudaBackend primitives that have no kernel yet (issue 5): each throws a clear tg::Error
// rather than computing something wrong. Remove a primitive from here when its kernel lands.
#include "kernels/cuda/cuda_backend.h"

namespace tg::cuda {

namespace {
[[noreturn]] void not_yet(const char* primitive) {
  throw Error(cat("cuda: ", primitive, " is not implemented yet (issue 5)"));
}
}  // namespace

Tensor CudaBackend::softmax(const Tensor&, int, bool) { not_yet("softmax"); }
Tensor CudaBackend::softmax_backward(const Tensor&, const Tensor&, int, bool) {
  not_yet("softmax_backward");
}
void CudaBackend::attention(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                            const Tensor&, double, bool, Tensor&, Tensor&) {
  not_yet("attention");
}
void CudaBackend::attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                     const Tensor&, const Tensor&, const Tensor&, double, bool,
                                     Tensor&, Tensor&, Tensor&) {
  not_yet("attention_backward");
}
void CudaBackend::cross_entropy(const Tensor&, const Tensor&, Tensor&, Tensor&) {
  not_yet("cross_entropy");
}
Tensor CudaBackend::cross_entropy_backward(const Tensor&, const Tensor&, const Tensor&,
                                           const Tensor&) {
  not_yet("cross_entropy_backward");
}
void CudaBackend::bias_activation(const Tensor&, const Tensor&, Activation, const Tensor&,
                                  const Tensor&) {
  not_yet("bias_activation");
}
Tensor CudaBackend::activation_backward(const Tensor&, const Tensor&, Activation, const Tensor&) {
  not_yet("activation_backward");
}
Tensor CudaBackend::index_select(const Tensor&, const Tensor&) { not_yet("index_select"); }
Tensor CudaBackend::index_add(const Tensor&, const Tensor&, int64_t) { not_yet("index_add"); }
Tensor CudaBackend::one_hot(const Tensor&, int64_t, DType) { not_yet("one_hot"); }
void CudaBackend::layer_norm(const Tensor&, const Tensor&, const Tensor&, double, Tensor&, Tensor&,
                             Tensor&) {
  not_yet("layer_norm");
}
void CudaBackend::layer_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                      const Tensor&, Tensor&, Tensor&, Tensor&) {
  not_yet("layer_norm_backward");
}

}  // namespace tg::cuda
