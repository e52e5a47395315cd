// A CUDA device emulated on the host, so that the whole CUDA backend — runtime calls, launches and
// every kernel — runs and is tested on machines without a GPU (the `emulated_*` test programs,
// tests/CMakeLists.txt). The backend's sources compile as plain C++ with this header force-included
// (-include) and TG_CUDA_HOST_EMULATION defined; the headers beside it stand in for
// <cuda_runtime.h> and cuBLAS's.
//
// What it emulates: the kernel language (__global__, threadIdx, __shared__, __syncthreads, warp
// shuffles, integer atomics), one device ("cuda:0") whose memory is host memory, and a stream that
// runs everything at once. The threads of a block are fibers on the launching host thread, run
// until each finishes or waits at a barrier; __shared__ variables become function statics (one
// block runs at a time); __syncthreads() is a barrier over the block and a shuffle one over the
// warp. It checks semantics — index math, edges,
// barriers, reduction order, what the host code does with the results — not speed, and not
// the GPU's memory model: code that races or relies on uninitialised shared memory is not caught.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <vector>

#include <ucontext.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

// ---- the kernel language ------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;

struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

constexpr int warpSize = 32;

namespace tg_emulation {

// Every CUDA thread of a block is a fiber (ucontext) on the launching host thread. A fiber runs
// until it finishes or waits at a barrier — __syncthreads() for the block, a shuffle or
// __syncwarp() for its warp — and the scheduler resumes the waiting fibers once every unfinished
// thread of the block (or warp) has arrived. One host thread, no locks, and the same interleaving
// every run.
// A saved execution context and the switch between two. On x86-64 a few instructions that save
// the callee-saved registers and swap stacks (glibc's swapcontext makes a system call per switch,
// which made the emulator ten times slower); elsewhere ucontext.
#if defined(__x86_64__)
struct Context {
  void* sp = nullptr;
};
extern "C" void tg_emulation_switch(void** save_sp, void* load_sp);
// Weak: every translation unit that includes this header assembles a copy; the linker keeps one.
asm(R"(
  .pushsection .text
  .weak tg_emulation_switch
  .type tg_emulation_switch, @function
tg_emulation_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size tg_emulation_switch, .-tg_emulation_switch
  .popsection
)");
inline void switch_context(Context& from, Context& to) { tg_emulation_switch(&from.sp, to.sp); }
// A context that starts `entry` (which never returns) on the stack [stack, stack + size).
inline void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
  auto top = (reinterpret_cast<uintptr_t>(stack) + size) & ~uintptr_t{15};
  void** slot = reinterpret_cast<void**>(top - 16);  // entry's "return address": rsp % 16 == 8 on entry
  *slot = reinterpret_cast<void*>(entry);
  for (int saved = 0; saved < 6; ++saved) *--slot = nullptr;  // rbp, rbx, r12 to r15
  c.sp = slot;
}
#else
struct Context {
  ucontext_t uc;
};
inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
inline void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

struct Fiber {
  Context context;
  char* stack = nullptr;
  dim3 thread;
  int lane = 0, warp = 0;
  enum State { Ready, AtBlockBarrier, AtWarpBarrier, Done } state = Ready;
  void* fake_stack = nullptr;  // AddressSanitizer's bookkeeping while switched out
};

struct Block {
  std::vector<Fiber> fibers;
  Context scheduler;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
  std::vector<uint64_t> slots;  // one shuffle slot per thread of the block
  Fiber* running = nullptr;
  void (*run)(const void*) = nullptr;  // runs the kernel with its arguments, as one thread
  const void* run_state = nullptr;
};

inline thread_local Block* current_block = nullptr;

constexpr size_t kFiberStackBytes = size_t{256} << 10;

#if defined(__SANITIZE_ADDRESS__)
inline void start_switch(void** fake_stack, const void* bottom, size_t size) {
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
}
inline void finish_switch(void* fake_stack, const void** bottom, size_t* size) {
  __sanitizer_finish_switch_fiber(fake_stack, bottom, size);
}
#else
inline void start_switch(void**, const void*, size_t) {}
inline void finish_switch(void*, const void**, size_t*) {}
#endif

// From a fiber back to the scheduler, in `state`; returns when the scheduler resumes it.
inline void wait_at(Fiber::State state) {
  Block& b = *current_block;
  Fiber& f = *b.running;
  f.state = state;
  start_switch(&f.fake_stack, b.scheduler_stack_bottom, b.scheduler_stack_size);
  switch_context(f.context, b.scheduler);
  finish_switch(f.fake_stack, &b.scheduler_stack_bottom, &b.scheduler_stack_size);
}

inline Fiber& self() { return *current_block->running; }

template <typename T>
T exchange(T value, int source_lane) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>,
                "emulated shuffles move values of at most 8 bytes");
  Block& b = *current_block;
  const Fiber& f = self();
  const size_t first = static_cast<size_t>(f.warp) * warpSize;
  std::memcpy(&b.slots[first + f.lane], &value, sizeof(T));
  wait_at(Fiber::AtWarpBarrier);  // every lane has posted
  T out;
  std::memcpy(&out, &b.slots[first + source_lane], sizeof(T));
  wait_at(Fiber::AtWarpBarrier);  // every lane has read
  return out;
}

}  // namespace tg_emulation

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

inline void __syncthreads() { tg_emulation::wait_at(tg_emulation::Fiber::AtBlockBarrier); }
inline void __syncwarp(unsigned = 0xffffffffu) {
  tg_emulation::wait_at(tg_emulation::Fiber::AtWarpBarrier);
}

// The lane masks are not emulated: every lane of the warp must take part, as this project's
// kernels promise (kernels/cuda/launch.h).
template <typename T>
T __shfl_sync(unsigned, T value, int source_lane, int width = warpSize) {
  const int lane = tg_emulation::self().lane;
  return tg_emulation::exchange(value, (lane / width) * width + source_lane % width);
}
template <typename T>
T __shfl_down_sync(unsigned, T value, unsigned delta, int width = warpSize) {
  const int lane = tg_emulation::self().lane;
  const int source = lane % width + static_cast<int>(delta) < width ? lane + delta : lane;
  return tg_emulation::exchange(value, source);
}
template <typename T>
T __shfl_up_sync(unsigned, T value, unsigned delta, int width = warpSize) {
  const int lane = tg_emulation::self().lane;
  const int source = lane % width >= static_cast<int>(delta) ? lane - delta : lane;
  return tg_emulation::exchange(value, source);
}
template <typename T>
T __shfl_xor_sync(unsigned, T value, int mask, int width = warpSize) {
  const int lane = tg_emulation::self().lane;
  const int source = lane ^ mask;
  return tg_emulation::exchange(value, (source / width == lane / width) ? source : lane);
}

// Integer atomics (the project uses no floating-point ones: its sums are deterministic). One
// host thread runs a launch, but host code on other threads may launch concurrently.
template <typename T>
T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}
template <typename T>
T atomicExch(T* address, T value) {
  return std::atomic_ref<T>(*address).exchange(value);
}
template <typename T>
T atomicCAS(T* address, T expected, T desired) {
  std::atomic_ref<T>(*address).compare_exchange_strong(expected, desired);
  return expected;
}
template <typename T>
T atomicMin(T* address, T value) {
  std::atomic_ref<T> a(*address);
  T old = a.load();
  while (value < old && !a.compare_exchange_weak(old, value)) {
  }
  return old;
}
template <typename T>
T atomicMax(T* address, T value) {
  std::atomic_ref<T> a(*address);
  T old = a.load();
  while (value > old && !a.compare_exchange_weak(old, value)) {
  }
  return old;
}

template <typename T>
T __ldg(const T* p) {
  return *p;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __int_as_float(int v) {
  float f;
  std::memcpy(&f, &v, sizeof f);
  return f;
}
inline int __float_as_int(float f) {
  int v;
  std::memcpy(&v, &f, sizeof v);
  return v;
}

namespace tg_emulation {

// The body of every fiber: runs the kernel as the current thread of the current block, then
// hands back to the scheduler for good.
[[noreturn]] inline void fiber_main() {
  Block& b = *current_block;
  finish_switch(nullptr, &b.scheduler_stack_bottom, &b.scheduler_stack_size);
  b.run(b.run_state);
  b.running->state = Fiber::Done;
  start_switch(nullptr, b.scheduler_stack_bottom, b.scheduler_stack_size);
  switch_context(b.running->context, b.scheduler);
  std::abort();  // a finished fiber is never resumed
}

// Resumes each unfinished fiber in turn until all are done, releasing a barrier once every
// unfinished thread it spans has arrived. A kernel whose threads wait at different barriers
// (a bug on a GPU too) stops the program with a message rather than hanging.
inline void schedule(Block& b) {
  const size_t warps = (b.fibers.size() + warpSize - 1) / warpSize;
  for (;;) {
    bool any_ready = false;
    for (Fiber& f : b.fibers) {
      if (f.state != Fiber::Ready) continue;
      any_ready = true;
      threadIdx = f.thread;
      b.running = &f;
      void* fake_stack = nullptr;
      start_switch(&fake_stack, f.stack, kFiberStackBytes);
      switch_context(b.scheduler, f.context);
      finish_switch(fake_stack, nullptr, nullptr);
    }
    if (any_ready) continue;
    bool released = false, all_done = true;
    for (size_t w = 0; w < warps; ++w) {  // a warp whose live lanes all wait at its barrier
      const size_t lo = w * warpSize, hi = std::min(b.fibers.size(), lo + warpSize);
      bool waiting = false, all_there = true;
      for (size_t i = lo; i < hi; ++i) {
        const Fiber::State s = b.fibers[i].state;
        waiting |= s == Fiber::AtWarpBarrier;
        all_there &= s == Fiber::AtWarpBarrier || s == Fiber::Done;
      }
      if (waiting && all_there) {
        for (size_t i = lo; i < hi; ++i)
          if (b.fibers[i].state == Fiber::AtWarpBarrier) b.fibers[i].state = Fiber::Ready;
        released = true;
      }
    }
    if (released) continue;
    bool block_waiting = false, block_all_there = true;
    for (const Fiber& f : b.fibers) {
      all_done &= f.state == Fiber::Done;
      block_waiting |= f.state == Fiber::AtBlockBarrier;
      block_all_there &= f.state == Fiber::AtBlockBarrier || f.state == Fiber::Done;
    }
    if (all_done) return;
    if (block_waiting && block_all_there) {
      for (Fiber& f : b.fibers)
        if (f.state == Fiber::AtBlockBarrier) f.state = Fiber::Ready;
      continue;
    }
    std::fprintf(stderr, "emulated CUDA: deadlock in block (%u, %u, %u): threads wait at "
                 "different barriers (a __syncthreads or shuffle not reached by all)\n",
                 blockIdx.x, blockIdx.y, blockIdx.z);
    std::abort();
  }
}

// Fiber stacks, kept for the next launch on this host thread.
inline std::vector<std::unique_ptr<char[]>>& stack_pool() {
  static thread_local std::vector<std::unique_ptr<char[]>> pool;
  return pool;
}

}  // namespace tg_emulation

// kernel<<<grid, block>>>(args...): the blocks one after another, each as a set of fibers.
template <typename... Params, typename... Args>
void emulate_launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args... args) {
  using namespace tg_emulation;
  const size_t threads = static_cast<size_t>(block.x) * block.y * block.z;
  auto& stacks = stack_pool();
  while (stacks.size() < threads) stacks.emplace_back(new char[kFiberStackBytes]);
  struct Launch {
    void (*kernel)(Params...);
    std::tuple<Args...> args;
  } launch{kernel, std::tuple<Args...>(args...)};
  Block b;
  b.run = [](const void* state) {
    const Launch& l = *static_cast<const Launch*>(state);
    std::apply(l.kernel, l.args);
  };
  b.run_state = &launch;
  b.fibers.resize(threads);
  b.slots.assign(((threads + warpSize - 1) / warpSize) * warpSize, 0);
  Block* const outer = current_block;
  const dim3 outer_thread = threadIdx;
  current_block = &b;
  blockDim = block;
  gridDim = grid;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        blockIdx = dim3(bx, by, bz);
        size_t i = 0;
        for (unsigned tz = 0; tz < block.z; ++tz)
          for (unsigned ty = 0; ty < block.y; ++ty)
            for (unsigned tx = 0; tx < block.x; ++tx, ++i) {
              Fiber& f = b.fibers[i];
              f.thread = dim3(tx, ty, tz);
              f.lane = static_cast<int>(i % warpSize);
              f.warp = static_cast<int>(i / warpSize);
              f.state = Fiber::Ready;
              f.stack = stacks[i].get();
              make_context(f.context, f.stack, kFiberStackBytes, &fiber_main);
            }
        schedule(b);
      }
  current_block = outer;
  threadIdx = outer_thread;
}

// ---- the runtime: one device, host memory, one immediate stream --------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidDevice = 101,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
struct CUstream_st {};
using cudaStream_t = CUstream_st*;
constexpr unsigned cudaStreamNonBlocking = 1;

namespace tg_emulation {
inline thread_local cudaError_t last_error = cudaSuccess;
inline thread_local int current_device = 0;
inline cudaError_t fail(cudaError_t e) { return last_error = e; }
// The emulated device's memory size: large enough for the tests, small enough that a test of
// out-of-memory handling can reach it.
constexpr size_t kDeviceBytes = size_t{1} << 32;
inline std::atomic<size_t> allocated_bytes{0};
}  // namespace tg_emulation

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  }
  return "cudaErrorUnknown";
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
  }
  return "unknown error";
}
inline cudaError_t cudaGetLastError() {
  const cudaError_t e = tg_emulation::last_error;
  tg_emulation::last_error = cudaSuccess;
  return e;
}
inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* device) {
  *device = tg_emulation::current_device;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int device) {
  if (device != 0) return tg_emulation::fail(cudaErrorInvalidDevice);
  tg_emulation::current_device = device;
  return cudaSuccess;
}
// Each allocation remembers its size just before the returned (256-byte aligned) address.
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  constexpr size_t kHeader = 256;
  if (bytes > tg_emulation::kDeviceBytes - tg_emulation::allocated_bytes.load())
    return tg_emulation::fail(cudaErrorMemoryAllocation);
  char* base = static_cast<char*>(std::aligned_alloc(kHeader, kHeader + ((bytes + kHeader - 1) / kHeader) * kHeader));
  if (base == nullptr) return tg_emulation::fail(cudaErrorMemoryAllocation);
  std::memcpy(base, &bytes, sizeof bytes);
  tg_emulation::allocated_bytes += bytes;
  *p = base + kHeader;
  return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
  if (p == nullptr) return cudaSuccess;
  char* base = static_cast<char*>(p) - 256;
  size_t bytes;
  std::memcpy(&bytes, base, sizeof bytes);
  tg_emulation::allocated_bytes -= bytes;
  std::free(base);
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *total_bytes = tg_emulation::kDeviceBytes;
  *free_bytes = tg_emulation::kDeviceBytes - tg_emulation::allocated_bytes.load();
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes > 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t = nullptr) {
  return cudaMemcpy(dst, src, bytes, kind);
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t = nullptr) {
  if (bytes > 0) std::memset(dst, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  static CUstream_st the_stream;
  *stream = &the_stream;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

// ---- cuBLAS: only its status codes (the backend names them in errors; it calls no cuBLAS) -------
enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
};
