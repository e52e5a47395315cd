// CUDA fused token + position embedding and its backward (Backend::embed_with_positions).
//
// Forward: one thread per output element (b, t, d) of [B, T, D] reads W_E[tokens[b, t], d] and
// W_pos[t, d] and writes their sum in T: the add the default route (index_select, then a
// broadcast add) does, so the two agree bit for bit, without the gathered [B, T, D] in between.
//
// Backward, deterministic and without float atomics, so bitwise reproducible from run to run:
//  - dW_E is index_add(dy, tokens, V) (index.cu): the positions of each token, sorted, summed in
//    groups (index_add_sorted.h: the CPU's order for a token whose positions lie in one group,
//    within rounding of it otherwise), or by the tiled kernel in the CPU's order exactly.
//  - dW_pos: a block per 32 columns (t, d) sums dy[b, t, d] over b, 32 rows at a time, then the
//    32 partial sums in a fixed order, in double for float32 as the CPU's reduce does; rows
//    t >= T get 0.
// Tokens are range-checked on the device first, with index_select's message.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {

// out[b, t, d] = W_E[tokens[b, t], d] + W_pos[t, d] for the n = B * T * D output elements.
template <typename T>
__global__ void embed_with_positions_kernel(const T* W_E, const T* W_pos, const int64_t* tokens,
                                            T* out, int64_t n, int64_t len, int64_t width) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(e, n) {
    const int64_t bt = e / width, d = e % width, t = bt % len;
    out[e] = W_E[tokens[bt] * width + d] + W_pos[t * width + d];
  }
}

// dW_pos[t, d] = sum over b of dy[b, t, d] for t < len, else 0. dy is [batch, columns] with
// columns = len * width, and dW_pos's first `columns` elements are those sums (t < len).
// Each block of kColumns x kRowGroups threads takes kColumns adjacent columns: thread (x, y) sums
// rows y, y + kRowGroups, ... of column x in double (a warp reads 32 adjacent elements of one
// row: coalesced), then thread (x, 0) adds the kRowGroups partial sums in order. The order is
// fixed, so the bits are the same every run, and within rounding of the CPU's increasing b.
// (One thread per column summing every row, as before, left 384 threads each walking 3,830 rows
// for nanda's shape: 240 us, slower than the unfused reduce.)
constexpr int kColumns = 32, kRowGroups = 32;

template <typename T>
__global__ void position_grad_kernel(const T* dy, T* dW_pos, int64_t batch, int64_t columns,
                                     int64_t n_out) {
  kernel_prologue();
  using Acc = double;  // float32 sums in double, as on the CPU
  __shared__ Acc partial[kRowGroups][kColumns + 1];  // + 1: no bank conflicts down a column
  const int x = static_cast<int>(threadIdx.x), y = static_cast<int>(threadIdx.y);
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColumns + x;
  Acc sum = 0;
  if (c < columns)
    for (int64_t b = y; b < batch; b += kRowGroups) sum += static_cast<Acc>(dy[b * columns + c]);
  partial[y][x] = sum;
  __syncthreads();
  if (y == 0 && c < n_out) {
    Acc total = 0;
    for (int r = 0; r < kRowGroups; ++r) total += partial[r][x];
    dW_pos[c] = static_cast<T>(total);  // 0 for the rows t >= len
  }
}

// Throws index_select's message when a token lies outside [0, vocab). Waits for the stream once.
void check_tokens(const Tensor& tokens, int64_t vocab) {
  const int64_t i = first_out_of_range(tokens, vocab);
  if (i < 0) return;
  throw Error(cat("embedding: index ", tokens.to_vector<int64_t>()[i], " at position ", i,
                  " is out of range for ", vocab, " table rows"));
}

}  // namespace

Tensor CudaBackend::embed_with_positions(const Tensor& W_E_in, const Tensor& W_pos_in,
                                         const Tensor& tokens_in) {
  check_on(W_E_in, device(), "embed_with_positions", "W_E");
  check_on(W_pos_in, device(), "embed_with_positions", "W_pos");
  check_on(tokens_in, device(), "embed_with_positions", "tokens");
  const Tensor W_E = contiguous_copy_if_needed(W_E_in);
  const Tensor W_pos = contiguous_copy_if_needed(W_pos_in);
  const Tensor tokens = contiguous_copy_if_needed(tokens_in);
  check_embedding_positions("embed_with_positions", tokens, W_pos.size(0));
  const int64_t batch = tokens.size(0), len = tokens.size(1), width = W_E.size(1);
  DeviceGuard guard(index_);
  check_tokens(tokens, W_E.size(0));
  Tensor out = Tensor::empty({batch, len, width}, W_E.dtype(), device());
  dispatch_floating(W_E.dtype(), "embed_with_positions", [&]<typename T>() {
    const int64_t n = out.numel();
    if (n == 0) return;
    launch(embed_with_positions_kernel<T>, grid_for(n), kBlockThreads, current_stream(index_),
           W_E.data<T>(), W_pos.data<T>(), tokens.data<int64_t>(), out.data<T>(), n, len, width);
  });
  return out;
}

void CudaBackend::embed_with_positions_backward(const Tensor& dy_in, const Tensor& tokens_in,
                                                int64_t vocab, int64_t n_pos, Tensor& dW_E,
                                                Tensor& dW_pos) {
  check_on(dy_in, device(), "embed_with_positions_backward", "dy");
  check_on(tokens_in, device(), "embed_with_positions_backward", "tokens");
  const Tensor dy = contiguous_copy_if_needed(dy_in);
  check_embedding_positions("embed_with_positions_backward", tokens_in, n_pos, dy);
  const int64_t batch = dy.size(0), len = dy.size(1), width = dy.size(2);
  dispatch_floating(dy.dtype(), "embed_with_positions_backward", [&]<typename T>() {
    dW_E = index_add(dy, tokens_in, vocab);  // checks the tokens too
    dW_pos = Tensor::empty({n_pos, width}, dy.dtype(), device());
    if (dW_pos.numel() == 0) return;
    DeviceGuard guard(index_);
    const int64_t n_out = dW_pos.numel(), columns = len * width;  // dy's rows, T <= P
    launch(position_grad_kernel<T>, static_cast<unsigned>((n_out + kColumns - 1) / kColumns),
           dim3(kColumns, kRowGroups), current_stream(index_), dy.data<T>(), dW_pos.data<T>(),
           batch, columns, n_out);
  });
}

}  // namespace tg::cuda
