// Flushing denormal floats to zero (as torch.set_flush_denormal). Late in a grokking run the
// loss is ~1e-7 and some gradients and Adam moments fall below float's normal range (1.2e-38),
// where x86 arithmetic on them takes a slow path; a nanda step measured ~25% slower from the
// grokked weights. Flushing changes only values that small.
// CUDA kernels keep denormals (nvcc's default, and PyTorch's): a GPU computes on them at full
// speed, so there is nothing to gain there. Under train() the two backends can therefore differ
// in values below 1.2e-38.
#pragma once

namespace tg {

// Sets flush-to-zero and denormals-are-zero on the calling thread and on every OpenMP worker.
// Returns false (and changes nothing) where the CPU has no such mode.
bool set_flush_denormal(bool on);
// Whether the calling thread flushes denormals.
bool flush_denormal();

// Turns flushing on for a scope and restores the previous mode after (train() runs under one).
class FlushDenormalGuard {
 public:
  FlushDenormalGuard() : previous_(flush_denormal()) { set_flush_denormal(true); }
  ~FlushDenormalGuard() { set_flush_denormal(previous_); }
  FlushDenormalGuard(const FlushDenormalGuard&) = delete;
  FlushDenormalGuard& operator=(const FlushDenormalGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace tg
