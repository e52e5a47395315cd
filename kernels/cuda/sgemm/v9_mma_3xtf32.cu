// SGEMM v9, float32-accurate on tensor cores: mma.sync with each operand split into two TF32
// parts ("3xTF32", three mma per step), 64 x 64 block tiles of 4 warps, and a three-stage
// cp.async pipeline (kernels/cuda/sgemm/mma_pipeline.cuh has the kernel and why). Takes every
// argument: 4-byte copies where rows are not 16-byte aligned, the epilogue and the masks.
#include "kernels/cuda/sgemm/mma_pipeline.cuh"
#include "kernels/cuda/sgemm/mma_tilings.h"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {
namespace {

// At the tiling TG_CUDA_MMA_TILING names (mma_tilings.h), for timing, where it takes the args.
void run(const GemmArgs& args, cudaStream_t stream) {
  if (const SgemmVersion* tiling = forced_mma_tiling(); tiling && tiling->supports(args))
    return tiling->run(args, stream);
  sgemm_detail::mma_pipeline::run</*SPLIT=*/true>("v9_mma_3xtf32", args, stream);
}

}  // namespace

SgemmVersion sgemm_v9_mma_3xtf32() {
  SgemmVersion v{9, "mma_3xtf32",
                 "mma.sync on operands split into two TF32 parts (float32 accuracy), 64x64 "
                 "tiles, cp.async pipeline, any alignment",
                 run, sgemm_detail::mma_pipeline::supports<>};
  v.measured = false;
  return v;
}

}  // namespace tg::cuda
