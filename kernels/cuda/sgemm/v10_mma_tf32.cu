// SGEMM v10, TF32 on tensor cores: v9's kernel with one mma of the rounded operands per step
// instead of three (kernels/cuda/sgemm/mma_pipeline.cuh). About 1e-3 relative error, as v8 and
// cuBLAS with TF32, so best_sgemm() takes it only where TF32 is allowed.
#include "kernels/cuda/sgemm/mma_pipeline.cuh"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {
namespace {

void run(const GemmArgs& args, cudaStream_t stream) {
  sgemm_detail::mma_pipeline::run</*SPLIT=*/false>("v10_mma_tf32", args, stream);
}

}  // namespace

SgemmVersion sgemm_v10_mma_tf32() {
  SgemmVersion v{10, "mma_tf32",
                 "v9 with one mma of the TF32-rounded operands per step: TF32 speed, ~1e-3",
                 run, sgemm_detail::mma_pipeline::supports<>};
  v.tf32 = true;
  v.measured = false;
  return v;
}

}  // namespace tg::cuda
