// v9's kernel (mma.sync on operands split into two TF32 parts: float32 accuracy) at block tilings
// other than its own 64 x 64, for a GPU run to time before v9's default changes.
//
// Why: at v9's 64 x 64, the step's products with 128 output columns (the MLP's second layer,
// its input gradient, the unembedding) make only 120 blocks of 3,830 rows, less than one wave
// of the H200's 132 SMs, where its 512-column products make 480. Smaller tiles make more blocks
// but read each operand more often; deeper K tiles or more stages hide more latency but take
// shared memory that would hold another block. Which wins at these shapes is a measurement:
// bench_cuda_gemm times each tiling at every shape (sgemm/v9_<tiling>/<shape>), and
// scripts/device_check.sh times the whole step with v9 at each (TG_CUDA_MMA_TILING).
//
// Each tiling is an SgemmVersion numbered 9 and named by its tiling: "32x64k16s3w2" is 32 x 64
// of C a block, K tiles of 16, 3 stages in flight, 2 warps. They take every argument v9 takes
// but operand masks (the epilogue and its output mask included), and are not in
// sgemm_versions(): best_sgemm() never picks one.
#pragma once

#include <string>
#include <vector>

#include "kernels/cuda/sgemm/sgemm.h"

namespace tg::cuda {

const std::vector<SgemmVersion>& mma_tilings();

// The tiling v9 runs wherever that tiling accepts the arguments (v9's own elsewhere: operand
// masks, or a grid too tall for its rows): the one the environment's TG_CUDA_MMA_TILING or
// set_mma_tiling() names, or null for v9's own. A name that is no tiling throws tg::Error
// listing them; "" is v9's own.
const SgemmVersion* forced_mma_tiling();
void set_mma_tiling(const std::string& name);

}  // namespace tg::cuda
