// CUDA adam_step (the twin of kernels/cpu/adam.cpp): one fused Adam/AdamW update over a whole
// list of parameters in one launch, with the global gradient and weight norms when asked.
//
// The launch reads a multi-tensor table passed by value as a kernel parameter (AdamTable, under
// 4 KB): for up to kMaxTensors parameters the four data pointers, the element count and the index
// of the parameter's first chunk of kChunk elements. A longer list takes several launches. Each
// block takes chunks c = blockIdx.x, blockIdx.x + gridDim.x, ..., finds the chunk's parameter by
// binary search in the table, and its threads update the chunk's elements i = threadIdx.x,
// threadIdx.x + blockDim.x, ... in adam_lanes' order. The file is compiled with --fmad=false
// (CMakeLists.txt), and nvcc's division and sqrt are IEEE by default, so every element rounds as
// the unfused chain of elementwise ops it replaces did, bit for bit (the CPU's fused loop may
// differ from both in the last bit where its compiler contracts a * b + c into an FMA).
//
// The step's scalars (kernels/adam_scalars.h) come by value from the host, or, with the step
// count kept on the device (AdamHyper::device_steps), from the count itself: each block's first
// thread computes lr and the scalars of step steps[0] + 1, and the call's last block to finish
// counts the step (CudaBackend::last_block_counter), with no launch of its own. Then nothing
// comes from the host, and a recorded step (a CUDA graph) replays as the next step.
//
// Norms: each thread sums g^2 (as read) and p^2 (after the update) of its elements of the chunk
// in double; a fixed shuffle tree and then the warps in order give the chunk's two partial sums,
// written to partials[2 * chunk]. Chunk numbers run over the whole list (across launches), so a
// second one-block kernel adds every chunk's partials in a fixed order, and the two sums are
// copied back once. Nothing depends on the grid size or on timing: every run gives the same bits.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/adam_step.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"
#include "kernels/dispatch.h"

// On the emulated device (tests/cuda_emulation) the host compiler builds the code below: no
// contraction there either, as with nvcc's --fmad=false on a GPU.
#ifdef TG_CUDA_HOST_EMULATION
#pragma STDC FP_CONTRACT OFF
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#endif

namespace tg::cuda {

namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarps = kBlockThreads / kWarp;
constexpr int kMaxTensors = 64;  // parameters per launch: the table stays under 4 KB
// Elements per block iteration: kInFlight a thread, all loaded before any is updated. (At 16 a
// thread, one after another, the nanda step's 226k parameters took 63 blocks on 132 SMs, each
// thread 16 dependent trips to memory: 20 us on the H200. Now 222 blocks, each thread one trip.)
constexpr int kInFlight = 4;
constexpr int64_t kChunk = kInFlight * kBlockThreads;

// The parameters of one launch. Chunks of parameter k: [first_chunk[k], first_chunk[k + 1]).
template <typename T>
struct AdamTable {
  T* p[kMaxTensors];
  const T* g[kMaxTensors];
  T* m[kMaxTensors];
  T* v[kMaxTensors];
  int64_t n[kMaxTensors];
  int64_t first_chunk[kMaxTensors + 1];
  int count;
};
static_assert(sizeof(AdamTable<double>) <= 4096, "AdamTable must fit a kernel's parameters");

__device__ inline float math_sqrt(float x) { return ::sqrtf(x); }
__device__ inline double math_sqrt(double x) { return ::sqrt(x); }

// adam_lanes (kernels/cpu/adam.cpp) for one element, in the same order.
template <bool kL2, bool kDecoupled, typename T>
__device__ inline void adam_element(T& p, T g, T& m, T& v, const AdamScalars<T>& s) {
  if constexpr (kL2) g = g + s.weight_decay * p;
  if constexpr (kDecoupled) p = p * s.decay;
  m = s.beta1 * m + s.one_minus_beta1 * g;
  v = s.beta2 * v + s.one_minus_beta2 * (g * g);
  p = p - s.step_size * (m / (math_sqrt(v) / s.bias2_sqrt + s.eps));
}

// The block's totals of a and b, in thread 0 (a fixed tree: lanes, then warps in order). Every
// thread of the block must call it; `sums` is the caller's static shared scratch.
__device__ inline void block_sum2(double& a, double& b, double (&sums)[2][kWarps]) {
  for (int step = kWarp / 2; step > 0; step /= 2) {
    a += __shfl_down_sync(kFullMask, a, step);
    b += __shfl_down_sync(kFullMask, b, step);
  }
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  if (lane == 0) {
    sums[0][warp] = a;
    sums[1][warp] = b;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    a = sums[0][0];
    b = sums[1][0];
    for (int w = 1; w < kWarps; ++w) {
      a += sums[0][w];
      b += sums[1][w];
    }
  }
  __syncthreads();  // sums may be written again by the caller's next iteration
}

// The step count on the device (AdamHyper::device_steps) and what turns it into the scalars.
struct DeviceStep {
  int64_t* steps = nullptr;  // null: the scalars come by value
  unsigned long long* blocks_done = nullptr;  // a zero counter (last_block_counter)
  bool count = false;  // the call's last launch: its last block to finish counts the step
  LrRule rule;
  double beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
};

// partials (when kNorms): the sums of g^2 and p^2 of this launch's chunk c at [2c] and [2c + 1].
// The step's scalars come by value (host_scalars) or, when step.steps is set, from the count:
// those of step steps[0] + 1, in double as on the host.
template <typename T, bool kL2, bool kDecoupled, bool kNorms>
__global__ void adam_kernel(AdamTable<T> table, AdamScalars<T> host_scalars, DeviceStep step,
                            double* partials) {
  kernel_prologue();
  __shared__ double sums[2][kWarps];
  __shared__ AdamScalars<T> device_scalars;
  if (step.steps != nullptr) {
    if (threadIdx.x == 0) {
      const int64_t t = step.steps[0] + 1;
      device_scalars = adam_scalars<T>(lr_at(step.rule, t - 1), t, step.beta1, step.beta2,
                                       step.eps, step.weight_decay);
    }
    __syncthreads();
  }
  const AdamScalars<T> s = step.steps != nullptr ? device_scalars : host_scalars;
  const int64_t chunks = table.first_chunk[table.count];
  // The trip count depends on blockIdx only: uniform across the block, as block_sum2 requires.
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    int lo = 0, hi = table.count - 1;  // the last k with first_chunk[k] <= c (k has chunks)
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (table.first_chunk[mid] <= c) lo = mid;
      else hi = mid - 1;
    }
    const int k = lo;
    const int64_t begin = (c - table.first_chunk[k]) * kChunk;
    const int64_t end = begin + kChunk < table.n[k] ? begin + kChunk : table.n[k];
    T* p = table.p[k];
    const T* g = table.g[k];
    T* m = table.m[k];
    T* v = table.v[k];
    double grad_sq = 0, weight_sq = 0;
    // This thread's elements i = begin + threadIdx.x + u kBlockThreads, in increasing order.
    T pi[kInFlight], gi[kInFlight], mi[kInFlight], vi[kInFlight];
    const int64_t i0 = begin + threadIdx.x;
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int64_t i = i0 + int64_t{u} * kBlockThreads;  // (the launch's block size)
      if (i >= end) break;
      pi[u] = p[i], gi[u] = g[i], mi[u] = m[i], vi[u] = v[i];
    }
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int64_t i = i0 + int64_t{u} * kBlockThreads;  // (the launch's block size)
      if (i >= end) break;
      adam_element<kL2, kDecoupled>(pi[u], gi[u], mi[u], vi[u], s);
      p[i] = pi[u];
      m[i] = mi[u];
      v[i] = vi[u];
      if constexpr (kNorms) {
        grad_sq += static_cast<double>(gi[u]) * static_cast<double>(gi[u]);
        weight_sq += static_cast<double>(pi[u]) * static_cast<double>(pi[u]);
      }
    }
    if constexpr (kNorms) {
      block_sum2(grad_sq, weight_sq, sums);
      if (threadIdx.x == 0) {
        partials[2 * c] = grad_sq;
        partials[2 * c + 1] = weight_sq;
      }
    }
  }
  // Every block's first thread read steps[0] before it counts itself here, so the last to count
  // may move it on: the next step's launches read the new count. The fence orders that read
  // before the count in the memory model's terms too (a relaxed atomic alone does not).
  if (step.count && threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(step.blocks_done, 1ull) == gridDim.x - 1ull) {
      ++step.steps[0];
      *step.blocks_done = 0;
    }
  }
}

// Counts a step that updates no element (the call's parameters are all empty): every call
// counts, as on the CPU.
__global__ void count_step_kernel(int64_t* steps) {
  kernel_prologue();
  if (blockIdx.x == 0 && threadIdx.x == 0) ++steps[0];
}

// out[0] = sum of partials[2c], out[1] = sum of partials[2c + 1] over c < chunks; one block.
__global__ void sum_partials_kernel(const double* partials, int64_t chunks, double* out) {
  kernel_prologue();
  __shared__ double sums[2][kWarps];
  double a = 0, b = 0;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) {
    a += partials[2 * c];
    b += partials[2 * c + 1];
  }
  block_sum2(a, b, sums);
  if (threadIdx.x == 0) {
    out[0] = a;
    out[1] = b;
  }
}

int64_t chunks_of(int64_t n) { return (n + kChunk - 1) / kChunk; }

}  // namespace

void CudaBackend::adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                            const std::vector<Tensor>& exp_avg,
                            const std::vector<Tensor>& exp_avg_sq, const AdamHyper& hyper,
                            double* grad_norm_sq, double* weight_norm_sq) {
  check_adam_step(device(), params, grads, exp_avg, exp_avg_sq, hyper);
  if (grad_norm_sq) *grad_norm_sq = 0;
  if (weight_norm_sq) *weight_norm_sq = 0;
  int64_t total_chunks = 0;
  for (const Tensor& p : params) total_chunks += chunks_of(p.numel());
  const bool on_device = hyper.device_steps.defined();
  DeviceGuard guard(index_);
  cudaStream_t stream = current_stream(index_);
  const DType dtype = params.empty() ? DType::Float32 : params[0].dtype();
  DeviceStep step;
  if (on_device) {
    step.steps = hyper.device_steps.data<int64_t>();
    step.blocks_done = last_block_counter();
    step.rule = hyper.lr_rule;
    step.beta1 = hyper.beta1;
    step.beta2 = hyper.beta2;
    step.eps = hyper.eps;
    step.weight_decay = hyper.weight_decay;
  }
  if (total_chunks == 0) {  // no elements (the norms are 0); the step still counts
    if (on_device) launch(count_step_kernel, 1, kWarp, stream, step.steps);
    return;
  }
  const bool norms = grad_norm_sq != nullptr || weight_norm_sq != nullptr;
  Tensor partials;
  if (norms) partials = Tensor::empty({2 * total_chunks}, DType::Float64, device());
  dispatch_floating(dtype, "adam_step", [&]<typename T>() {
    const AdamScalars<T> s = on_device ? AdamScalars<T>{} : adam_scalars<T>(hyper);
    int64_t launched_chunks = 0;  // chunks of earlier launches: this launch's partials start there
    const auto launch_table = [&](const AdamTable<T>& table, double* launch_partials) {
      const int64_t chunks = table.first_chunk[table.count];
      const unsigned grid = static_cast<unsigned>(std::min<int64_t>(chunks, int64_t{1} << 16));
      DeviceStep launch_step = step;
      launch_step.count = on_device && launched_chunks + chunks == total_chunks;  // the last
      dispatch_weight_decay(hyper, [&]<bool kL2, bool kDecoupled>() {
        if (norms)
          launch(adam_kernel<T, kL2, kDecoupled, true>, grid, kBlockThreads, stream, table, s,
                 launch_step, launch_partials);
        else
          launch(adam_kernel<T, kL2, kDecoupled, false>, grid, kBlockThreads, stream, table, s,
                 launch_step, launch_partials);
      });
    };
    AdamTable<T> table{};
    for (size_t i = 0; i < params.size(); ++i) {
      const int64_t n = params[i].numel();
      if (n == 0) continue;
      const int k = table.count;
      table.p[k] = params[i].data<T>();
      table.g[k] = grads[i].data<T>();
      table.m[k] = exp_avg[i].data<T>();
      table.v[k] = exp_avg_sq[i].data<T>();
      table.n[k] = n;
      table.first_chunk[k + 1] = table.first_chunk[k] + chunks_of(n);
      ++table.count;
      if (table.count == kMaxTensors) {
        launch_table(table, norms ? partials.data<double>() + 2 * launched_chunks : nullptr);
        launched_chunks += table.first_chunk[table.count];
        table = AdamTable<T>{};
      }
    }
    if (table.count > 0)
      launch_table(table, norms ? partials.data<double>() + 2 * launched_chunks : nullptr);
  });
  if (!norms) return;
  const Tensor sums = Tensor::empty({2}, DType::Float64, device());
  launch(sum_partials_kernel, 1, kBlockThreads, stream, partials.data<double>(), total_chunks,
         sums.data<double>());
  double host[2] = {0, 0};
  copy_to_host(sums, host);  // waits for the stream
  if (grad_norm_sq) *grad_norm_sq = host[0];
  if (weight_norm_sq) *weight_norm_sq = host[1];
}

}  // namespace tg::cuda
