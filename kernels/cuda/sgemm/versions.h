// The descriptor of each numbered SGEMM version, one per file v<N>_<name>.cu; sgemm.cu lists them.
#pragma once

#include "kernels/cuda/sgemm/sgemm.h"

namespace tg::cuda {

SgemmVersion sgemm_v1_naive();
SgemmVersion sgemm_v2_coalesced();
SgemmVersion sgemm_v3_smem_tiling();
SgemmVersion sgemm_v4_blocktiling_1d();
SgemmVersion sgemm_v5_blocktiling_2d();
SgemmVersion sgemm_v6_vectorized();
SgemmVersion sgemm_v7_warptiling();
SgemmVersion sgemm_v8_wmma_tf32();
SgemmVersion sgemm_v9_mma_3xtf32();
SgemmVersion sgemm_v10_mma_tf32();

}  // namespace tg::cuda
