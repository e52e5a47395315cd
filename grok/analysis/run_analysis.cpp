// The analysis of a run directory: snapshots in, RUN/analysis/ out.
#include "grok/analysis/run_analysis.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/strict_json.h"
#include "grok/analysis/analysis_plots.h"
#include "grok/analysis/early_stopping.h"
#include "grok/analysis/fourier.h"
#include "grok/analysis/neuron_clusters.h"
#include "grok/analysis/pair_logits.h"
#include "grok/analysis/restricted_loss.h"
#include "grok/analysis/sharpness.h"
#include "grok/analysis/softmax_collapse.h"
#include "grok/analysis/weight_norm_decay.h"
#include "grok/analysis/weight_norms.h"
#include "grok/checkpoint.h"
#include "grok/config.h"
#include "grok/dataset.h"
#include "grok/loss.h"
#include "grok/metrics.h"
#include "grok/split.h"
#include "grok/trainer.h"
#include "nn/safetensors.h"

namespace tg::grok::analysis {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// One set of weights to analyse: a snapshot file, or the final checkpoint.
struct WeightsSource {
  int64_t step = 0;
  std::string path;
  bool checkpoint = false;
};

NamedTensors load_weights(const WeightsSource& source) {
  if (source.checkpoint) return load_checkpoint(source.path).model;
  NamedTensors tensors = nn::load_safetensors(source.path).tensors;
  check_finite_tensors(tensors, source.path);
  return tensors;
}

std::map<std::string, Tensor> as_map(const NamedTensors& tensors, DType dtype) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors) out.emplace(name, t.to(dtype));
  return out;
}

json read_json(const fs::path& path) {
  check(!fs::exists(path) || fs::is_regular_file(path), "analyze: ", path.string(),
        " is not a file");
  std::ifstream in(path);
  check(in.good(), "analyze: cannot read ", path.string());
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  try {  // a key given twice would silently keep the last
    return parse_json_refusing_repeated_keys<json>(text, "analyze: " + path.string() + ": ");
  } catch (const json::exception&) {
    throw Error(cat("analyze: ", path.string(), " is not valid JSON"));
  }
}

// summary.json's T_m or T_g, or -1 (absent, null, or no summary).
int64_t summary_time(const json& summary, const char* key) {
  return summary.contains(key) && summary[key].is_number_integer() ? summary[key].get<int64_t>()
                                                                   : -1;
}

// What one snapshot's analysis measured.
struct SnapshotResult {
  int64_t step = 0;
  LossAccuracy64 train, test;
  std::optional<RestrictedExcludedLoss> restricted;
  WeightNorms norms;
  Sharpness sharp;
  double collapse = 0;
  EmbeddingSpectrum spectrum;  // empty for s5
  int64_t key_count = 0;       // key frequencies of this snapshot's own embedding
  double key_fraction = 0;     // the energy share of the analysis' key frequencies
  double effective_frequencies = 0;
};

std::string number(double v) {
  if (!std::isfinite(v)) return "nan";
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

std::ofstream open_output(const fs::path& path) {
  std::ofstream out(path);
  check(out.good(), "analyze: cannot write ", path.string());
  return out;
}

void write_analysis_csv(const fs::path& path, const std::vector<SnapshotResult>& rows) {
  std::ofstream out = open_output(path);
  out << "step,train_loss,train_acc,test_loss,test_acc,restricted_loss,restricted_loss_train,"
         "excluded_loss,weight_norm,sharpness,rho,softmax_collapse_fraction,n_key_frequencies,"
         "key_energy_fraction,effective_frequencies\n";
  for (const SnapshotResult& r : rows) {
    out << r.step << ',' << number(r.train.loss) << ',' << number(r.train.accuracy) << ','
        << number(r.test.loss) << ',' << number(r.test.accuracy) << ',';
    if (r.restricted)  // empty fields otherwise: gnuplot and spreadsheets read them as missing
      out << number(r.restricted->restricted_all) << ',' << number(r.restricted->restricted_train)
          << ',' << number(r.restricted->excluded_train) << ',';
    else
      out << ",,,";
    out << number(r.norms.total) << ',' << number(r.sharp.value) << ',' << number(r.sharp.rho)
        << ',' << number(r.collapse) << ',';
    if (r.spectrum.norm.empty())
      out << ",,\n";
    else
      out << r.key_count << ',' << number(r.key_fraction) << ',' << number(r.effective_frequencies)
          << '\n';
  }
}

void write_weight_norms_csv(const fs::path& path, const std::vector<SnapshotResult>& rows) {
  std::ofstream out = open_output(path);
  out << "step";
  for (const auto& [name, norm] : rows.front().norms.groups) out << ',' << name;
  out << ",total\n";
  for (const SnapshotResult& r : rows) {
    out << r.step;
    for (const auto& [name, norm] : r.norms.groups) out << ',' << number(norm);
    out << ',' << number(r.norms.total) << '\n';
  }
}

void write_fourier_csv(const fs::path& path, const std::vector<SnapshotResult>& rows) {
  std::ofstream out = open_output(path);
  const bool halves = !rows.front().spectrum.norm_a.empty();  // the one-hot MLP's a and b
  out << "step,frequency,norm" << (halves ? ",norm_a,norm_b" : "") << '\n';
  for (const SnapshotResult& r : rows)
    for (size_t k = 0; k < r.spectrum.norm.size(); ++k) {
      out << r.step << ',' << k << ',' << number(r.spectrum.norm[k]);
      if (halves) out << ',' << number(r.spectrum.norm_a[k]) << ',' << number(r.spectrum.norm_b[k]);
      out << '\n';
    }
}

void write_neurons_csv(const fs::path& path, const NeuronClusters& clusters) {
  std::ofstream out = open_output(path);
  out << "neuron,best_frequency,best_fraction,cluster\n";
  for (size_t n = 0; n < clusters.neurons.size(); ++n) {
    const NeuronFrequency& f = clusters.neurons[n];
    out << n << ',' << f.best_frequency << ',' << number(f.best_fraction) << ','
        << (f.cluster > 0 ? std::to_string(f.cluster) : std::string("unclustered")) << '\n';
  }
}

json optional_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// The survey's §4.1 study: where patience on test loss (three patiences) and where the weight-norm
// rule would have stopped this run, with the test accuracy each would have kept.
json early_stopping_json(const std::vector<MetricsRow>& rows) {
  auto point = [](const StopPoint& s) {
    return json{{"step", s.step >= 0 ? json(s.step) : json(nullptr)}, {"test_acc", s.test_acc}};
  };
  json out;
  for (int64_t patience : {500, 1000, 2000})
    out["patience_on_test_loss"][std::to_string(patience)] = point(patience_stop(rows, patience));
  constexpr int64_t kWindow = 500;
  constexpr double kDrop = 0.01;
  out["weight_norm_rule"] = point(weight_norm_stop(rows, kWindow, kDrop));
  out["definition"] = cat("patience: stop when the best test loss is that many steps old, keeping "
                          "the best eval's weights (step null: never fired); weight-norm rule: "
                          "after train accuracy reaches 99%, stop at the first eval where ||theta|| "
                          "moved by less than ", kDrop * 100, "% over the last ", kWindow, " steps");
  return out;
}

json prediction_json(const GrokTimePrediction& g) {
  json out;
  out["T_m"] = g.t_m >= 0 ? json(g.t_m) : json(nullptr);
  out["T_g_observed"] = g.t_g >= 0 ? json(g.t_g) : json(nullptr);
  out["norm_at_T_m"] = g.t_m >= 0 ? json(g.norm_at_t_m) : json(nullptr);
  out["norm_at_T_g"] = g.t_g >= 0 ? json(g.norm_at_t_g) : json(nullptr);
  out["peak_norm_after_T_m"] = g.peak_step >= 0 ? json(g.peak_norm) : json(nullptr);
  out["peak_norm_step"] = g.peak_step >= 0 ? json(g.peak_step) : json(nullptr);
  out["rate_theory_lr_x_wd"] = g.rate_theory;
  if (g.fitted_between)
    out["between_T_m_and_T_g"] = {
        {"rate_fit", g.rate_between},
        {"r_squared", g.r_squared_between},
        {"rate_mean", g.rate_mean_between},
        {"rate_mean_over_theory", g.rate_theory > 0 ? json(g.rate_mean_between / g.rate_theory)
                                                    : json(nullptr)},
        {"definition", "every eval from T_m to T_g: least-squares fit of ln||theta|| (how "
                       "exponential the decay was), and ln(||theta_Tm||/||theta_Tg||)/(T_g - T_m), "
                       "the rate that makes the law exact"}};
  out["window_rule"] =
      cat("evals from T_m up to the first of: ", kFitWindowFraction * 100,
          "% of the way from T_m to the last eval; the first eval where ||theta|| is ",
          kFitWindowNormDrop * 100, "% below ||theta_Tm|| (included); always before T_g; at least ",
          kFitWindowMinEvals, " evals");
  json fit;
  fit["fitted"] = g.fitted;
  if (g.fitted) {
    fit["window_begin"] = g.window_begin;
    fit["window_end"] = g.window_end;
    fit["window_evals"] = g.window_evals;
    fit["rate"] = g.rate_fit;
    fit["intercept"] = g.intercept;
    fit["r_squared"] = g.r_squared;
    fit["rate_over_theory"] = g.rate_theory > 0 ? json(g.rate_fit / g.rate_theory) : json(nullptr);
  } else {
    fit["note"] = g.fit_note;
  }
  out["fit"] = fit;
  out["predicted_T_g_fit"] = optional_json(g.predicted_t_g_fit);
  out["predicted_T_g_theory"] = optional_json(g.predicted_t_g_theory);
  out["relative_error_fit"] = optional_json(g.relative_error_fit);
  out["relative_error_theory"] = optional_json(g.relative_error_theory);
  if (!g.prediction_note.empty()) out["note"] = g.prediction_note;
  return out;
}

// The first analysed step at which `value` is below the level, or null.
template <typename F>
json first_below(const std::vector<SnapshotResult>& rows, F value) {
  for (const SnapshotResult& r : rows) {
    const std::optional<double> v = value(r);
    if (v && *v < kLossCrossing) return r.step;
  }
  return nullptr;
}

void progress(const AnalysisOptions& options, const char* format, auto... args) {
  if (options.quiet) return;
  std::fprintf(stderr, format, args...);
  std::fflush(stderr);
}

// Which snapshot is being analysed, one line rewritten in place on a terminal (nothing in a log).
void progress_in_place(const AnalysisOptions& options, const char* format, auto... args) {
  if (isatty(fileno(stderr))) progress(options, format, args...);
}

}  // namespace

json analyze_run(const std::string& run_dir, const AnalysisOptions& options) {
  check(options.every >= 1, "--every: must be at least 1, got ", options.every);
  check(options.sharpness_steps >= 1, "--sharpness-steps: must be at least 1, got ",
        options.sharpness_steps);
  check(!options.rho || (*options.rho >= 0 && std::isfinite(*options.rho)),
        "--rho: must be >= 0, got ", options.rho.value_or(0));
  check(options.rho_fraction >= 0 && std::isfinite(options.rho_fraction),
        "--rho-fraction: must be >= 0, got ", options.rho_fraction);
  const fs::path dir(run_dir);
  check(fs::exists(dir / "config.json"), "analyze: ", run_dir,
        " is not a run directory (no config.json)");
  TrainConfig config;
  const json config_json = read_json(dir / "config.json");  // its errors name the file already
  try {
    config = config_from_json(config_json);
    validate_data_and_model(config);  // before it sizes a dataset or a model
  } catch (const Error& e) {
    throw Error(cat("analyze: ", (dir / "config.json").string(), ": ", e.what()));
  }
  const Operation op = parse_operation(config.op);
  const Dataset data = make_dataset(op, config.p);
  const int64_t p = data.p;
  const bool split_file = fs::exists(dir / "split.txt");
  const Split split = split_file ? read_split((dir / "split.txt").string(), data)
                                 : random_split(data, config.frac, config.seed);
  const TokenFormat format = token_format(config);
  const LossKind loss_kind = parse_loss(config.loss);

  // The weights to analyse: every `every`-th snapshot and the last, or the final checkpoint.
  std::vector<WeightsSource> sources;
  const std::vector<std::pair<int64_t, std::string>> snapshots = list_snapshots(run_dir);
  for (size_t i = 0; i < snapshots.size(); ++i)
    if (i % options.every == 0 || i + 1 == snapshots.size())
      sources.push_back({snapshots[i].first, snapshots[i].second, false});
  const bool from_snapshots = !sources.empty();
  if (!from_snapshots) {
    const Checkpoint checkpoint = load_checkpoint(run_dir);  // throws naming what is missing
    const int64_t step = checkpoint.run_state.count("step")
                             ? metadata_number<int64_t>(checkpoint.run_state, "step", run_dir)
                             : 0;
    sources.push_back({step, checkpoint_dir(run_dir), true});
    progress(options,
             "analyze: %s has no snapshots (train --snapshot-every N); analysing the "
             "final checkpoint alone\n",
             run_dir.c_str());
  }

  // The models: float32 as trained, for logits; a float64 twin for sharpness, whose small loss
  // differences float32 would round away.
  Generator gen(config.seed);
  std::shared_ptr<nn::Model> model = build_model(config, data, gen);
  std::shared_ptr<nn::Model> model64 = build_model(config, data, gen);
  model64->to(DType::Float64);
  const Tensor train_tokens = make_tokens(data, split.train, format);
  const Tensor train_labels = make_labels(data, split.train);
  const std::vector<int64_t> train_label_values = labels_of(data, split.train);
  const std::vector<int64_t> test_label_values = labels_of(data, split.test);
  // Rows of the all-pairs logits are the pair indices a·p + b themselves.
  const bool fourier = op != Operation::S5;  // Z_p structure; s5 is a permutation group
  const bool restricted = op == Operation::Add;
  std::vector<int64_t> all_labels;
  if (restricted) all_labels = labels_of(data, data.pairs);  // add: every pair, in row order

  // The key frequencies, from the last weights' embedding unless given.
  std::vector<int64_t> keys = options.key_frequencies;
  const bool keys_given = !keys.empty();
  check(fourier || !keys_given,
        "--key-frequencies: has no effect on an s5 run (the Fourier analysis is of Z_p)");
  for (size_t i = 0; i < keys.size(); ++i) {
    check(keys[i] >= 1 && keys[i] <= p / 2, "--key-frequencies: ", keys[i],
          " is not a frequency of Z_", p, " (1..", p / 2, ")");
    // A frequency listed twice would count its energy twice, and the restricted loss with it.
    check(std::find(keys.begin(), keys.begin() + i, keys[i]) == keys.begin() + i,
          "--key-frequencies: ", keys[i], " is listed twice");
  }
  std::optional<EmbeddingSpectrum> last_spectrum;
  if (fourier) {
    last_spectrum = embedding_spectrum(load_weights(sources.back()), p);
    if (!keys_given) keys = key_frequencies(last_spectrum->norm);
  }

  // Without peaks (an embedding that uses every frequency, as the one-hot MLP's tends to) the
  // restricted loss keeps every frequency: the part of the logits that depends on (a+b) mod p
  // alone, which is what a generalising solution computes.
  std::vector<int64_t> restricted_keys = keys;
  if (restricted_keys.empty())
    for (int64_t k = 1; 2 * k <= p; ++k) restricted_keys.push_back(k);

  std::vector<SnapshotResult> results;
  for (size_t i = 0; i < sources.size(); ++i) {
    const WeightsSource& source = sources[i];
    progress_in_place(options, "analyze: step %lld (%zu of %zu)\r",
                      static_cast<long long>(source.step), i + 1, sources.size());
    const NamedTensors weights = load_weights(source);
    try {
      model->load_state_dict(as_map(weights, DType::Float32));
      model64->load_state_dict(as_map(weights, DType::Float64));
    } catch (const Error& e) {
      throw Error(
          cat("analyze: ", source.path, " does not fit the model of config.json: ", e.what()));
    }
    SnapshotResult r;
    r.step = source.step;
    const Tensor logits = all_pair_logits(*model, p, format);  // [p², p], float32
    const std::vector<double> logits64 = logits.to_vector<double>();
    r.train = loss_accuracy(logits64, logits.size(1), split.train, train_label_values);
    r.test = loss_accuracy(logits64, logits.size(1), split.test, test_label_values);
    r.collapse = softmax_collapse_fraction(logits, split.train);
    if (restricted)
      r.restricted = restricted_excluded_loss(logits64, p, logits.size(1), restricted_keys,
                                              all_labels, split.train);
    r.norms = weight_norms(model->named_parameters());
    if (fourier) {
      r.spectrum = embedding_spectrum(model->named_parameters(), p);
      r.key_count = static_cast<int64_t>(key_frequencies(r.spectrum.norm).size());
      r.key_fraction = key_energy_fraction(r.spectrum.norm, keys);
      r.effective_frequencies = effective_frequency_count(r.spectrum.norm);
    }
    const double rho = options.rho ? *options.rho : options.rho_fraction * r.norms.total;
    r.sharp =
        sharpness(*model64, train_tokens, train_labels, rho, options.sharpness_steps, loss_kind);
    results.push_back(std::move(r));
  }
  progress_in_place(options, "\n");

  // Neuron clusters of the last weights (the model holds them now).
  std::optional<NeuronClusters> clusters;
  std::string neuron_description;
  if (fourier) {
    const NeuronActivations activations = neuron_activations(*model, config, p);
    clusters = cluster_neurons(activations.values);
    neuron_description = activations.description;
  }

  // The §3.2 prediction from metrics.csv and summary.json.
  std::optional<GrokTimePrediction> prediction;
  std::string prediction_missing;
  json early_stopping = json{{"note", "no metrics.csv in the run directory"}};
  if (fs::exists(dir / "metrics.csv")) {
    const std::vector<MetricsRow> rows = MetricsLog::read((dir / "metrics.csv").string());
    early_stopping = early_stopping_json(rows);
    json summary = fs::exists(dir / "summary.json") ? read_json(dir / "summary.json") : json();
    int64_t t_m = summary_time(summary, "T_m"), t_g = summary_time(summary, "T_g");
    if (summary.is_null()) {  // an interrupted run: find them in metrics.csv as train does
      for (const MetricsRow& row : rows) {
        if (t_m < 0 && row.train_acc >= 0.99) t_m = row.step;
        if (t_g < 0 && row.test_acc >= 0.99) t_g = row.step;
      }
    }
    prediction = predict_grok_time(rows, t_m, t_g, config.wd);
    // The law's rate assumes decay toward zero by decoupled weight decay (AdamW) or SGD.
    if (config.optimizer == "adam" || config.wd_target != "zero")
      prediction->prediction_note +=
          (prediction->prediction_note.empty() ? "" : " ") +
          cat("(the lr x wd rate assumes decoupled weight decay toward zero; this run has "
              "--optimizer ",
              config.optimizer, " --wd-target ", config.wd_target, ")");
  } else {
    prediction_missing = "no metrics.csv in the run directory";
  }

  // --- outputs --------------------------------------------------------------------------------
  const fs::path out_dir = dir / "analysis";
  std::error_code error;
  fs::create_directories(out_dir, error);
  check(!error, "analyze: cannot create ", out_dir.string(), ": ", error.message());
  write_analysis_csv(out_dir / "analysis.csv", results);
  write_weight_norms_csv(out_dir / "weight_norms.csv", results);
  std::vector<std::string> outputs = {"analysis.csv", "weight_norms.csv"};
  if (fourier) {
    write_fourier_csv(out_dir / "fourier.csv", results);
    write_neurons_csv(out_dir / "neurons.csv", *clusters);
    outputs.insert(outputs.end(), {"fourier.csv", "neurons.csv"});
  }

  json a;
  a["run_dir"] = run_dir;
  a["preset"] = config.preset;
  a["model"] = config.model;
  a["op"] = config.op;
  a["p"] = p;
  a["source"] =
      from_snapshots ? "snapshots" : "the final checkpoint alone (the run has no snapshots)";
  json steps = json::array();
  for (const SnapshotResult& r : results) steps.push_back(r.step);
  a["steps"] = steps;
  a["split"] = split_file ? "split.txt" : "regenerated from the seed (no split.txt)";
  a["metrics_csv"] = fs::exists(dir / "metrics.csv");
  a["losses"] = "softmax cross-entropy in float64 of the float32 model's logits, recomputed";

  json key_block;
  if (fourier) {
    key_block["values"] = keys;
    key_block["from"] =
        keys_given ? std::string("--key-frequencies")
                   : cat("the embedding of the last analysed step (", results.back().step, ")");
    key_block["rule"] =
        cat("frequencies whose embedding Fourier energy (norm^2) exceeds ", kKeyFrequencyFactor,
            " x the median energy of the non-constant "
            "frequencies");
    key_block["embedding"] = last_spectrum->source;
    key_block["energy_fraction_at_last_step"] = key_energy_fraction(last_spectrum->norm, keys);
    key_block["effective_frequencies_at_last_step"] =
        effective_frequency_count(last_spectrum->norm);
    // The strongest frequencies' energy over the median, for judging the rule's cut.
    const std::vector<double> ratio = energy_over_median(last_spectrum->norm);
    std::vector<std::pair<double, int64_t>> ranked;
    for (size_t k = 1; k < ratio.size(); ++k)
      ranked.emplace_back(ratio[k], static_cast<int64_t>(k));
    std::sort(ranked.rbegin(), ranked.rend());
    json strongest = json::array();
    for (size_t i = 0; i < ranked.size() && i < 12; ++i)
      strongest.push_back(
          {{"frequency", ranked[i].second}, {"energy_over_median", ranked[i].first}});
    key_block["strongest_at_last_step"] = strongest;
    key_block["norms_at_last_step"] = last_spectrum->norm;
  } else {
    key_block["note"] = "s5 is not Z_p: no Fourier analysis";
  }
  a["key_frequencies"] = key_block;

  json cluster_block;
  if (clusters) {
    json sizes = json::object();
    for (const auto& [k, n] : clusters->sizes) sizes[std::to_string(k)] = n;
    cluster_block["step"] = results.back().step;
    cluster_block["activation"] = neuron_description;
    cluster_block["threshold"] = clusters->threshold;
    cluster_block["neurons"] = clusters->neurons.size();
    cluster_block["sizes"] = sizes;
    cluster_block["unclustered"] = clusters->unclustered;
  } else {
    cluster_block["note"] = "s5 is not Z_p: no Fourier analysis";
  }
  a["neuron_clusters"] = cluster_block;

  json restricted_block;
  restricted_block["computed"] = restricted;
  if (!restricted) {
    restricted_block["note"] =
        cat("restricted and excluded loss are defined for add only (the "
            "run's op is ",
            config.op, ")");
  } else {
    restricted_block["frequencies"] = restricted_keys;
    if (keys.empty())
      restricted_block["note"] =
          "no key frequencies (the embedding's spectrum has no peaks): "
          "every frequency is kept, i.e. the part of the logits that "
          "depends on (a+b) mod p alone";
    restricted_block["definition"] =
        "logits over every (a, b) projected, for each output c, on cos/sin(w_k(a+b)) of the key "
        "frequencies; restricted = that projection plus each output's mean over (a, b) (bias "
        "correction), loss on every pair (restricted_loss, Nanda's) and on the train pairs "
        "(restricted_loss_train); excluded = logits minus the projection, loss on the train pairs";
  }
  a["restricted_loss"] = restricted_block;

  a["grok_time_prediction"] =
      prediction ? prediction_json(*prediction) : json{{"note", prediction_missing}};
  a["early_stopping"] = early_stopping;

  json crossings;
  crossings["level"] = kLossCrossing;
  crossings["restricted_loss_below"] =
      first_below(results, [](const SnapshotResult& r) -> std::optional<double> {
        return r.restricted ? std::optional<double>(r.restricted->restricted_all) : std::nullopt;
      });
  crossings["test_loss_below"] = first_below(
      results, [](const SnapshotResult& r) -> std::optional<double> { return r.test.loss; });
  crossings["excluded_loss_peak_step"] = nullptr;
  double peak = -1;
  for (const SnapshotResult& r : results)
    if (r.restricted && r.restricted->excluded_train > peak) {
      peak = r.restricted->excluded_train;
      crossings["excluded_loss_peak_step"] = r.step;
    }
  a["crossings"] = crossings;

  json trends;
  trends["sharpness_first"] = results.front().sharp.value;
  trends["sharpness_last"] = results.back().sharp.value;
  trends["collapse_last"] = results.back().collapse;
  const auto sharpest = std::max_element(results.begin(), results.end(),
                                         [](const SnapshotResult& x, const SnapshotResult& y) {
                                           return x.sharp.value < y.sharp.value;
                                         });
  trends["sharpness_max"] = sharpest->sharp.value;
  trends["sharpness_max_step"] = sharpest->step;
  const auto collapsed = std::max_element(
      results.begin(), results.end(),
      [](const SnapshotResult& x, const SnapshotResult& y) { return x.collapse < y.collapse; });
  trends["collapse_max"] = collapsed->collapse;
  trends["collapse_max_step"] = collapsed->step;
  a["trends"] = trends;

  json settings;
  settings["every"] = options.every;
  settings["sharpness_rho"] = options.rho ? json{{"rule", "absolute"}, {"rho", *options.rho}}
                                          : json{{"rule", "fraction of each snapshot's ||theta||"},
                                                 {"fraction", options.rho_fraction}};
  settings["sharpness_steps"] = options.sharpness_steps;
  settings["sharpness"] =
      cat("projected gradient ascent on the train ",
          parse_loss(config.loss) == LossKind::StableMax ? "StableMax" : "softmax",
          " cross-entropy in float64, first step SAM's rho g/|g|, then "
          "eps <- Proj_rho(eps + rho g/|g|); the largest rise seen");
  settings["softmax_collapse"] = "train samples whose float32 sum_j exp(z_j - max z) == 1";
  settings["neuron_threshold"] = kNeuronClusterThreshold;
  a["settings"] = settings;

  outputs.push_back("analysis.json");
  a["outputs"] = outputs;
  if (options.plots) a["plots"] = plot_analysis(out_dir.string(), a);
  std::ofstream json_out = open_output(out_dir / "analysis.json");
  json_out << a.dump(2) << '\n';
  return a;
}

namespace {

// A JSON value for people: integers as they are, other numbers to 4 significant digits.
std::string show(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_number_float()) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4g", v.get<double>());
    return text;
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string join_values(const json& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : " ") + v.dump();
  return out;
}

std::string percent(const json& v) {
  return v.is_null() ? "-" : show(json(100 * v.get<double>())) + "%";
}

}  // namespace

std::string analysis_summary(const json& a) {
  std::ostringstream out;
  const json& steps = a["steps"];
  out << "analyze " << show(a["run_dir"]) << ": " << steps.size()
      << (a["source"] == "snapshots" ? " snapshots"
                                     : " set of weights (no snapshots: the final "
                                       "checkpoint)")
      << ", steps " << steps.front() << ".." << steps.back() << ", " << show(a["model"])
      << " model, "
      << task_name(parse_operation(a["op"].get<std::string>()), a["p"].get<int64_t>()) << "\n";
  const json& keys = a["key_frequencies"];
  if (keys.contains("values")) {
    out << "key frequencies: ";
    if (keys["values"].empty())
      out << "none, no peaks in the embedding's spectrum (";
    else
      out << join_values(keys["values"]) << " (" << percent(keys["energy_fraction_at_last_step"])
          << " of the embedding's non-constant energy; ";
    out << "effective number of frequencies " << show(keys["effective_frequencies_at_last_step"])
        << ")\n";
  }
  const json& clusters = a["neuron_clusters"];
  if (clusters.contains("sizes")) {
    std::vector<std::pair<int64_t, int64_t>> sizes;  // (neurons, frequency), largest first
    for (const auto& [k, n] : clusters["sizes"].items())
      sizes.emplace_back(n.get<int64_t>(), std::stoll(k));
    std::sort(sizes.begin(), sizes.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first > y.first : x.second < y.second;
    });
    out << "neuron clusters (>= " << show(clusters["threshold"])
        << " of a neuron's variance at one frequency): ";
    for (size_t i = 0; i < sizes.size() && i < 8; ++i)
      out << "k=" << sizes[i].second << ": " << sizes[i].first << ", ";
    if (sizes.size() > 8) out << "... (" << sizes.size() << " frequencies), ";
    out << "unclustered " << clusters["unclustered"] << " of " << clusters["neurons"] << "\n";
  }
  const json& g = a["grok_time_prediction"];
  if (g.contains("T_m")) {
    out << "T_m " << show(g["T_m"]) << ", T_g " << show(g["T_g_observed"])
        << " (observed); ||theta|| " << show(g["norm_at_T_m"]) << " at T_m, "
        << show(g["norm_at_T_g"]) << " at T_g\n";
    if (g["fit"]["fitted"].get<bool>())
      out << "weight-norm decay fit, steps " << g["fit"]["window_begin"] << ".."
          << g["fit"]["window_end"] << ": rate " << show(g["fit"]["rate"]) << "/step (R^2 "
          << show(g["fit"]["r_squared"]) << ") vs lr x wd " << show(g["rate_theory_lr_x_wd"])
          << "\n";
    if (g.contains("between_T_m_and_T_g"))
      out << "from T_m to T_g: mean decay rate " << show(g["between_T_m_and_T_g"]["rate_mean"])
          << "/step (" << show(g["between_T_m_and_T_g"]["rate_mean_over_theory"])
          << " x lr x wd); exponential fit R^2 " << show(g["between_T_m_and_T_g"]["r_squared"])
          << "\n";
    if (!g["predicted_T_g_fit"].is_null() || !g["predicted_T_g_theory"].is_null())
      out << "predicted T_g: " << show(g["predicted_T_g_fit"]) << " from the fitted rate (error "
          << percent(g["relative_error_fit"]) << " of T_g - T_m), "
          << show(g["predicted_T_g_theory"]) << " from lr x wd (error "
          << percent(g["relative_error_theory"]) << ")\n";
  }
  if (g.contains("note")) out << "  (no prediction: " << show(g["note"]) << ")\n";
  const json& e = a["early_stopping"];
  if (e.contains("weight_norm_rule")) {
    out << "early stopping on test loss with patience 1000 steps: ";
    const json& p = e["patience_on_test_loss"]["1000"];
    out << (p["step"].is_null() ? std::string("never fires")
                                : cat("stops at step ", p["step"].get<int64_t>(),
                                      " keeping test accuracy ", show(p["test_acc"])))
        << "; weight-norm rule: ";
    const json& w = e["weight_norm_rule"];
    out << (w["step"].is_null() ? std::string("never fires")
                                : cat("stops at step ", w["step"].get<int64_t>(),
                                      " at test accuracy ", show(w["test_acc"])))
        << "\n";
  }
  const json& c = a["crossings"];
  out << "restricted loss < " << show(c["level"]) << " first at step "
      << show(c["restricted_loss_below"]) << "; test loss < " << show(c["level"])
      << " first at step " << show(c["test_loss_below"]);
  if (!a["restricted_loss"]["computed"].get<bool>())
    out << " (" << show(a["restricted_loss"]["note"]) << ")";
  else if (a["key_frequencies"]["values"].empty())
    out << " (restricted loss over every frequency: the logits' (a+b) mod p part)";
  out << "\n";
  const json& t = a["trends"];
  out << "sharpness: " << show(t["sharpness_first"]) << " at step " << steps.front() << ", "
      << show(t["sharpness_last"]) << " at step " << steps.back() << ", largest "
      << show(t["sharpness_max"]) << " at step " << show(t["sharpness_max_step"])
      << "; softmax collapse: " << percent(t["collapse_last"]) << " of train samples at the end, "
      << percent(t["collapse_max"]) << " at most (step " << show(t["collapse_max_step"]) << ")\n";
  return out.str();
}

}  // namespace tg::grok::analysis
