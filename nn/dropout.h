// Dropout: zeroes activations with probability p while training (from the Generator given at
// construction, which must outlive the module); the identity in eval mode.
#pragma once

#include "core/random.h"
#include "nn/module.h"

namespace tg::nn {

class Dropout : public Module {
 public:
  Dropout(double p, Generator& gen);
  Tensor forward(const Tensor& x) const;
  double p() const { return p_; }
  // Whether forward() masks anything: training, with p > 0 (else it is the identity).
  bool active() const { return p_ > 0 && is_training(); }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace tg::nn
