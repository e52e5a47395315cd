// SGD: stochastic gradient descent with optional momentum and L2 weight decay, PyTorch's formula
// (torch.optim.SGD with dampening 0, no Nesterov):
//   g = grad + weight_decay * p
//   buf = momentum * buf + g   (buf = g on the first step)
//   p -= lr * buf              (without momentum, p -= lr * g)
#pragma once

#include "optim/optimizer.h"

namespace tg::optim {

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, double lr, double momentum = 0, double weight_decay = 0);

  void step() override;
  // "momentum.<i>" for every parameter when momentum != 0; nothing otherwise.
  std::vector<std::pair<std::string, Tensor>> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, int64_t steps) override;

  double momentum() const { return momentum_; }
  double weight_decay() const { return weight_decay_; }

 private:
  double momentum_;
  double weight_decay_;
  std::vector<Tensor> momentum_buffers_;  // one per parameter when momentum != 0, else empty
};

}  // namespace tg::optim
