// Tensor: a shape, strides and offset over a shared Storage, plus the autograd fields.
//
// A Tensor is a cheap handle (a shared pointer to its TensorImpl); copying a Tensor aliases it.
// Views (reshape of contiguous data, transpose, permute, slice, expand) share the storage and
// differ only in shape / strides / offset. The differentiable methods (operators, reductions,
// views) are defined in autograd/, which records the graph; core/ knows only the data.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "core/convert.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace tg {

class Node;  // autograd/node.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;  // in elements, from the start of the storage
  DType dtype = DType::Float32;

  // Autograd. A leaf that requires grad has requires_grad set and no grad_fn; a tensor computed
  // by a recorded op has grad_fn (the node that computes its inputs' gradients) instead.
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;
  std::shared_ptr<TensorImpl> grad;  // accumulated by backward() on leaves
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (no storage), e.g. a missing gradient
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Allocates an uninitialised contiguous tensor on `device`.
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32,
                      Device device = Device::cpu());

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  // --- metadata --------------------------------------------------------------------------
  const Shape& shape() const { return checked().shape; }
  const Strides& strides() const { return checked().strides; }
  int64_t offset() const { return checked().offset; }
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().storage->device(); }
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t axis) const;
  int64_t numel() const { return tg::numel(shape()); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return checked().storage; }

  // Typed pointer to element [0, 0, ...] of this view (CPU memory or a device pointer).
  template <typename T>
  T* data() const {
    check(dtype() == dtype_of<T>(), "data: tensor is ", dtype_name(dtype()), ", not ",
          dtype_name(dtype_of<T>()));
    return static_cast<T*>(storage()->data()) + offset();
  }
  void* raw_data() const {
    return static_cast<char*>(storage()->data()) + offset() * dtype_size(dtype());
  }

  // --- host conversion (any device, any dtype; values converted) --------------------------
  template <typename T>
  std::vector<T> to_vector() const;
  double item() const;  // the single element of a one-element tensor
  template <typename T>
  T item() const {
    const double value = item();  // checks for exactly one element
    // int64 above 2^53 does not survive the trip through double: read integers exactly.
    if constexpr (std::is_integral_v<T>)
      if (dtype() == DType::Int64) return static_cast<T>(to_vector<int64_t>()[0]);
    return convert_value<T>(value);
  }
  std::string str() const;  // shape, dtype, device and values (summarised when large)

  // --- autograd ----------------------------------------------------------------------------
  bool requires_grad() const { return checked().requires_grad || checked().grad_fn != nullptr; }
  Tensor& requires_grad_(bool value = true);  // leaves only
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  Tensor grad() const { return Tensor(checked().grad); }
  void zero_grad() { checked().grad.reset(); }
  const std::shared_ptr<Node>& grad_fn() const { return checked().grad_fn; }
  // Backpropagates from this tensor: a one-element tensor gets gradient 1; otherwise pass
  // `gradient` (same shape and dtype).
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // shares data, cut from the graph

  // --- views (no copy) and copies; differentiable (autograd/ops/view.cpp) ------------------
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy; one -1 allowed
  Tensor view(const Shape& shape) const;     // must be a view, or throws
  Tensor flatten() const { return reshape({-1}); }
  Tensor transpose(int64_t axis0, int64_t axis1) const;
  // The last two axes swapped; a 0-D or 1-D tensor is returned as it is (as in PyTorch).
  Tensor t() const { return dim() < 2 ? *this : transpose(-2, -1); }
  Tensor permute(const std::vector<int64_t>& order) const;
  Tensor slice(int64_t axis, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t axis, int64_t index) const;  // slice of one element, axis removed
  Tensor expand(const Shape& shape) const;           // broadcast to `shape` with stride 0
  Tensor squeeze(int64_t axis) const;
  Tensor unsqueeze(int64_t axis) const;
  Tensor contiguous() const;                   // self when already contiguous
  Tensor to(DType dtype) const;                // differentiable between float dtypes
  Tensor to(Device device) const;              // copy across devices; self when already there
  Tensor clone() const;                        // a contiguous copy

  // --- in-place, outside the graph (optimisers, initialisers) -----------------------------
  Tensor& copy_(const Tensor& src);  // src broadcast to this shape, converted to this dtype
  Tensor& fill_(double value);
  // this += src (broadcast to this shape, converted to this dtype) in one pass: a running sum
  // such as a float64 total of float32 losses. Not recorded for autograd, like copy_ and fill_.
  Tensor& add_(const Tensor& src);

  // --- math shorthands (autograd/ops) -------------------------------------------------------
  Tensor sum(const std::vector<int64_t>& axes = {}, bool keepdim = false) const;
  Tensor mean(const std::vector<int64_t>& axes = {}, bool keepdim = false) const;
  Tensor max(const std::vector<int64_t>& axes = {}, bool keepdim = false) const;
  Tensor argmax(int64_t axis, bool keepdim = false) const;
  Tensor matmul(const Tensor& other) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor pow(double exponent) const;
  Tensor relu() const;
  Tensor tanh() const;

 private:
  TensorImpl& checked() const {
    check(impl_ != nullptr, "tensor: use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// Builds a view of `base`'s storage with the given geometry (no autograd; see autograd/ops/view).
Tensor make_view(const Tensor& base, Shape shape, Strides strides, int64_t offset);

// `t` itself when contiguous, else a contiguous copy (no autograd: for kernels and host reads).
Tensor contiguous_copy_if_needed(const Tensor& t);

}  // namespace tg
