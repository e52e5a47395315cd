// The parameters that the AdamW benchmarks (bench_cuda_fused, bench_cuda_memory) step, on cuda:0
// with gradients as backward leaves them, and the bytes one AdamW step must move over them.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cuda_bench_util.h"
#include "grok/dataset.h"
#include "grok/trainer.h"
#include "tinygrok.h"

namespace tg::bench {

// One 64M-element tensor (large: HBM-bound), or the nanda model's parameter list (model: 226k
// float32 elements in a few dozen tensors); each with a random gradient.
inline std::vector<Tensor> adamw_params(Size s) {
  std::vector<Tensor> params;
  if (s == Size::Large) {
    params.push_back(random_on_gpu({int64_t{1} << 26}).requires_grad_());
  } else {
    const grok::TrainConfig c = grok::preset("nanda");
    const grok::Dataset data = grok::make_dataset(grok::parse_operation(c.op), c.p);
    Generator gen(0);
    std::shared_ptr<nn::Model> model = grok::build_model(c, data, gen);
    model->to(kGpu);
    params = model->parameters();
  }
  for (Tensor& p : params) p.impl()->grad = random_on_gpu(p.shape()).impl_ptr();
  return params;
}

// 28 bytes an element: p, g, m and v read; p, m and v written.
inline double adamw_bytes(const std::vector<Tensor>& params) {
  double elements = 0;
  for (const Tensor& p : params) elements += static_cast<double>(p.numel());
  return 28.0 * elements;
}

}  // namespace tg::bench
