// TG_CUDA_MMA_TILING as a process reads it (sgemm_host_emulation checks set_mma_tiling() and
// what each tiling computes): prints the tiling v9 runs, and exits 0 when it is the one named
// on the command line ("" or none: v9's own). An unknown name prints tg::Error's message.
#include <cstdio>
#include <string>

#include "core/error.h"
#include "kernels/cuda/sgemm/mma_tilings.h"

int main(int argc, char** argv) {
  const std::string expected = argc > 1 ? argv[1] : "";
  try {
    const tg::cuda::SgemmVersion* tiling = tg::cuda::forced_mma_tiling();
    const std::string name = tiling != nullptr ? tiling->name : "";
    std::printf("v9 runs at tiling '%s'\n", name.c_str());
    return name == expected ? 0 : 1;
  } catch (const tg::Error& e) {
    std::printf("%s\n", e.what());
    return 1;
  }
}
