// Metrics of a run: evaluation without a graph, and the metrics.csv log.
#include "grok/metrics.h"

#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "grok/log_file.h"

namespace tg::grok {

LossAccuracy evaluate(nn::Model& model, const Tensor& tokens, const Tensor& labels,
                      int64_t chunk) {
  return evaluate(model, tokens, labels, LossKind::Softmax, chunk);
}

int64_t eval_chunk_rows(Device device) { return device.is_cpu() ? 4096 : 65536; }

void evaluate_sums(nn::Model& model, const Tensor& tokens, const Tensor& labels, LossKind loss,
                   const Tensor& sums, int64_t chunk) {
  check(chunk >= 0, "evaluate: chunk must be >= 0 rows, got ", chunk);
  if (chunk == 0) chunk = eval_chunk_rows(tokens.device());
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const int64_t n = tokens.size(0);
  Tensor loss_sum = sums.select(0, 0), correct = sums.select(0, 1);
  Tensor(sums).fill_(0);  // both sums, in one kernel
  // Each chunk's float32 sums added in double, in order: the host's sum of their values.
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t end = std::min(n, start + chunk);
    const Tensor logits = model.forward(tokens.slice(0, start, end));
    const Tensor y = labels.slice(0, start, end);
    loss_sum.add_(loss_of(loss, logits, y, Reduction::Sum));
    correct.add_(sum(eq(argmax(logits, 1), y)));
  }
  model.train(was_training);
}

LossAccuracy evaluate(nn::Model& model, const Tensor& tokens, const Tensor& labels,
                      LossKind loss, int64_t chunk) {
  const Tensor sums = Tensor::empty({2}, DType::Float64, tokens.device());
  evaluate_sums(model, tokens, labels, loss, sums, chunk);
  const std::vector<double> host = sums.to_vector<double>();  // the one wait
  const auto n = static_cast<double>(tokens.size(0));
  return {host[0] / n, host[1] / n};
}

namespace {
std::string format_row(const MetricsRow& r) {
  char line[512];
  // %.9g round-trips float32 values, so a resumed run's rows compare exactly with the original.
  std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.3f",
                static_cast<long long>(r.step), r.train_loss, r.train_acc, r.test_loss,
                r.test_acc, r.weight_norm, r.lr, r.elapsed_s);
  return line;
}
}  // namespace

std::vector<MetricsRow> MetricsLog::read(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), "metrics: cannot read ", path);
  std::string line;
  std::getline(in, line);
  check(line == kHeader, "metrics: ", path, " does not start with the header '", kHeader, "'");
  std::vector<MetricsRow> rows;
  int line_number = 1;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    MetricsRow r;
    long long step = 0;
    int consumed = -1;  // all of the line, or it has more than the eight columns
    const int fields = std::sscanf(line.c_str(), "%lld,%lf,%lf,%lf,%lf,%lf,%lf,%lf%n", &step,
                                   &r.train_loss, &r.train_acc, &r.test_loss, &r.test_acc,
                                   &r.weight_norm, &r.lr, &r.elapsed_s, &consumed);
    if (fields != 8 || consumed != static_cast<int>(line.size()))
      throw Error(cat("metrics: ", path, " line ", line_number, " is not a metrics row: '", line,
                      "'"));
    r.step = step;
    rows.push_back(r);
  }
  return rows;
}

MetricsLog::MetricsLog(const std::string& path, const std::vector<MetricsRow>& kept)
    : path_(path) {
  std::vector<std::string> lines;
  for (const MetricsRow& r : kept) lines.push_back(format_row(r));
  file_ = restart_log(path, kHeader, lines, "metrics");
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const MetricsRow& row) {
  std::fprintf(file_, "%s\n", format_row(row).c_str());
  std::fflush(file_);
}

}  // namespace tg::grok
