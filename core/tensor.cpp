// Tensor: allocation, metadata queries, host conversion and in-place fills (the data side only).
#include "core/tensor.h"

#include <cstring>

#include "autograd/grad_mode.h"
#include "kernels/backend.h"

namespace tg {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)  // (hot: the message is built only on failure)
    if (d < 0) throw Error(cat("empty: negative size in shape ", shape_str(shape)));
  int64_t nbytes = 0;
  const auto element_size = static_cast<int64_t>(dtype_size(dtype));
  if (__builtin_mul_overflow(tg::numel(shape), element_size, &nbytes))
    throw Error(cat("empty: shape ", shape_str(shape), " of ", dtype_name(dtype),
                    " needs more bytes than int64 can count"));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = backend_for(device).allocate(static_cast<size_t>(nbytes));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// The lowest and highest element a non-empty view reaches in its storage; false when int64 cannot
// hold them (no storage is that large).
static bool element_span(const Shape& shape, const Strides& strides, int64_t offset,
                         int64_t& lowest, int64_t& highest) {
  lowest = highest = offset;
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    int64_t reach = 0;
    if (__builtin_mul_overflow(strides[axis], shape[axis] - 1, &reach) ||
        __builtin_add_overflow(reach < 0 ? lowest : highest, reach, reach < 0 ? &lowest : &highest))
      return false;
  }
  return true;
}

// Every element of a view must lie inside its storage: make_view is public, and a view past the
// end would read or write other memory with no error at all.
static void check_view_in_storage(const Tensor& base, const Shape& shape, const Strides& strides,
                                  int64_t offset) {
  // Every view op passes through here: the messages are built only on failure.
  if (shape.size() != strides.size())
    throw Error(cat("make_view: shape ", shape_str(shape), " and strides ", shape_str(strides),
                    " differ in length"));
  for (int64_t d : shape)  // before the empty case: a negative size would count as none
    if (d < 0) throw Error(cat("make_view: negative size in shape ", shape_str(shape)));
  if (numel(shape) == 0) return;
  int64_t lowest = 0, highest = 0;
  const bool fits = element_span(shape, strides, offset, lowest, highest);
  const auto elements = static_cast<int64_t>(base.storage()->nbytes() / dtype_size(base.dtype()));
  if (!fits || lowest < 0 || highest >= elements)
    throw Error(cat("make_view: shape ", shape_str(shape), " with strides ", shape_str(strides),
                    " at offset ", offset, " reaches outside its storage of ", elements,
                    " elements"));
}

Tensor make_view(const Tensor& base, Shape shape, Strides strides, int64_t offset) {
  check_view_in_storage(base, shape, strides, offset);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t axis) const {
  return shape()[normalize_axis(axis, shape(), "size")];
}

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to be out of place (strides of empty axes vary)
  int64_t expected = 1;
  for (size_t i = shape().size(); i-- > 0;) {
    if (shape()[i] == 1) continue;  // the stride of a size-1 axis never matters
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  const Tensor dense = contiguous_copy_if_needed(*this);
  std::vector<T> out(static_cast<size_t>(numel()));
  if (out.empty()) return out;
  auto convert = [&](auto* src) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = convert_value<T>(src[i]);
  };
  if (dense.dtype() == dtype_of<T>() && dense.device().is_cpu()) {
    std::memcpy(out.data(), dense.raw_data(), out.size() * sizeof(T));
    return out;
  }
  std::vector<char> host(out.size() * dtype_size(dense.dtype()));
  backend_for(dense.device()).copy_to_host(dense, host.data());
  switch (dense.dtype()) {
    case DType::Float32: convert(reinterpret_cast<float*>(host.data())); break;
    case DType::Float64: convert(reinterpret_cast<double*>(host.data())); break;
    case DType::Int64: convert(reinterpret_cast<int64_t*>(host.data())); break;
  }
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

double Tensor::item() const {
  check(numel() == 1, "item: tensor of shape ", shape_str(shape()),
        " has ", numel(), " elements, not 1");
  return to_vector<double>()[0];
}

Tensor& Tensor::requires_grad_(bool value) {
  check(is_leaf(), "requires_grad_: only leaf tensors can change requires_grad (this one, of shape ",
        shape_str(shape()), ", was computed by an op; use detach() first)");
  check(!value || is_floating(dtype()), "requires_grad_: ", dtype_name(dtype()), " tensor of shape ",
        shape_str(shape()), " cannot require gradients");
  impl()->requires_grad = value;
  return *this;
}

Tensor Tensor::detach() const {
  return make_view(*this, shape(), strides(), offset());
}

// A destination with a broadcast axis (stride 0, more than one element) would have several
// threads write one element: a lost update on a GPU. PyTorch refuses it too.
static void check_distinct_elements(const Tensor& dst, const char* op) {
  for (size_t axis = 0; axis < dst.shape().size(); ++axis)
    check(dst.shape()[axis] <= 1 || dst.strides()[axis] != 0, op, ": destination of shape ",
          shape_str(dst.shape()), " has several elements in one memory location (axis ", axis,
          " has stride 0); write to a contiguous() copy instead");
}

// The bytes [first, last] a tensor's elements span in its storage (empty: last < first).
static std::pair<int64_t, int64_t> byte_span(const Tensor& t) {
  if (t.numel() == 0) return {0, -1};
  int64_t lowest = 0, highest = 0;  // inside the storage: make_view checked that it fits
  element_span(t.shape(), t.strides(), t.offset(), lowest, highest);
  const auto size = static_cast<int64_t>(dtype_size(t.dtype()));
  return {lowest * size, (highest + 1) * size - 1};
}

// The source an in-place write can read as it writes: src itself, unless src shares memory with
// the destination in another arrangement (a.add_(a.t()), a[1:].copy_(a[:-1])), where the kernel
// would read elements it has already overwritten. Then a copy of src, as NumPy does; PyTorch
// refuses such writes instead. The same view (a.add_(a)) reads each element before writing it.
static Tensor source_unaliased(const Tensor& src, const Tensor& dst) {
  if (src.storage() != dst.storage()) return src;
  if (src.dtype() == dst.dtype() && src.offset() == dst.offset() &&
      src.strides() == dst.strides())
    return src;
  const auto [src_first, src_last] = byte_span(src);
  const auto [dst_first, dst_last] = byte_span(dst);
  if (src_last < dst_first || dst_last < src_first) return src;
  return src.clone();
}

Tensor& Tensor::copy_(const Tensor& src) {
  check(!(GradMode::enabled() && requires_grad()), "copy_: in-place write to a tensor of shape ",
        shape_str(shape()), " that requires grad; wrap it in NoGradGuard");
  check(src.device() == device(), "copy_: source is on ", src.device().str(),
        ", destination on ", device().str());
  // Checked here so that a mismatch is reported as copy_'s, not as the expand used below.
  check(broadcast_shapes(src.shape(), shape(), "copy_") == shape(), "copy_: source ",
        shape_str(src.shape()), " cannot be broadcast to destination ", shape_str(shape()));
  check_distinct_elements(*this, "copy_");
  backend_for(device()).copy(source_unaliased(src.detach().expand(shape()), *this), *this);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& src) {
  check(!(GradMode::enabled() && requires_grad()), "add_: in-place write to a tensor of shape ",
        shape_str(shape()), " that requires grad; wrap it in NoGradGuard");
  check(src.device() == device(), "add_: source is on ", src.device().str(), ", destination on ",
        device().str());
  check(broadcast_shapes(src.shape(), shape(), "add_") == shape(), "add_: source ",
        shape_str(src.shape()), " cannot be broadcast to destination ", shape_str(shape()));
  check_distinct_elements(*this, "add_");
  backend_for(device()).add_into(source_unaliased(src.detach().expand(shape()), *this), *this);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check(!(GradMode::enabled() && requires_grad()), "fill_: in-place write to a tensor of shape ",
        shape_str(shape()), " that requires grad; wrap it in NoGradGuard");
  check_scalar_fits(value, dtype(), "fill_");
  backend_for(device()).fill(*this, value);
  storage()->bump_version();
  return *this;
}

// Cross-device copies go through the devices' host transfers; they are not recorded in the graph.
Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  const Tensor src = contiguous_copy_if_needed(*this);  // on its own device
  Tensor out = Tensor::empty(shape(), dtype(), target);
  if (src.device().is_cpu()) {
    backend_for(target).copy_from_host(src.raw_data(), out);
  } else if (target.is_cpu()) {
    backend_for(src.device()).copy_to_host(src, out.raw_data());
  } else {  // between two GPUs, through the host
    std::vector<char> host(numel() * dtype_size(dtype()));
    backend_for(src.device()).copy_to_host(src, host.data());
    backend_for(target).copy_from_host(host.data(), out);
  }
  return out;
}

Tensor contiguous_copy_if_needed(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  backend_for(t.device()).copy(t, out);
  return out;
}

}  // namespace tg
