// Metrics of a run: loss and accuracy of a model on a token set (no graph), and metrics.csv.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "grok/loss.h"
#include "nn/model.h"

namespace tg::grok {

struct LossAccuracy {
  double loss = 0;      // mean cross-entropy (softmax or StableMax)
  double accuracy = 0;  // fraction of argmax == label
};

// Rows an eval's forward takes at once on `device` (chunk 0, below): 4,096 on the CPU, whose
// activations then stay small; 65,536 on a GPU, where a set of nanda's size (8,939 test rows)
// is then one forward, whose products fill the GPU, instead of three and a 747-row tail.
int64_t eval_chunk_rows(Device device);

// Evaluates in eval mode, without recording a graph, in chunks of `chunk` rows (0: the device's
// eval_chunk_rows); restores the model's train/eval mode afterwards. The loss is `loss` (a run's
// --loss; grok/loss.h).
LossAccuracy evaluate(nn::Model& model, const Tensor& tokens, const Tensor& labels,
                      LossKind loss, int64_t chunk = 0);
// evaluate()'s sums, left on the device: sums (float64 [2] on the tokens' device) is set to
// (the summed loss, the number of correct argmaxes). It reads nothing back to the host, so it
// can be recorded once and replayed (Backend::capture); evaluate() is this plus one read.
void evaluate_sums(nn::Model& model, const Tensor& tokens, const Tensor& labels, LossKind loss,
                   const Tensor& sums, int64_t chunk = 0);
// The same with the softmax cross-entropy.
LossAccuracy evaluate(nn::Model& model, const Tensor& tokens, const Tensor& labels,
                      int64_t chunk = 0);

// One row of metrics.csv, written at every eval.
struct MetricsRow {
  int64_t step = 0;  // optimiser steps done
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
  double weight_norm = 0, lr = 0, elapsed_s = 0;
};

// metrics.csv: a header line, then one row per eval, flushed as written so that a crash or
// Ctrl-C keeps every row before it.
class MetricsLog {
 public:
  static constexpr const char* kHeader =
      "step,train_loss,train_acc,test_loss,test_acc,weight_norm,lr,elapsed_s";

  // Starts the file anew with the `kept` rows (a resume's rows up to its checkpoint, read first
  // with read()) and appends after them.
  explicit MetricsLog(const std::string& path, const std::vector<MetricsRow>& kept = {});
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const MetricsRow& row);
  static std::vector<MetricsRow> read(const std::string& path);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace tg::grok
