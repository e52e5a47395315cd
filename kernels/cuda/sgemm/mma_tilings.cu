// The tilings of v9's kernel that mma_tilings.h lists, and the choice of one for v9.
#include "kernels/cuda/sgemm/mma_tilings.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "kernels/cuda/sgemm/mma_pipeline.cuh"

namespace tg::cuda {
namespace {

using sgemm_detail::mma_pipeline::Tiling;

template <class L>
void run(const GemmArgs& args, cudaStream_t stream) {
  static const std::string name = "v9_mma_3xtf32 at " + L::name();  // in launch errors
  sgemm_detail::mma_pipeline::run_without_masks</*SPLIT=*/true, L>(name.c_str(), args, stream);
}

template <class L>
SgemmVersion tiling() {
  static const std::string name = L::name();
  SgemmVersion v{9, name.c_str(), "v9's kernel at another block tiling; no operand masks",
                 run<L>, sgemm_detail::mma_pipeline::supports_without_masks<L>};
  v.measured = false;
  return v;
}

}  // namespace

const std::vector<SgemmVersion>& mma_tilings() {
  // Tiling<BM, BN, BK, WM, WN, STAGES>: blocks smaller than v9's, then as large with a deeper K
  // or more stages or two warps of 32 x 64, then one twice as tall.
  static const std::vector<SgemmVersion> tilings = {
      tiling<Tiling<32, 32, 16, 32, 32, 4>>(),  tiling<Tiling<32, 64, 16, 32, 32, 3>>(),
      tiling<Tiling<64, 32, 16, 32, 32, 3>>(),  tiling<Tiling<64, 64, 32, 32, 32, 2>>(),
      tiling<Tiling<64, 64, 16, 32, 32, 4>>(),  tiling<Tiling<64, 64, 16, 32, 64, 3>>(),
      tiling<Tiling<128, 64, 16, 32, 32, 3>>(),
  };
  return tilings;
}

namespace {

const SgemmVersion* find_tiling(const std::string& name, const char* source) {
  if (name.empty()) return nullptr;
  std::string names;
  for (const SgemmVersion& t : mma_tilings()) {
    if (name == t.name) return &t;
    names += names.empty() ? t.name : cat(", ", t.name);
  }
  throw Error(cat(source, ": '", name, "' is no tiling of v9's kernel (", names,
                  "; or empty for v9's own)"));
}

struct ChosenTiling {  // by set_mma_tiling(), which outranks the environment
  std::atomic<bool> chosen{false};
  std::atomic<const SgemmVersion*> tiling{nullptr};
};

ChosenTiling& chosen_tiling() {
  static ChosenTiling c;
  return c;
}

}  // namespace

const SgemmVersion* forced_mma_tiling() {
  const ChosenTiling& c = chosen_tiling();
  if (c.chosen.load()) return c.tiling.load();
  // Read once; a bad name throws at every call, as it is not stored.
  static const SgemmVersion* const from_environment = [] {
    const char* env = std::getenv("TG_CUDA_MMA_TILING");
    return find_tiling(env == nullptr ? "" : env, "TG_CUDA_MMA_TILING");
  }();
  return from_environment;
}

void set_mma_tiling(const std::string& name) {
  ChosenTiling& c = chosen_tiling();
  c.tiling.store(find_tiling(name, "set_mma_tiling"));
  c.chosen.store(true);
}

}  // namespace tg::cuda
