// Per-eval tracking: sharpness, softmax collapse and the embedding's spectrum at every eval.
#include "grok/analysis/eval_tracker.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "grok/analysis/fourier.h"
#include "grok/analysis/run_analysis.h"
#include "grok/analysis/sharpness.h"
#include "grok/analysis/softmax_collapse.h"
#include "grok/log_file.h"
#include "grok/loss.h"
#include "optim/clip.h"

namespace tg::grok::analysis {

std::vector<TrackedMetric> parse_track(const std::string& list, const std::string& op) {
  std::vector<TrackedMetric> out;
  std::istringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    TrackedMetric m;
    if (name == "sharpness")
      m = TrackedMetric::Sharpness;
    else if (name == "collapse")
      m = TrackedMetric::Collapse;
    else if (name == "fourier")
      m = TrackedMetric::Fourier;
    else
      throw Error(cat("--track: unknown metric '", name,
                      "' (expected a comma-separated list of: sharpness, collapse, fourier)"));
    check(std::find(out.begin(), out.end(), m) == out.end(), "--track: '", name,
          "' is listed twice");
    check(m != TrackedMetric::Fourier || op != "s5",
          "--track: fourier needs Z_p, and s5 is a permutation group");
    out.push_back(m);
  }
  return out;
}

namespace {

std::string header(const std::vector<TrackedMetric>& metrics) {
  std::string h = "step";
  for (TrackedMetric m : metrics) switch (m) {
      case TrackedMetric::Sharpness:
        h += ",sharpness,sharpness_rho";
        break;
      case TrackedMetric::Collapse:
        h += ",softmax_collapse_fraction";
        break;
      case TrackedMetric::Fourier:
        h += ",n_key_frequencies,effective_frequencies,top_frequency";
        break;
    }
  return h;
}

}  // namespace

EvalTracker::EvalTracker(const std::string& path, const TrainConfig& config, int64_t p, bool resume,
                         int64_t keep_through_step)
    : metrics_(parse_track(config.track, config.op)), config_(config), p_(p) {
  const std::string head = header(metrics_);
  std::vector<std::string> kept;
  // On resume, the rows up to the checkpoint are kept (later ones were measured after it), and a
  // file this run cannot read is an error before it is rewritten: its rows are not dropped.
  std::ifstream in(path);
  if (resume && in.good()) {
    const auto trimmed = [](std::string line) {  // CRLF line ends, trailing blanks
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
        line.pop_back();
      return line;
    };
    std::string line;
    std::getline(in, line);
    check(trimmed(line) == head, "--track: ", path, " begins '", trimmed(line),
          "', not this run's header '", head, "'; move it away to resume without its rows");
    for (int64_t number = 2; std::getline(in, line); ++number) {
      line = trimmed(line);
      if (line.empty()) continue;
      int64_t step = 0;
      const size_t comma = line.find(',');
      const char* end = line.data() + (comma == std::string::npos ? line.size() : comma);
      const auto [stop, error] = std::from_chars(line.data(), end, step);
      check(comma != std::string::npos && error == std::errc() && stop == end, "--track: ", path,
            " line ", number, " does not begin with a step: '", line, "'");
      if (step <= keep_through_step) kept.push_back(line);
    }
  }
  file_ = restart_log(path, head, kept, "--track");
}

EvalTracker::~EvalTracker() {
  if (file_) std::fclose(file_);
}

void EvalTracker::record(int64_t step, nn::Model& model, const Tensor& train_tokens,
                         const Tensor& train_labels) {
  std::string row = std::to_string(step);
  char value[64];
  for (TrackedMetric m : metrics_) switch (m) {
      case TrackedMetric::Sharpness: {
        const double rho = AnalysisOptions{}.rho_fraction * optim::global_norm(model.parameters());
        const Sharpness s = sharpness(model, train_tokens, train_labels, rho, kSharpnessSteps,
                                      parse_loss(config_.loss));
        std::snprintf(value, sizeof value, ",%.9g,%.9g", s.value, s.rho);
        row += value;
        break;
      }
      case TrackedMetric::Collapse: {
        NoGradGuard no_grad;
        const bool was_training = model.is_training();
        model.eval();
        std::vector<Tensor> parts;
        for (int64_t start = 0; start < train_tokens.size(0); start += 4096)
          parts.push_back(model
                              .forward(train_tokens.slice(
                                  0, start, std::min(train_tokens.size(0), start + 4096)))
                              .to(Device::cpu()));
        model.train(was_training);
        const Tensor logits = parts.size() == 1 ? parts.front() : cat(parts, int64_t{0});
        std::snprintf(value, sizeof value, ",%.9g", softmax_collapse_fraction(logits));
        row += value;
        break;
      }
      case TrackedMetric::Fourier: {
        const EmbeddingSpectrum spectrum = embedding_spectrum(model.named_parameters(), p_);
        const auto top = std::max_element(spectrum.norm.begin() + 1, spectrum.norm.end());
        std::snprintf(value, sizeof value, ",%zu,%.9g,%lld", key_frequencies(spectrum.norm).size(),
                      effective_frequency_count(spectrum.norm),
                      static_cast<long long>(top - spectrum.norm.begin()));
        row += value;
        break;
      }
    }
  std::fprintf(file_, "%s\n", row.c_str());
  std::fflush(file_);
}

}  // namespace tg::grok::analysis
