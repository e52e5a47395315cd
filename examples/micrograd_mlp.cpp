// A micrograd-style example: fit y = sin(x) with a small MLP and plain gradient descent, printing
// the loss as it falls. Exits nonzero unless the loss fell at least tenfold.
#include <cmath>
#include <cstdio>

#include "tinygrok.h"

using namespace tg;

int main() {
  // 60 points of sin(x) on [-3, 3): inputs [60, 1], targets [60, 1].
  std::vector<float> xs, ys;
  for (int i = 0; i < 60; ++i) {
    xs.push_back(-3.0f + 0.1f * i);
    ys.push_back(std::sin(xs.back()));
  }
  const Tensor x = from_vector(xs, {60, 1}), y = from_vector(ys, {60, 1});

  // Parameters: 1 -> 32 -> 1 with a tanh hidden layer, weights scaled by 1/sqrt(fan_in).
  Generator gen(0);
  std::vector<Tensor> params = {
      randn({1, 32}, gen).requires_grad_(), zeros({32}).requires_grad_(),
      (randn({32, 1}, gen) / std::sqrt(32.0)).requires_grad_(), zeros({1}).requires_grad_()};
  auto model = [&](const Tensor& in) {
    const Tensor hidden = tanh(matmul(in, params[0]) + params[1]);
    return matmul(hidden, params[2]) + params[3];
  };

  double first = 0, last = 0;
  for (int step = 0; step <= 1000; ++step) {
    const Tensor loss = mean(pow(model(x) - y, 2));  // mean squared error
    for (Tensor& p : params) p.zero_grad();
    loss.backward();
    {
      NoGradGuard no_grad;  // the update itself is not part of the graph
      for (Tensor& p : params) p.copy_(p - 0.05 * p.grad());
    }
    last = loss.item();
    if (step == 0) first = last;
    if (step % 100 == 0) std::printf("step %4d  loss %.5f\n", step, last);
  }
  std::printf("loss fell from %.4f to %.5f\n", first, last);
  return last < first / 10 ? 0 : 1;
}
