// Model: the token checks every model runs before its forward.
#include "nn/model.h"

#include <vector>

#include "autograd/ops.h"
#include "core/factories.h"
#include "kernels/backend.h"

namespace tg::nn {

std::vector<int64_t> Model::check_tokens(const char* model, const Tensor& tokens,
                                         int64_t min_len, int64_t max_len, int64_t vocab) {
  check(tokens.defined(), model, ": tokens: undefined tensor");
  check(tokens.dtype() == DType::Int64 && tokens.dim() == 2, model,
        ": tokens must be int64 [B, T], got ", dtype_name(tokens.dtype()), " ",
        shape_str(tokens.shape()));
  const int64_t len = tokens.size(1);
  if (min_len == max_len)
    check(len == min_len, model, ": tokens ", shape_str(tokens.shape()), ": T must be ", min_len);
  else
    check(len >= min_len && len <= max_len, model, ": tokens ", shape_str(tokens.shape()),
          ": T must be in [", min_len, ", ", max_len, "] (n_ctx)");
  // On another device, count the tokens outside the vocabulary there and read back one number;
  // the B * T tokens come to the host only to say where a bad one is.
  if (!tokens.device().is_cpu()) {
    const Device device = tokens.device();
    // While a step is recorded for replay nothing may be read back: the eager run before the
    // recording checked these same tokens (Backend::capture's contract).
    if (backend_for(device).capturing()) return {};
    const Tensor low = scalar(0, DType::Int64, device);
    const Tensor high = scalar(static_cast<double>(vocab), DType::Int64, device);
    const Tensor outside = sum(lt(tokens, low) + ge(tokens, high));
    if (outside.item<int64_t>() == 0) return {};
  }
  // One host read of B*T integers: cheap beside the forward, and the error can say where.
  const std::vector<int64_t> values = tokens.to_vector<int64_t>();
  for (size_t i = 0; i < values.size(); ++i)
    check(values[i] >= 0 && values[i] < vocab, model, ": token ", values[i], " at [",
          static_cast<int64_t>(i) / len, ", ", static_cast<int64_t>(i) % len,
          "] is outside the vocabulary [0, ", vocab, ")");
  return values;
}

}  // namespace tg::nn
