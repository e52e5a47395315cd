// A CUDA device emulated on the host, so that the whole CUDA backend — runtime calls, launches and
// every kernel — runs and is tested on machines without a GPU (the `emulated_*` test programs,
// tests/CMakeLists.txt). The backend's sources compile as plain C++ with this header force-included
// (-include) and TG_CUDA_HOST_EMULATION defined; the headers beside it stand in for
// <cuda_runtime.h> and cuBLAS's.
//
// What it emulates: the kernel language (__global__, threadIdx, __shared__, __syncthreads, warp
// shuffles, integer atomics, fences), one device ("cuda:0") whose memory is host memory, and one stream
// that runs everything at once — except while it captures a graph. The threads of a block are
// fibers on the launching host thread, run until each finishes or waits at a barrier; __shared__
// variables become function statics (one block runs at a time); __syncthreads() is a barrier over
// the block and a shuffle one over the warp. It checks semantics — index math, edges,
// barriers, reduction order, what the host code does with the results — not speed.
//
// Races it makes visible rather than proves absent: one warp at a time runs as far as it can,
// and TG_EMULATION_SCHEDULE=reverse runs the blocks, the warps and the lanes last to first,
// switching warps at every warp barrier (schedule()), so a read that needs a barrier before it
// gets another value in one of the two orders; the Release build's CTest runs every emulated
// test both ways. Fresh device memory and blocks released to the caching allocator read as NaN
// (0xFF bytes), so a kernel that reads what nothing wrote shows. What it cannot see: a shuffle
// orders memory here as __syncwarp() does, which the CUDA memory model does not promise; and
// __shared__ memory holds what the block before left (GCC ignores a section attribute on a
// template's statics, so they cannot be found and refilled).
//
// cudaProfilerStart and cudaProfilerStop record which kernels ran between them
// (tg_emulation::profiler_ranges), for a test of what a profiler would see.
//
// Stream capture and graphs follow the real API (signatures, enum values, error codes): between
// cudaStreamBeginCapture and cudaStreamEndCapture, kernel launches, cudaMemcpyAsync and
// cudaMemsetAsync on the stream are recorded (closures holding copies of their arguments), not
// run, and each cudaGraphLaunch of the instantiated graph runs them again in order. The calls the
// runtime forbids while a capture is in progress fail as it makes them fail: waiting for the
// capturing stream or the device always, and the "potentially unsafe" calls (cudaMalloc, cudaFree,
// synchronous cudaMemcpy, waits) unless the calling thread's mode is relaxed
// (cudaThreadExchangeStreamCaptureMode); such a failure invalidates the capture, which
// cudaStreamEndCapture then reports. Unlike a GPU, host memory given to a captured copy is
// not checked for being pinned.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
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
// thread of the block (or warp) has arrived (schedule()). One host thread, and the same
// interleaving every run of a schedule.
//
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

// An asynchronous copy to shared memory (cp.async) issued but not yet waited for: its source
// bytes, read at issue (global memory does not change under a kernel), land at `to` only when
// the thread waits for its group (cp_async_wait_group below).
struct PendingCopy {
  void* to;
  unsigned char bytes[16];
  int size;
};

struct Fiber {
  Context context;
  char* stack = nullptr;
  dim3 thread;
  int lane = 0, warp = 0;
  enum State { Ready, AtBlockBarrier, AtWarpBarrier, Done } state = Ready;
  void* fake_stack = nullptr;  // AddressSanitizer's bookkeeping while switched out
  std::vector<PendingCopy> async_copies;   // in issue order
  std::vector<size_t> async_group_ends;    // committed groups: where each ends in async_copies
};

// One lane's operands of an emulated mma.sync (tensor_core_mma below).
struct MmaShare {
  uint32_t a[4], b[2];
};

struct Block {
  std::vector<Fiber> fibers;
  Context scheduler;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
  std::vector<uint64_t> slots;  // one shuffle slot per thread of the block
  std::vector<MmaShare> mma_shares;  // one per thread of the block, for tensor_core_mma
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

// One host thread runs a launch's blocks one after another: a fence orders nothing more.
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

template <typename T>
T __ldg(const T* p) {
  return *p;
}
template <typename T>
T __ldcg(const T* p) {
  return *p;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
// The rounded arithmetic intrinsics (kernels/cuda/rounded.cuh): nvcc never contracts them into
// a fused multiply-add. GCC would contract an inlined a * b + c here (-march=native has FMA, and
// GNU C++ contracts by default), so each operand and product passes through an empty asm that
// GCC cannot see through.
namespace tg_emulation {
template <typename T>
inline T opaque(T v) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+x"(v));
#elif defined(__aarch64__)
  __asm__("" : "+w"(v));
#else
  volatile T kept = v;
  v = kept;
#endif
  return v;
}
}  // namespace tg_emulation
inline float __fmul_rn(float a, float b) { return tg_emulation::opaque(a * b); }
inline double __dmul_rn(double a, double b) { return tg_emulation::opaque(a * b); }
inline float __fadd_rn(float a, float b) {
  return tg_emulation::opaque(tg_emulation::opaque(a) + tg_emulation::opaque(b));
}
inline double __dadd_rn(double a, double b) {
  return tg_emulation::opaque(tg_emulation::opaque(a) + tg_emulation::opaque(b));
}
inline float __fsub_rn(float a, float b) {
  return tg_emulation::opaque(tg_emulation::opaque(a) - tg_emulation::opaque(b));
}
inline double __dsub_rn(double a, double b) {
  return tg_emulation::opaque(tg_emulation::opaque(a) - tg_emulation::opaque(b));
}

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

// The order of what a GPU leaves unordered: the blocks of a launch, and the warps and lanes of a
// block between two barriers (schedule()). Forward, the default, runs them first to last;
// TG_EMULATION_SCHEDULE=reverse, last to first. A kernel whose result depends on that order —
// one thread reading what another writes with no barrier between, a block relying on another
// having run — then gives another answer in one of the two, which its tests see: the Release
// build's CTest runs every emulated test both ways.
inline bool reverse_schedule() {
  static const bool reverse = [] {
    const char* order = std::getenv("TG_EMULATION_SCHEDULE");
    if (order == nullptr || std::strcmp(order, "forward") == 0) return false;
    if (std::strcmp(order, "reverse") == 0) return true;
    std::fprintf(stderr, "emulated CUDA: TG_EMULATION_SCHEDULE must be forward or reverse, got "
                 "'%s'\n", order);
    std::abort();
  }();
  return reverse;
}

// Held while a kernel runs: the __shared__ variables are the same memory for every host thread
// that launches.
inline std::recursive_mutex kernel_mutex;

// Runs fiber f of block b until it finishes or waits at a barrier.
inline void resume(Block& b, Fiber& f) {
  threadIdx = f.thread;
  b.running = &f;
  void* fake_stack = nullptr;
  start_switch(&fake_stack, f.stack, kFiberStackBytes);
  switch_context(b.scheduler, f.context);
  finish_switch(fake_stack, nullptr, nullptr);
}

// Runs the block's threads to the end. Forward: one warp at a time and each as far as it can
// go: its lanes in turn, through the warp's own shuffles and __syncwarp()s, until the warp
// finishes or waits at __syncthreads(); then the next warp; then, once every thread has arrived,
// past the barrier. So each warp runs ahead of the others as far as a GPU could let it. Reverse
// (reverse_schedule()): the warps last to first, each only to its next warp barrier before the
// next warp's turn, round and round, so that warps interleave as on a GPU. What one warp writes
// and another reads with no barrier between then happens in another order in one of the two
// schedules: warps that share memory with only __syncwarp() between them show too. A kernel
// whose threads wait at different barriers (a bug on a GPU too) stops the program with a
// message rather than hanging.
inline void schedule(Block& b) {
  const size_t threads = b.fibers.size();
  const size_t warps = (threads + warpSize - 1) / warpSize;
  const bool reverse = reverse_schedule();
  // Runs warp w's ready lanes, then lets them past its barrier when all its live lanes are
  // there: whether the warp moved on from a barrier.
  const auto step_warp = [&](size_t w) {
    const size_t lo = w * warpSize, hi = std::min(threads, lo + warpSize);
    for (size_t k = 0; k < hi - lo; ++k) {
      Fiber& f = b.fibers[reverse ? hi - 1 - k : lo + k];
      if (f.state == Fiber::Ready) resume(b, f);
    }
    bool waiting = false, all_there = true;  // the warp's live lanes all at its barrier?
    for (size_t i = lo; i < hi; ++i) {
      const Fiber::State s = b.fibers[i].state;
      waiting |= s == Fiber::AtWarpBarrier;
      all_there &= s == Fiber::AtWarpBarrier || s == Fiber::Done;
    }
    if (!waiting || !all_there) return false;
    for (size_t i = lo; i < hi; ++i)
      if (b.fibers[i].state == Fiber::AtWarpBarrier) b.fibers[i].state = Fiber::Ready;
    return true;
  };
  for (;;) {
    if (reverse) {
      for (bool moved = true; moved;) {
        moved = false;
        for (size_t n = 0; n < warps; ++n) moved |= step_warp(warps - 1 - n);
      }
    } else {
      for (size_t w = 0; w < warps; ++w)
        while (step_warp(w)) {
        }
    }
    bool all_done = true, block_waiting = false, block_all_there = true;
    for (const Fiber& f : b.fibers) {
      all_done &= f.state == Fiber::Done;
      block_waiting |= f.state == Fiber::AtBlockBarrier;
      block_all_there &= f.state == Fiber::AtBlockBarrier || f.state == Fiber::Done;
    }
    if (all_done) return;
    if (!block_waiting || !block_all_there) {
      std::fprintf(stderr, "emulated CUDA: deadlock in block (%u, %u, %u): threads wait at "
                   "different barriers (a __syncthreads or shuffle not reached by all)\n",
                   blockIdx.x, blockIdx.y, blockIdx.z);
      std::abort();
    }
    for (Fiber& f : b.fibers)
      if (f.state == Fiber::AtBlockBarrier) f.state = Fiber::Ready;
  }
}

// How many threads of the kernel running on this host thread have run kernel_prologue()
// (kernels/cuda/dependent_launch.h): run_kernel requires all of them to.
inline thread_local size_t prologue_calls = 0;
inline void note_kernel_prologue() { ++prologue_calls; }

// Fiber stacks, kept for the next launch on this host thread.
inline std::vector<std::unique_ptr<char[]>>& stack_pool() {
  static thread_local std::vector<std::unique_ptr<char[]>> pool;
  return pool;
}

// Kernels run so far (a graph's replays included), as a profiler would count them.
inline std::atomic<uint64_t> kernels_run{0};
// The kernels each cudaProfilerStart ... cudaProfilerStop range saw: [first, end) of kernels_run.
struct ProfilerRange {
  uint64_t first = 0, end = 0;
};
inline std::vector<ProfilerRange> profiler_ranges;
inline bool profiling = false;

// Runs kernel<<<grid, block>>>(args...) now: the blocks one after another, each as a set of
// fibers.
template <typename... Params, typename... Args>
void run_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, Args... args) {
  ++kernels_run;
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
  b.mma_shares.resize(b.slots.size());
  std::lock_guard<std::recursive_mutex> lock(kernel_mutex);
  Block* const outer = current_block;
  const dim3 outer_thread = threadIdx;
  const size_t outer_prologue_calls = prologue_calls;
  prologue_calls = 0;
  current_block = &b;
  blockDim = block;
  gridDim = grid;
  const size_t blocks = static_cast<size_t>(grid.x) * grid.y * grid.z;
  for (size_t n = 0; n < blocks; ++n) {
    const size_t id = reverse_schedule() ? blocks - 1 - n : n;
    blockIdx = dim3(static_cast<unsigned>(id % grid.x), static_cast<unsigned>(id / grid.x % grid.y),
                    static_cast<unsigned>(id / grid.x / grid.y));
    size_t i = 0;
    for (unsigned tz = 0; tz < block.z; ++tz)
      for (unsigned ty = 0; ty < block.y; ++ty)
        for (unsigned tx = 0; tx < block.x; ++tx, ++i) {
          Fiber& f = b.fibers[i];
          f.thread = dim3(tx, ty, tz);
          f.lane = static_cast<int>(i % warpSize);
          f.warp = static_cast<int>(i / warpSize);
          f.state = Fiber::Ready;
          f.async_copies.clear();  // what the block before left unwaited lands nowhere
          f.async_group_ends.clear();
          f.stack = stacks[i].get();
          make_context(f.context, f.stack, kFiberStackBytes, &fiber_main);
        }
    schedule(b);
  }
  // A kernel that touches memory before waiting for its predecessor races with it when launches
  // overlap on a GPU (kernels/cuda/dependent_launch.h).
  if (prologue_calls != static_cast<size_t>(grid.x) * grid.y * grid.z * threads) {
    std::fprintf(stderr, "emulated CUDA: a kernel (grid %u x %u x %u, block %u x %u x %u) ran "
                 "kernel_prologue() in %zu of its threads, not all: it must be every kernel's "
                 "first statement\n", grid.x, grid.y, grid.z, block.x, block.y, block.z,
                 prologue_calls);
    std::abort();
  }
  prologue_calls = outer_prologue_calls;
  current_block = outer;
  threadIdx = outer_thread;
}

}  // namespace tg_emulation

// ---- the runtime: one device, host memory, one stream (run at once, or captured) ----------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorIllegalState = 401,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureWrongThread = 908,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
enum cudaGraphInstantiateFlags {
  cudaGraphInstantiateFlagAutoFreeOnLaunch = 1,
  cudaGraphInstantiateFlagUpload = 2,
  cudaGraphInstantiateFlagDeviceLaunch = 4,
  cudaGraphInstantiateFlagUseNodePriority = 8,
};

// A graph is the recorded work, in stream order; an instantiated one shares it, read-only (a
// graph launched into a capture records the work as it is at that launch).
namespace tg_emulation {
using RecordedWork = std::vector<std::function<void()>>;
}  // namespace tg_emulation
struct CUgraph_st {
  tg_emulation::RecordedWork work;
};
struct CUgraphExec_st {
  std::shared_ptr<const tg_emulation::RecordedWork> work;
};
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;

// The stream and its capture state. Host threads may queue work on it concurrently.
struct CUstream_st {
  std::mutex mutex;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
  std::thread::id capturing_thread;
  std::unique_ptr<CUgraph_st> graph;  // while capturing
};
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

// Every stream created is this one (the backend creates one per device, and there is one device).
inline CUstream_st the_stream;
// This thread's capture interaction mode (cudaThreadExchangeStreamCaptureMode).
inline thread_local cudaStreamCaptureMode thread_capture_mode = cudaStreamCaptureModeGlobal;

// Runs `work` now, or records it while the stream captures; fails once the capture is
// invalidated (null: the legacy stream, never capturing here).
template <typename Work>
cudaError_t enqueue(cudaStream_t stream, Work&& work) {
  if (stream != nullptr) {
    std::lock_guard<std::mutex> lock(stream->mutex);
    if (stream->capture == cudaStreamCaptureStatusActive) {
      stream->graph->work.emplace_back(std::forward<Work>(work));
      return cudaSuccess;
    }
    if (stream->capture == cudaStreamCaptureStatusInvalidated)
      return fail(cudaErrorStreamCaptureInvalidated);
  }
  work();
  return cudaSuccess;
}

// The check before a "potentially unsafe" call (cudaMalloc, cudaFree, synchronous copies, waits):
// the runtime forbids them to a thread whose own capture is not relaxed, and to any thread while
// another thread's capture is global, unless the calling thread's own mode is relaxed. A
// forbidden call fails and invalidates the capture.
inline cudaError_t unsafe_call() {
  CUstream_st& s = the_stream;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.capture == cudaStreamCaptureStatusNone ||
      thread_capture_mode == cudaStreamCaptureModeRelaxed)
    return cudaSuccess;
  const bool forbidden = s.capturing_thread == std::this_thread::get_id()
                             ? s.capture_mode != cudaStreamCaptureModeRelaxed
                             : s.capture_mode == cudaStreamCaptureModeGlobal &&
                                   thread_capture_mode == cudaStreamCaptureModeGlobal;
  if (!forbidden) return cudaSuccess;
  s.capture = cudaStreamCaptureStatusInvalidated;
  return fail(cudaErrorStreamCaptureUnsupported);
}

// Waiting for a capturing stream is always forbidden, and invalidates its capture.
inline cudaError_t wait_for(CUstream_st& s) {
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.capture != cudaStreamCaptureStatusNone) {
      s.capture = cudaStreamCaptureStatusInvalidated;
      return fail(cudaErrorStreamCaptureUnsupported);
    }
  }
  return unsafe_call();
}
}  // namespace tg_emulation

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
  }
  return "cudaErrorUnknown";
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureWrongThread:
      return "attempt to terminate a thread-local capture sequence from another thread";
  }
  return "unknown error";
}
inline cudaError_t cudaGetLastError() {
  const cudaError_t e = tg_emulation::last_error;
  tg_emulation::last_error = cudaSuccess;
  return e;
}
// <cuda_profiler_api.h>: a start while profiling and a stop while not do nothing, as on a GPU.
inline cudaError_t cudaProfilerStart() {
  if (!tg_emulation::profiling)
    tg_emulation::profiler_ranges.push_back({tg_emulation::kernels_run, 0});
  tg_emulation::profiling = true;
  return cudaSuccess;
}
inline cudaError_t cudaProfilerStop() {
  if (tg_emulation::profiling) tg_emulation::profiler_ranges.back().end = tg_emulation::kernels_run;
  tg_emulation::profiling = false;
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* device) {
  *device = tg_emulation::current_device;
  return cudaSuccess;
}
// The emulated device reports compute capability 9.0: an H100/H200, the GPUs the project targets.
enum cudaDeviceAttr {
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return tg_emulation::fail(cudaErrorInvalidDevice);
  *value = attr == cudaDevAttrComputeCapabilityMajor ? 9 : 0;
  return cudaSuccess;
}
// A kernel's attributes: the emulated kernels are "compiled for" compute_90 and run as sm_90
// code, as a build for the device above would be.
struct cudaFuncAttributes {
  int binaryVersion = 0;
  int ptxVersion = 0;
};
template <typename Kernel>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, Kernel* kernel) {
  if (kernel == nullptr) return tg_emulation::fail(cudaErrorInvalidValue);
  attributes->binaryVersion = 90;
  attributes->ptxVersion = 90;
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
  if (const cudaError_t e = tg_emulation::unsafe_call(); e != cudaSuccess) return e;
  if (bytes > tg_emulation::kDeviceBytes - tg_emulation::allocated_bytes.load())
    return tg_emulation::fail(cudaErrorMemoryAllocation);
  char* base = static_cast<char*>(std::aligned_alloc(kHeader, kHeader + ((bytes + kHeader - 1) / kHeader) * kHeader));
  if (base == nullptr) return tg_emulation::fail(cudaErrorMemoryAllocation);
  std::memcpy(base, &bytes, sizeof bytes);
  // A GPU's fresh memory holds whatever was there: NaN here, so that reading it shows.
  std::memset(base + kHeader, 0xFF, bytes);
  tg_emulation::allocated_bytes += bytes;
  *p = base + kHeader;
  return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
  if (const cudaError_t e = tg_emulation::unsafe_call(); e != cudaSuccess) return e;
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
  if (const cudaError_t e = tg_emulation::unsafe_call(); e != cudaSuccess) return e;
  if (bytes > 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind,
                                   cudaStream_t stream = nullptr) {
  return tg_emulation::enqueue(stream, [=] {
    if (bytes > 0) std::memmove(dst, src, bytes);
  });
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes,
                                   cudaStream_t stream = nullptr) {
  return tg_emulation::enqueue(stream, [=] {
    if (bytes > 0) std::memset(dst, value, bytes);
  });
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = &tg_emulation::the_stream;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return stream != nullptr ? tg_emulation::wait_for(*stream) : tg_emulation::unsafe_call();
}
inline cudaError_t cudaDeviceSynchronize() {
  return tg_emulation::wait_for(tg_emulation::the_stream);
}

// ---- stream capture and graphs --------------------------------------------------------------
inline cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (stream == nullptr) return tg_emulation::fail(cudaErrorStreamCaptureUnsupported);  // legacy
  std::lock_guard<std::mutex> lock(stream->mutex);
  if (stream->capture != cudaStreamCaptureStatusNone)
    return tg_emulation::fail(cudaErrorIllegalState);
  stream->capture = cudaStreamCaptureStatusActive;
  stream->capture_mode = mode;
  stream->capturing_thread = std::this_thread::get_id();
  stream->graph = std::make_unique<CUgraph_st>();
  return cudaSuccess;
}
// Ends the capture whether or not it was invalidated; an invalidated one gives no graph.
inline cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (stream == nullptr || graph == nullptr) return tg_emulation::fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(stream->mutex);
  if (stream->capture == cudaStreamCaptureStatusNone)
    return tg_emulation::fail(cudaErrorIllegalState);
  if (stream->capture_mode != cudaStreamCaptureModeRelaxed &&
      stream->capturing_thread != std::this_thread::get_id())
    return tg_emulation::fail(cudaErrorStreamCaptureWrongThread);
  const bool invalidated = stream->capture == cudaStreamCaptureStatusInvalidated;
  stream->capture = cudaStreamCaptureStatusNone;
  std::unique_ptr<CUgraph_st> recorded = std::move(stream->graph);
  *graph = invalidated ? nullptr : recorded.release();
  return invalidated ? tg_emulation::fail(cudaErrorStreamCaptureInvalidated) : cudaSuccess;
}
inline cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (status == nullptr) return tg_emulation::fail(cudaErrorInvalidValue);
  if (stream == nullptr) {  // the legacy stream is never captured (ours is non-blocking)
    *status = cudaStreamCaptureStatusNone;
    return cudaSuccess;
  }
  std::lock_guard<std::mutex> lock(stream->mutex);
  *status = stream->capture;
  return cudaSuccess;
}
inline cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode) {
  if (mode == nullptr) return tg_emulation::fail(cudaErrorInvalidValue);
  std::swap(*mode, tg_emulation::thread_capture_mode);
  return cudaSuccess;
}
// Nodes are not objects here: only their count can be asked for (nodes must be null).
struct CUgraphNode_st;
using cudaGraphNode_t = CUgraphNode_st*;
inline cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* count) {
  if (graph == nullptr || count == nullptr || nodes != nullptr)
    return tg_emulation::fail(cudaErrorInvalidValue);
  *count = graph->work.size();
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                        unsigned long long = 0) {
  if (exec == nullptr || graph == nullptr) return tg_emulation::fail(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{std::make_shared<const tg_emulation::RecordedWork>(graph->work)};
  return cudaSuccess;
}
// The recorded work, in order, on `stream`: now, or recorded into the stream's own capture.
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return tg_emulation::fail(cudaErrorInvalidValue);
  return tg_emulation::enqueue(stream, [work = exec->work] {
    for (const auto& step : *work) step();
  });
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (exec == nullptr) return tg_emulation::fail(cudaErrorInvalidValue);
  delete exec;
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (graph == nullptr) return tg_emulation::fail(cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}

// kernel<<<grid, block, 0, stream>>>(args...): runs the kernel now or, while the stream captures,
// records it with copies of its arguments. A launch into an invalidated capture fails (as the
// launch's error: cudaGetLastError).
template <typename... Params, typename... Args>
void emulate_launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                    Args... args) {
  // A GPU's limits on a launch (compute capability 9.0): outside them the kernel does not run,
  // and the launch fails.
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
      grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
    tg_emulation::fail(cudaErrorInvalidConfiguration);
    return;
  }
  tg_emulation::enqueue(stream, [=] { tg_emulation::run_kernel(kernel, grid, block, args...); });
}

// ---- WMMA (<mma.h>): the TF32 16 x 16 x 8 shape, row-major tiles ------------------------------
// On a GPU a fragment's elements are spread over the warp's lanes in a layout the API leaves
// unspecified; here every lane holds the whole tile and computes the whole product, the same
// values redundantly, so code that uses the API as documented (the warp together, elements of
// x[] changed only element by element) gets the API's results; stores are not redundant (each
// lane writes its own share). The accumulation order within an mma is the hardware's own, so
// results are compared with a tolerance, not bit for bit.
namespace nvcuda::wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment;
template <>
struct fragment<matrix_a, 16, 16, 8, precision::tf32, row_major> {
  static constexpr int num_elements = 16 * 8;
  float x[num_elements];
};
template <>
struct fragment<matrix_b, 16, 16, 8, precision::tf32, row_major> {
  static constexpr int num_elements = 8 * 16;
  float x[num_elements];
};
template <>
struct fragment<accumulator, 16, 16, 8, float, void> {
  static constexpr int num_elements = 16 * 16;
  float x[num_elements];
};

inline void fill_fragment(fragment<accumulator, 16, 16, 8, float>& f, float v) {
  for (float& e : f.x) e = v;
}
inline void load_matrix_sync(fragment<matrix_a, 16, 16, 8, precision::tf32, row_major>& f,
                             const float* p, unsigned ldm) {
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 8; ++k) f.x[i * 8 + k] = p[i * ldm + k];
}
inline void load_matrix_sync(fragment<matrix_b, 16, 16, 8, precision::tf32, row_major>& f,
                             const float* p, unsigned ldm) {
  for (int k = 0; k < 8; ++k)
    for (int j = 0; j < 16; ++j) f.x[k * 16 + j] = p[k * ldm + j];
}
inline void mma_sync(fragment<accumulator, 16, 16, 8, float>& d,
                     const fragment<matrix_a, 16, 16, 8, precision::tf32, row_major>& a,
                     const fragment<matrix_b, 16, 16, 8, precision::tf32, row_major>& b,
                     const fragment<accumulator, 16, 16, 8, float>& c) {
  float out[16 * 16];
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float s = c.x[i * 16 + j];
      for (int k = 0; k < 8; ++k) s += a.x[i * 8 + k] * b.x[k * 16 + j];
      out[i * 16 + j] = s;
    }
  std::memcpy(d.x, out, sizeof out);
}
// Each lane stores only its own share of the tile, as on a GPU, where the other lanes' shares are
// there for a lane to read only after a __syncwarp(). The shares are laid out like the
// hardware's mma accumulators: rows lane / 4 and lane / 4 + 8, columns 2 (lane % 4) + {0, 1, 8, 9}.
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 8, float>& f,
                              unsigned ldm, layout_t layout) {
  const int lane = tg_emulation::self().lane;
  for (int i = lane / 4; i < 16; i += 8)
    for (int j : {0, 1, 8, 9}) {
      j += 2 * (lane % 4);
      p[layout == mem_row_major ? i * ldm + j : j * ldm + i] = f.x[i * 16 + j];
    }
}
// float -> TF32 (8 exponent bits, 10 mantissa bits), rounded to nearest, ties away from zero,
// as cvt.rna.tf32.f32; the result is a float whose low 13 mantissa bits are zero.
inline float __float_to_tf32(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & ~0x1fffu;  // not inf/NaN
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
}  // namespace nvcuda::wmma

// ---- the PTX that kernels/cuda/sgemm/tensor_core.cuh writes as inline assembly ---------------
// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32, d += a @ b over the warp: A is 16 x 8, B
// 8 x 8, D 16 x 8, spread over the lanes as the PTX ISA lays them out (g = lane / 4,
// t = lane % 4): a[r] is A(g + 8 (r % 2), t + 4 (r / 2)), b[r] is B(t + 4 r, g), d[r] is
// D(g + 8 (r / 2), 2 t + r % 2). Every lane posts its operands, then computes its own four
// outputs from the whole warp's, so a kernel that puts an element in the wrong register gets a
// wrong product here as on a GPU. Like the hardware, it reads only an input's TF32 bits (the
// low 13 mantissa bits are ignored), and the products of TF32 values are exact in float; the
// order of the additions is the hardware's own, so results are compared with a tolerance.
namespace tg_emulation {
inline float tf32_value(uint32_t bits) {
  bits &= ~0x1fffu;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline void tensor_core_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  Block& blk = *current_block;
  const Fiber& f = self();
  const size_t first = static_cast<size_t>(f.warp) * warpSize;
  blk.mma_shares[first + f.lane] = {{a[0], a[1], a[2], a[3]}, {b[0], b[1]}};
  wait_at(Fiber::AtWarpBarrier);  // every lane has posted
  const int g = f.lane / 4, t = f.lane % 4;
  float out[4];
  for (int r = 0; r < 4; ++r) {
    const int row = g + 8 * (r / 2), col = 2 * t + r % 2;
    float sum = d[r];
    for (int k = 0; k < 8; ++k) {
      const MmaShare& a_lane = blk.mma_shares[first + (row % 8) * 4 + k % 4];
      const MmaShare& b_lane = blk.mma_shares[first + col * 4 + k % 4];
      sum += tf32_value(a_lane.a[row / 8 + 2 * (k / 4)]) * tf32_value(b_lane.b[k / 4]);
    }
    out[r] = sum;
  }
  wait_at(Fiber::AtWarpBarrier);  // every lane has read
  std::memcpy(d, out, sizeof out);
}

// cp.async.{ca,cg}.shared.global [to], [from], size, src_size: src_size bytes of `from`, then
// zeros up to `size`, into shared memory once the thread waits for the copy's group.
inline void cp_async(void* to, const void* from, int size, int src_size) {
  PendingCopy copy{to, {}, size};
  std::memcpy(copy.bytes, from, static_cast<size_t>(src_size));
  self().async_copies.push_back(copy);
}
// cp.async.commit_group: the copies issued since the last commit become one group.
inline void cp_async_commit_group() {
  Fiber& f = self();
  f.async_group_ends.push_back(f.async_copies.size());
}
// cp.async.wait_group n: the thread's committed groups but the newest n have landed.
inline void cp_async_wait_group(int n) {
  Fiber& f = self();
  if (static_cast<int>(f.async_group_ends.size()) <= n) return;
  const size_t landed_groups = f.async_group_ends.size() - static_cast<size_t>(n);
  const size_t landed = f.async_group_ends[landed_groups - 1];
  for (size_t i = 0; i < landed; ++i)
    std::memcpy(f.async_copies[i].to, f.async_copies[i].bytes,
                static_cast<size_t>(f.async_copies[i].size));
  f.async_copies.erase(f.async_copies.begin(), f.async_copies.begin() + landed);
  f.async_group_ends.erase(f.async_group_ends.begin(), f.async_group_ends.begin() + landed_groups);
  for (size_t& end : f.async_group_ends) end -= landed;
}
}  // namespace tg_emulation

inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

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
