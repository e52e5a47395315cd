// A run's evals: eager, or one recorded graph for both sets and one read of their sums.
#include "grok/run_evaluator.h"

#include <cmath>
#include <utility>
#include <vector>

#include "optim/clip.h"

namespace tg::grok {

RunEvaluator::RunEvaluator(nn::Model& model, LossKind loss, Tensor train_tokens,
                           Tensor train_labels, Tensor test_tokens, Tensor test_labels,
                           bool record)
    : model_(model),
      loss_(loss),
      train_tokens_(std::move(train_tokens)),
      train_labels_(std::move(train_labels)),
      test_tokens_(std::move(test_tokens)),
      test_labels_(std::move(test_labels)),
      params_(model.parameters()),
      record_(record) {}

// With the step recorded, the evals are too, after the first (eager: its index checks cover
// the replays): one replay computes both sets' sums and the weights' sum of squares, and one
// read brings them back. The weight norm's kernels are global_norm's, so its bits are too.
RunEvaluator::Measured RunEvaluator::measure() {
  if (!record_ || !evaluated_eagerly_) {
    evaluated_eagerly_ = true;
    return {evaluate(model_, train_tokens_, train_labels_, loss_),
            evaluate(model_, test_tokens_, test_labels_, loss_), optim::global_norm(params_)};
  }
  if (!graph_) {
    // (train loss sum, train correct, test loss sum, test correct, sum of the weights' squares)
    sums_ = Tensor::empty({5}, DType::Float64, train_tokens_.device());
    graph_ = backend_for(train_tokens_.device()).capture([&] {
      evaluate_sums(model_, train_tokens_, train_labels_, loss_, sums_.slice(0, 0, 2));
      evaluate_sums(model_, test_tokens_, test_labels_, loss_, sums_.slice(0, 2, 4));
      sums_.slice(0, 4, 5).copy_(optim::sum_of_squares_on_device(params_).reshape({1}));
    });
  }
  graph_->replay();
  const std::vector<double> sums = sums_.to_vector<double>();  // waits for the device
  const auto n_train = static_cast<double>(train_tokens_.size(0));
  const auto n_test = static_cast<double>(test_tokens_.size(0));
  return {{sums[0] / n_train, sums[1] / n_train},
          {sums[2] / n_test, sums[3] / n_test},
          std::sqrt(sums[4])};
}

double RunEvaluator::train_loss() {
  return evaluate(model_, train_tokens_, train_labels_, loss_).loss;
}

}  // namespace tg::grok
