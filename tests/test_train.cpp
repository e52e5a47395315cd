// Training-run tests: the run directory's files and their columns, memorisation of a tiny config,
// T_m/T_g against metrics.csv, exact resume (full batch, and minibatches with dropout), --init,
// --split, --stop-at-grok, request_stop() and SIGINT, a NaN loss, and every bad-input error
// (each naming its flag or file, and leaving an existing run directory byte-for-byte unchanged),
// and a run file's write that fails (a full disk, a name taken) keeping the old file.
#include <catch2/catch.hpp>

#include "test_support.h"
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "grok/atomic_write.h"
#include "grok/checkpoint.h"
#include "grok/config.h"
#include "grok/dataset.h"
#include "grok/metrics.h"
#include "grok/run_lock.h"
#include "grok/split.h"
#include "grok/trainer.h"
#include "nn/safetensors.h"

using namespace tg;
using namespace tg::grok;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;
using json = nlohmann::json;

using tg::testing::TempDir;
using tg::testing::read_text;
using tg::testing::require_same_tensors;

namespace {

RunOptions fresh(const std::string& out) { return RunOptions{out, false, false, true}; }
RunOptions resumed(const std::string& out) { return RunOptions{out, true, false, true}; }

// The one-hot MLP (x², full batch, AdamW lr 1e-2) on a + b mod 23: it memorises its 317 train
// pairs by step ~75 and generalises near step ~550, at a fraction of a millisecond per step.
TrainConfig tiny_mlp() {
  TrainConfig c = preset("mlp");
  c.p = 23;
  c.frac = 0.6;
  c.d_mlp = 64;
  c.steps = 200;
  c.eval_every = 20;
  c.checkpoint_every = 100;
  c.threads = 1;
  return c;
}

// A one-layer transformer on a + b mod 13 with minibatches of 16 out of 84 train pairs (5 per
// epoch, the partial one dropped) and dropout, so that the sampler and the dropout generator
// both carry state across a checkpoint.
TrainConfig tiny_transformer() {
  TrainConfig c = preset("nanda");
  c.p = 13;
  c.frac = 0.5;
  c.d_model = 16;
  c.heads = 2;
  c.d_mlp = 32;
  c.dropout = 0.1;
  c.batch = 16;
  c.lr = 3e-3;
  c.steps = 64;
  c.eval_every = 8;
  c.checkpoint_every = 16;
  c.threads = 1;
  return c;
}

json read_json(const fs::path& path) { return json::parse(read_text(path)); }

// Every regular file under `dir`, by relative path, with its bytes.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file())
      files[fs::relative(entry.path(), dir).string()] = read_text(entry.path());
  return files;
}

void copy_tree(const fs::path& from, const fs::path& to) {
  fs::copy(from, to, fs::copy_options::recursive);
}

void truncate_to_half(const fs::path& path) {
  const std::string bytes = read_text(path);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes.substr(0, bytes.size() / 2);
}

// metrics.csv: checks the header and returns the rows as text fields.
std::vector<std::vector<std::string>> read_metrics(const fs::path& path) {
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);
  REQUIRE(line == MetricsLog::kHeader);
  REQUIRE(line == "step,train_loss,train_acc,test_loss,test_acc,weight_norm,lr,elapsed_s");
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::istringstream fields_in(line);
    for (std::string f; std::getline(fields_in, f, ',');) fields.push_back(f);
    REQUIRE(fields.size() == 8);
    rows.push_back(fields);
  }
  return rows;
}

enum Column { Step, TrainLoss, TrainAcc, TestLoss, TestAcc, WeightNorm, Lr, Elapsed };
double num(const std::vector<std::string>& row, Column c) { return std::stod(row[c]); }

// The rows without elapsed_s, the one column a resumed run may not reproduce.
std::vector<std::vector<std::string>> without_elapsed(std::vector<std::vector<std::string>> rows) {
  for (auto& row : rows) row.pop_back();
  return rows;
}

// The first step whose `column` is at least 99%, or -1.
int64_t first_at_99(const std::vector<std::vector<std::string>>& rows, Column column) {
  for (const auto& row : rows)
    if (num(row, column) >= 0.99) return std::stoll(row[Step]);
  return -1;
}

int64_t checkpoint_step(const std::string& path) {
  return std::stoll(load_checkpoint(path).run_state.at("step"));
}

// The loss and accuracy of a checkpoint's weights on its run's training set.
LossAccuracy train_metrics_of(const TrainConfig& c, const std::string& checkpoint,
                              const std::string& split_file) {
  const Dataset data = make_dataset(parse_operation(c.op), c.p);
  const Split split = read_split(split_file, data);
  Generator gen(c.seed);
  auto model = build_model(c, data, gen);
  const Checkpoint ckpt = load_checkpoint(checkpoint);
  model->load_state_dict(std::map<std::string, Tensor>(ckpt.model.begin(), ckpt.model.end()));
  return evaluate(*model, make_tokens(data, split.train, token_format(c)),
                  make_labels(data, split.train));
}

// Runs `c` into `out` and stops it, by request_stop() or by SIGINT, as soon as its metrics.csv
// has `rows` rows. The run must be long enough not to end by itself first.
RunStatus run_and_stop(const TrainConfig& c, const std::string& out, int rows, bool by_signal) {
  std::atomic<bool> done{false};
  std::thread stopper([&] {
    while (!done) {
      std::ifstream in(fs::path(out) / "metrics.csv");
      int lines = 0;
      for (std::string line; std::getline(in, line);) ++lines;
      if (lines >= rows + 1) {
        if (by_signal) std::raise(SIGINT);
        else request_stop();
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  RunStatus status = RunStatus::Completed;
  try {
    status = train(c, fresh(out));
  } catch (...) {
    done = true;
    stopper.join();
    throw;
  }
  done = true;
  stopper.join();
  return status;
}

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("a run writes config.json, split.txt, metrics.csv, summary.json, curves and a "
          "checkpoint, and a tiny config memorises", "[train]") {
  TempDir tmp;
  const std::string out = tmp / "run";
  const TrainConfig c = tiny_mlp();
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(train(c, fresh(out)) == RunStatus::Completed);
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  REQUIRE(seconds.count() < 30);  // about 0.1 s in Release, well under 30 s with the sanitizers

  const fs::path dir(out);
  for (const char* f : {"config.json", "split.txt", "metrics.csv", "summary.json", "curves.gp",
                        "checkpoint/model.safetensors", "checkpoint/optimizer.safetensors"}) {
    INFO(f);
    REQUIRE(fs::is_regular_file(dir / f));
  }
  // The swap leaves no half-made or stale checkpoint beside the real one.
  REQUIRE_FALSE(fs::exists(dir / "checkpoint.tmp"));
  REQUIRE_FALSE(fs::exists(dir / "checkpoint.old"));
  REQUIRE(read_text(dir / "curves.gp").find("metrics.csv") != std::string::npos);
  if (have_gnuplot()) {
    REQUIRE(fs::file_size(dir / "curves.png") > 1000);
    REQUIRE(read_text(dir / "curves.png").substr(1, 3) == "PNG");
  }

  // config.json holds the whole configuration.
  REQUIRE(to_json(config_from_json(read_json(dir / "config.json"))) == to_json(c));

  // split.txt is the seeded split: floor(0.6 · 529) = 317 train pairs.
  const Dataset data = make_dataset(Operation::Add, 23);
  const Split split = read_split(dir / "split.txt", data);
  const Split expected = random_split(data, c.frac, c.seed);
  REQUIRE(split.train.size() == 317);
  REQUIRE(split.train == expected.train);
  REQUIRE(split.test == expected.test);

  // metrics.csv: a row at step 0 and every eval_every steps, in range, lr after warm-up.
  const auto rows = read_metrics(dir / "metrics.csv");
  REQUIRE(rows.size() == static_cast<size_t>(c.steps / c.eval_every + 1));
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO("row " << i);
    REQUIRE(std::stoll(rows[i][Step]) == static_cast<int64_t>(i) * c.eval_every);
    for (Column acc : {TrainAcc, TestAcc}) {
      REQUIRE(num(rows[i], acc) >= 0);
      REQUIRE(num(rows[i], acc) <= 1);
    }
    REQUIRE(num(rows[i], TrainLoss) > 0);
    REQUIRE(num(rows[i], WeightNorm) > 0);
    if (i > 0) {
      REQUIRE(num(rows[i], Lr) == Approx(c.lr).epsilon(1e-6));
      REQUIRE(num(rows[i], Elapsed) >= num(rows[i - 1], Elapsed));
    }
  }
  REQUIRE(num(rows[0], Lr) == 0);  // warm-up starts at zero

  // It memorises: train accuracy reaches 99% within the run, and the loss falls.
  const int64_t t_m = first_at_99(rows, TrainAcc);
  REQUIRE(t_m > 0);
  REQUIRE(num(rows.back(), TrainAcc) >= 0.99);
  REQUIRE(num(rows.back(), TrainLoss) < num(rows.front(), TrainLoss) / 10);

  // summary.json agrees with metrics.csv.
  const json summary = read_json(dir / "summary.json");
  for (const char* key : {"status", "steps", "T_m", "T_g", "ratio", "final", "wall_seconds",
                          "train_ms_per_step", "wall_seconds_by_part"}) {
    INFO(key);
    REQUIRE(summary.contains(key));
  }
  REQUIRE(summary["status"] == "completed");
  REQUIRE(summary["steps"] == c.steps);
  REQUIRE(summary["T_m"] == t_m);
  const int64_t t_g = first_at_99(rows, TestAcc);
  if (t_g < 0) {
    REQUIRE(summary["T_g"].is_null());
    REQUIRE(summary["ratio"].is_null());
  } else {
    REQUIRE(summary["T_g"] == t_g);
    REQUIRE(summary["ratio"].get<double>() == Approx(double(t_g) / double(t_m)));
  }
  const json& final_row = summary["final"];
  REQUIRE(final_row["step"] == c.steps);
  REQUIRE(final_row["train_loss"].get<double>() == num(rows.back(), TrainLoss));
  REQUIRE(final_row["train_acc"].get<double>() == num(rows.back(), TrainAcc));
  REQUIRE(final_row["test_loss"].get<double>() == num(rows.back(), TestLoss));
  REQUIRE(final_row["test_acc"].get<double>() == num(rows.back(), TestAcc));
  REQUIRE(final_row["weight_norm"].get<double>() == num(rows.back(), WeightNorm));
  REQUIRE(summary["wall_seconds"].get<double>() > 0);
  REQUIRE(summary["train_ms_per_step"].get<double>() > 0);
  // The wall time by part: steps, evals and the checkpoint at the end took some, the rest is
  // other, and the parts add up to the whole.
  const json& parts = summary["wall_seconds_by_part"];
  REQUIRE(parts.size() == 4);
  double whole = 0;
  for (const char* part : {"steps", "evals", "checkpoints", "other"}) {
    INFO(part);
    REQUIRE(parts.contains(part));
    REQUIRE(parts[part].get<double>() >= (std::string(part) == "other" ? 0.0 : 1e-9));
    whole += parts[part].get<double>();
  }
  REQUIRE(whole == Approx(summary["wall_seconds"].get<double>()));
  REQUIRE(parts["steps"].get<double>() ==
          Approx(summary["train_ms_per_step"].get<double>() * c.steps / 1000));

  // The checkpoint at the end: the model's parameters by name, AdamW's two moments per
  // parameter, and the run state with the configuration in the metadata.
  const Checkpoint ckpt = load_checkpoint(out);
  REQUIRE(ckpt.run_state.at("step") == std::to_string(c.steps));
  REQUIRE(json::parse(ckpt.run_state.at("config")) == to_json(c));
  Generator gen(c.seed);
  const auto model = build_model(c, data, gen);
  const auto names = model->named_parameters();
  REQUIRE(ckpt.model.size() == names.size());
  for (size_t i = 0; i < names.size(); ++i) REQUIRE(ckpt.model[i].first == names[i].first);
  REQUIRE(ckpt.optimizer.size() == 2 * names.size());
  // Its weights are the final row's: the same train loss, recomputed from the file.
  REQUIRE(train_metrics_of(c, out, dir / "split.txt").loss ==
          Approx(num(rows.back(), TrainLoss)).epsilon(1e-6));
}

TEST_CASE("model_parameter_count is the built model's count, without building it", "[train]") {
  std::vector<TrainConfig> configs{tiny_mlp(), preset("nanda"), preset("power"), preset("mlp")};
  TrainConfig odd = preset("nanda");
  odd.layers = 3;
  odd.d_model = 18;
  odd.heads = 3;
  odd.d_mlp = 7;
  odd.tokens = "aopbeq";
  for (const char* ln : {"none", "pre", "post"}) {
    odd.ln = ln;
    configs.push_back(odd);
  }
  odd.op = "s5";
  configs.push_back(odd);
  for (const TrainConfig& c : configs) {
    INFO(c.preset << " " << c.model << " ln " << c.ln << " op " << c.op);
    const Dataset data = make_dataset(parse_operation(c.op), c.p);
    Generator gen(0);
    REQUIRE(model_parameter_count(c, data) ==
            static_cast<double>(build_model(c, data, gen)->num_parameters()));
  }
}

TEST_CASE("an eval's chunks: the device's rows by default, and any size measures the same",
          "[train]") {
  CHECK(eval_chunk_rows(Device::cpu()) == 4096);
  CHECK(eval_chunk_rows(Device::cuda(0)) == 65536);
  TrainConfig c = preset("nanda");
  c.p = 31;  // 961 pairs
  c.d_model = 16;
  c.d_mlp = 24;
  c.heads = 2;
  const Dataset data = make_dataset(parse_operation(c.op), c.p);
  Generator gen(3);
  auto model = build_model(c, data, gen);
  std::vector<int64_t> pairs(static_cast<size_t>(data.size()));
  std::iota(pairs.begin(), pairs.end(), int64_t{0});
  const Tensor tokens = make_tokens(data, pairs, token_format(c));
  const Tensor labels = make_labels(data, pairs);
  model->train();
  const LossAccuracy whole = evaluate(*model, tokens, labels, 0);
  CHECK(model->is_training());  // restored
  // On the CPU the default is 4,096 rows: the whole set here, the same bits.
  const LossAccuracy one_chunk = evaluate(*model, tokens, labels, 4096);
  CHECK(whole.loss == one_chunk.loss);
  CHECK(whole.accuracy == one_chunk.accuracy);
  CHECK(whole.accuracy > 0);
  // Other chunks sum in another order: the same loss within float32's rounding, the same count.
  for (int64_t chunk : {1, 7, 960, 961, 962}) {
    INFO("chunk " << chunk);
    const LossAccuracy m = evaluate(*model, tokens, labels, chunk);
    CHECK(m.loss == Approx(whole.loss).epsilon(1e-5));
    CHECK(m.accuracy == whole.accuracy);
  }
  CHECK_THROWS_WITH(evaluate(*model, tokens, labels, -1),
                    Catch::Contains("chunk must be >= 0 rows, got -1"));
}

TEST_CASE("batch 0 is the full training set and -1 is Power's min(512, ceil(N/2))", "[train]") {
  TempDir tmp;
  TrainConfig c = tiny_mlp();  // 317 training pairs
  c.steps = 2;
  c.eval_every = 2;
  REQUIRE(train(c, fresh(tmp / "full")) == RunStatus::Completed);
  CHECK(read_json(fs::path(tmp / "full") / "summary.json")["batch_size"] == 317);
  c.batch = -1;
  REQUIRE(train(c, fresh(tmp / "auto")) == RunStatus::Completed);
  CHECK(read_json(fs::path(tmp / "auto") / "summary.json")["batch_size"] == 159);
  CHECK(preset("power").batch == -1);
}

TEST_CASE("a transformer's checkpoint holds its weights under TransformerLens names", "[train]") {
  TempDir tmp;
  TrainConfig c = tiny_transformer();
  c.steps = 4;
  REQUIRE(train(c, fresh(tmp / "run")) == RunStatus::Completed);
  const nn::SafetensorsFile file = nn::load_safetensors(tmp / "run/checkpoint/model.safetensors");
  // [n_heads, d_model, d_head] for W_Q/K/V, [n_heads, d_head, d_model] for W_O.
  const std::map<std::string, std::vector<int64_t>> expected{
      {"embed.W_E", {14, 16}},          {"pos_embed.W_pos", {3, 16}},
      {"blocks.0.attn.W_Q", {2, 16, 8}}, {"blocks.0.attn.W_K", {2, 16, 8}},
      {"blocks.0.attn.W_V", {2, 16, 8}}, {"blocks.0.attn.W_O", {2, 8, 16}},
      {"blocks.0.mlp.W_in", {16, 32}},  {"blocks.0.mlp.W_out", {32, 16}},
      {"unembed.W_U", {16, 13}}};
  for (const auto& [name, shape] : expected) {
    INFO(name);
    REQUIRE(file.contains(name));
    REQUIRE(file.at(name).shape() == shape);
  }
  REQUIRE(file.metadata.at("step") == "4");
  const nn::SafetensorsFile optimizer =
      nn::load_safetensors(tmp / "run/checkpoint/optimizer.safetensors");
  REQUIRE(optimizer.metadata.at("step") == "4");
  REQUIRE(optimizer.metadata.at("optimizer_steps") == "4");
}

TEST_CASE("--stop-at-grok ends a run once test accuracy has held 99%; T_m and T_g agree with "
          "metrics.csv", "[train]") {
  TempDir tmp;
  TrainConfig c = tiny_mlp();
  c.steps = 5000;
  c.eval_every = 25;
  c.checkpoint_every = 5000;
  c.stop_at_grok = true;
  c.grok_patience = 3;
  REQUIRE(train(c, fresh(tmp / "grok")) == RunStatus::Grokked);

  const auto rows = read_metrics(tmp / "grok/metrics.csv");
  const json summary = read_json(tmp / "grok/summary.json");
  const int64_t stopped = std::stoll(rows.back()[Step]);
  REQUIRE(stopped < c.steps);
  REQUIRE(summary["status"] == "grokked");
  REQUIRE(summary["steps"] == stopped);
  // The last three evals are at >= 99% test accuracy, and no three in a row before them are.
  REQUIRE(rows.size() >= 4);
  int streak = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    streak = num(rows[i], TestAcc) >= 0.99 ? streak + 1 : 0;
    if (i + 1 < rows.size()) REQUIRE(streak < 3);
  }
  REQUIRE(streak == 3);
  REQUIRE(summary["T_m"] == first_at_99(rows, TrainAcc));
  REQUIRE(summary["T_g"] == first_at_99(rows, TestAcc));
  REQUIRE(summary["T_g"].get<int64_t>() > summary["T_m"].get<int64_t>());  // grokking
  REQUIRE(summary["ratio"].get<double>() ==
          Approx(summary["T_g"].get<double>() / summary["T_m"].get<double>()));
  // The checkpoint is at the step it stopped.
  REQUIRE(checkpoint_step(tmp / "grok") == stopped);

  // Without the flag, the same run goes on to its last step.
  c.stop_at_grok = false;
  c.steps = stopped + 50;
  REQUIRE(train(c, fresh(tmp / "full")) == RunStatus::Completed);
  const auto full_rows = read_metrics(tmp / "full/metrics.csv");
  REQUIRE(full_rows.back()[Step] == std::to_string(stopped + 50));
  REQUIRE(read_json(tmp / "full/summary.json")["status"] == "completed");
}

TEST_CASE("a resumed run's metrics equal an uninterrupted run's exactly", "[train]") {
  TempDir tmp;
  auto check_resume = [&](TrainConfig c, const std::string& name) {
    const int64_t n = c.steps;
    const std::string a = tmp / (name + "_a"), b = tmp / (name + "_b");
    REQUIRE(train(c, fresh(a)) == RunStatus::Completed);

    TrainConfig first_half = c;
    first_half.steps = n / 2;
    REQUIRE(first_half.steps % c.checkpoint_every == 0);
    REQUIRE(train(first_half, fresh(b)) == RunStatus::Completed);
    REQUIRE(checkpoint_step(b) == n / 2);
    const std::map<std::string, std::string> first_half_state = load_checkpoint(b).run_state;
    // Resumed as `tinygrok train --resume B --steps N` does: config.json, then the new length.
    TrainConfig rest = config_from_json(read_json(fs::path(b) / "config.json"));
    REQUIRE(rest.steps == n / 2);
    rest.steps = n;
    REQUIRE(train(rest, resumed(b)) == RunStatus::Completed);

    const auto rows_a = read_metrics(fs::path(a) / "metrics.csv");
    const auto rows_b = read_metrics(fs::path(b) / "metrics.csv");
    REQUIRE(rows_a.size() == static_cast<size_t>(n / c.eval_every + 1));
    REQUIRE(without_elapsed(rows_b) == without_elapsed(rows_a));
    // Training moved: the check above compares changing numbers.
    REQUIRE(rows_a.back()[TrainLoss] != rows_a[rows_a.size() / 2][TrainLoss]);

    // The final checkpoints agree bit for bit, weights and optimiser state, and so does the
    // run state but for the clocks.
    const Checkpoint ca = load_checkpoint(a), cb = load_checkpoint(b);
    require_same_tensors(ca.model, cb.model);
    require_same_tensors(ca.optimizer, cb.optimizer);
    for (const char* key : {"step", "t_m", "t_g", "grok_streak", "optimizer_steps",
                            "sampler_offset", "sampler_position", "generator_offset"}) {
      INFO(key);
      REQUIRE(ca.run_state.at(key) == cb.run_state.at(key));
    }
    const json sa = read_json(fs::path(a) / "summary.json");
    const json sb = read_json(fs::path(b) / "summary.json");
    for (const char* key : {"status", "steps", "T_m", "T_g", "ratio", "final"}) {
      INFO(key);
      REQUIRE(sa[key] == sb[key]);
    }
    // The clocks go on from the checkpoint's: the resumed run's include the first half's, as
    // they were when its checkpoint was written (before that checkpoint's own writing).
    for (const char* part : {"eval_seconds", "train_seconds", "checkpoint_seconds"}) {
      INFO(part);
      const double first_half_seconds = std::stod(first_half_state.at(part));
      const double resumed_seconds = std::stod(cb.run_state.at(part));
      if (std::string(part) == "checkpoint_seconds") {
        REQUIRE(resumed_seconds >= first_half_seconds);  // the second half may write just one
      } else {
        REQUIRE(first_half_seconds > 0);
        REQUIRE(resumed_seconds > first_half_seconds);
      }
    }
    return ca;
  };

  SECTION("full batch, the one-hot MLP") {
    TrainConfig c = tiny_mlp();
    c.checkpoint_every = 50;
    check_resume(c, "mlp");
  }
  SECTION("a checkpoint from before the clocks by part: they start from 0") {
    TrainConfig c = tiny_mlp();
    const std::string run = tmp / "older";
    REQUIRE(train(c, fresh(run)) == RunStatus::Completed);
    Checkpoint older = load_checkpoint(run);
    older.run_state.erase("eval_seconds");
    older.run_state.erase("checkpoint_seconds");
    save_checkpoint(run, older);
    c.steps += 20;
    REQUIRE(train(c, resumed(run)) == RunStatus::Completed);
    const json parts = read_json(fs::path(run) / "summary.json")["wall_seconds_by_part"];
    REQUIRE(parts["evals"].get<double>() > 0);  // this session's eval at its last step
    REQUIRE(parts["checkpoints"].get<double>() > 0);
  }
  SECTION("minibatches with dropout, a transformer, checkpoint in mid-epoch") {
    const TrainConfig c = tiny_transformer();
    // 32 steps of 5 batches an epoch: the checkpoint falls inside an epoch, after dropout draws.
    const Checkpoint ca = check_resume(c, "transformer");
    REQUIRE(ca.run_state.at("generator_offset") != "0");
    REQUIRE(ca.run_state.at("sampler_offset") != "0");
  }
  SECTION("post-LN, cosine schedule, gradient clipping, sgd with momentum, interrupted") {
    // The cosine schedule depends on the total steps, so this run keeps its length: it is
    // interrupted partway and resumed with the same configuration.
    TrainConfig c = tiny_transformer();
    c.ln = "post";
    c.schedule = "cosine";
    c.clip = 0.5;
    c.optimizer = "sgd";
    c.lr = 0.1;
    c.steps = 600;
    c.checkpoint_every = 1000;
    const std::string a = tmp / "cos_a", b = tmp / "cos_b";
    REQUIRE(train(c, fresh(a)) == RunStatus::Completed);
    REQUIRE(run_and_stop(c, b, 3, false) == RunStatus::Interrupted);
    const int64_t stopped = checkpoint_step(b);
    REQUIRE(stopped >= 2 * c.eval_every);
    REQUIRE(stopped < c.steps);
    REQUIRE(train(c, resumed(b)) == RunStatus::Completed);
    REQUIRE(without_elapsed(read_metrics(fs::path(b) / "metrics.csv")) ==
            without_elapsed(read_metrics(fs::path(a) / "metrics.csv")));
    require_same_tensors(load_checkpoint(a).model, load_checkpoint(b).model);
    require_same_tensors(load_checkpoint(a).optimizer, load_checkpoint(b).optimizer);
  }
}

TEST_CASE("request_stop() and SIGINT interrupt with a checkpoint that resumes exactly",
          "[train]") {
  TempDir tmp;
  for (const bool by_signal : {false, true}) {
    INFO((by_signal ? "SIGINT" : "request_stop()"));
    const std::string name = by_signal ? "signal" : "request";
    TrainConfig c = tiny_transformer();
    c.steps = 20000;  // only the stop ends it
    c.checkpoint_every = 20000;
    const std::string run = tmp / name;
    const RunStatus status = run_and_stop(c, run, 3, by_signal);
    REQUIRE(status == RunStatus::Interrupted);
    REQUIRE(exit_code(status) == 130);

    // It stopped at a step boundary after step 16 and wrote a checkpoint there.
    const json summary = read_json(fs::path(run) / "summary.json");
    REQUIRE(summary["status"] == "interrupted");
    const int64_t stopped = summary["steps"].get<int64_t>();
    REQUIRE(stopped >= 2 * c.eval_every);
    REQUIRE(stopped < c.steps);
    REQUIRE(checkpoint_step(run) == stopped);

    // Resumed to a later end, it matches a run that went there in one go.
    TrainConfig rest = config_from_json(read_json(fs::path(run) / "config.json"));
    rest.steps = stopped + 13;
    REQUIRE(train(rest, resumed(run)) == RunStatus::Completed);
    TrainConfig whole = c;
    whole.steps = stopped + 13;
    REQUIRE(train(whole, fresh(tmp / (name + "_whole"))) == RunStatus::Completed);
    REQUIRE(without_elapsed(read_metrics(fs::path(run) / "metrics.csv")) ==
            without_elapsed(read_metrics(tmp / (name + "_whole/metrics.csv"))));
    require_same_tensors(load_checkpoint(run).model,
                         load_checkpoint(tmp / (name + "_whole")).model);
  }
}

TEST_CASE("--init starts from a checkpoint's weights", "[train]") {
  TempDir tmp;
  TrainConfig c = tiny_mlp();
  c.steps = 100;
  const std::string source = tmp / "source";
  REQUIRE(train(c, fresh(source)) == RunStatus::Completed);
  const auto source_rows = read_metrics(fs::path(source) / "metrics.csv");

  // The same data and split, the weights of the source's step 100: its step-0 row is the
  // source's last row (but for lr and time), for each form of the path --init accepts.
  int n = 0;
  for (const std::string& init : {source, source + "/checkpoint",
                                  source + "/checkpoint/model.safetensors"}) {
    INFO(init);
    TrainConfig d = tiny_mlp();
    d.init = init;
    d.steps = 20;
    const std::string run = tmp / ("init" + std::to_string(n++));
    REQUIRE(train(d, fresh(run)) == RunStatus::Completed);
    const auto rows = read_metrics(fs::path(run) / "metrics.csv");
    REQUIRE(rows[0][Step] == "0");
    for (Column col : {TrainLoss, TrainAcc, TestLoss, TestAcc, WeightNorm}) {
      REQUIRE(rows[0][col] == source_rows.back()[col]);
      if (col != TrainAcc && col != TestAcc) REQUIRE(rows[0][col] != source_rows.front()[col]);
    }
    // The optimiser starts afresh: the run's own checkpoint counts its own steps.
    REQUIRE(load_checkpoint(run).run_state.at("optimizer_steps") == "20");
  }

  // A resumed run does not need its --init checkpoint any more.
  TrainConfig d = tiny_mlp();
  d.init = source;
  d.steps = 20;
  const std::string run = tmp / "init_then_resume";
  REQUIRE(train(d, fresh(run)) == RunStatus::Completed);
  const std::string moved = tmp / "source_moved";
  fs::rename(source, moved);
  TrainConfig rest = config_from_json(read_json(fs::path(run) / "config.json"));
  REQUIRE(rest.init == source);
  rest.steps = 40;
  REQUIRE(train(rest, resumed(run)) == RunStatus::Completed);
  REQUIRE(checkpoint_step(run) == 40);

  // Weights of another shape: the error names --init and the parameter, and nothing is written.
  TrainConfig other = tiny_mlp();
  other.d_mlp = 32;
  other.init = moved;
  const std::string bad = tmp / "init_bad";
  REQUIRE_TG_ERROR(train(other, fresh(bad)), Contains("--init") && Contains(moved) &&
                                                Contains("W_in"));
  REQUIRE_FALSE(fs::exists(bad));
  TrainConfig transformer = tiny_transformer();
  transformer.init = moved;
  REQUIRE_TG_ERROR(train(transformer, fresh(bad)), Contains("--init"));
  REQUIRE_FALSE(fs::exists(bad));
}

TEST_CASE("--snapshot-every keeps the weights of those evals and of the last step", "[train]") {
  TempDir tmp;
  TrainConfig c = tiny_mlp();
  c.steps = 130;
  c.snapshot_every = 40;  // evals every 20: snapshots at 0, 40, 80, 120, then the last step
  const std::string run = tmp / "run";
  REQUIRE(train(c, fresh(run)) == RunStatus::Completed);
  const auto snapshots = list_snapshots(run);
  std::vector<int64_t> steps;
  for (const auto& [step, path] : snapshots) steps.push_back(step);
  REQUIRE(steps == std::vector<int64_t>{0, 40, 80, 120, 130});
  // The last one holds the final weights, the same as the checkpoint's, with step and config.
  const nn::SafetensorsFile last = nn::load_safetensors(snapshots.back().second);
  const Checkpoint checkpoint = load_checkpoint(run);
  REQUIRE(last.metadata.at("step") == "130");
  REQUIRE(config_from_json(json::parse(last.metadata.at("config"))).snapshot_every == 40);
  for (const auto& [name, weights] : checkpoint.model)
    REQUIRE(last.at(name).to_vector<double>() == weights.to_vector<double>());
  // A stray file in snapshots/ (a crash's .tmp) is not listed; no snapshots without the flag.
  std::ofstream(fs::path(run) / "snapshots" / "step_00000140.safetensors.tmp") << "x";
  REQUIRE(list_snapshots(run).size() == 5);
  c.snapshot_every = 0;
  REQUIRE(train(c, fresh(tmp / "plain")) == RunStatus::Completed);
  REQUIRE(list_snapshots(tmp / "plain").empty());
}

TEST_CASE("a config.json written before a later field existed reads it as its default",
          "[train]") {
  json j = to_json(tiny_mlp());
  j.erase("snapshot_every");
  REQUIRE(config_from_json(j).snapshot_every == 0);
  j["snapshot_every"] = "often";
  REQUIRE_TG_ERROR(config_from_json(j), Contains("snapshot_every"));
}

TEST_CASE("--split reuses a split file", "[train]") {
  TempDir tmp;
  TrainConfig c = tiny_mlp();
  c.steps = 20;
  REQUIRE(train(c, fresh(tmp / "first")) == RunStatus::Completed);
  const std::string first_split = read_text(tmp / "first/split.txt");

  // Another seed draws another split...
  TrainConfig other = c;
  other.seed = 7;
  REQUIRE(train(other, fresh(tmp / "other")) == RunStatus::Completed);
  REQUIRE(read_text(tmp / "other/split.txt") != first_split);
  // ...unless --split gives it the first run's.
  const std::string kept = tmp / "kept_split.txt";
  fs::copy_file(tmp / "first/split.txt", kept);
  other.split_file = kept;
  REQUIRE(train(other, fresh(tmp / "reused")) == RunStatus::Completed);
  REQUIRE(read_text(tmp / "reused/split.txt") == first_split);

  // A resumed run reads its own split.txt; the file it started from may be gone.
  fs::remove(kept);
  TrainConfig rest = config_from_json(read_json(tmp / "reused/config.json"));
  REQUIRE(rest.split_file == kept);
  rest.steps = 40;
  REQUIRE(train(rest, resumed(tmp / "reused")) == RunStatus::Completed);
  REQUIRE(read_text(tmp / "reused/split.txt") == first_split);

  // A split file that is not one: the error names the file.
  const std::string garbage = tmp / "garbage.txt";
  std::ofstream(garbage) << "1\nnot a number\n";
  TrainConfig bad = c;
  bad.split_file = garbage;
  REQUIRE_TG_ERROR(train(bad, fresh(tmp / "bad")), Contains(garbage) && Contains("line 2"));
  REQUIRE_FALSE(fs::exists(tmp / "bad"));
}

TEST_CASE("a NaN loss stops the run at that step and keeps the last good checkpoint",
          "[train]") {
  TempDir tmp;
  // SGD at lr 1e5 without warm-up: the weights blow up within a few steps.
  TrainConfig c = tiny_mlp();
  c.optimizer = "sgd";
  c.lr = 1e5;
  c.warmup = 0;
  c.steps = 50;
  c.eval_every = 1;
  c.checkpoint_every = 1;
  const std::string run = tmp / "nan";
  REQUIRE(train(c, fresh(run)) == RunStatus::NanLoss);
  REQUIRE(exit_code(RunStatus::NanLoss) != 0);

  const auto rows = read_metrics(fs::path(run) / "metrics.csv");
  const int64_t last_step = std::stoll(rows.back()[Step]);
  REQUIRE(last_step < c.steps);
  const json summary = read_json(fs::path(run) / "summary.json");
  REQUIRE(summary["status"] == "nan_loss");
  // The checkpoint kept is from before the loss went bad, and its weights give a finite loss
  // (a checkpoint of the weights that produced the NaN would be no use to resume from).
  const int64_t kept = checkpoint_step(run);
  REQUIRE(kept >= 1);
  REQUIRE(kept < last_step);
  const LossAccuracy at_kept = train_metrics_of(c, run, fs::path(run) / "split.txt");
  REQUIRE(std::isfinite(at_kept.loss));
  bool saw_non_finite = false;
  for (const auto& row : rows) saw_non_finite |= !std::isfinite(num(row, TrainLoss));
  REQUIRE(saw_non_finite);

  // Resuming it goes from the kept checkpoint into the same NaN: the rows after the checkpoint
  // are redone, not duplicated, and the checkpoint stays.
  {
    TrainConfig rest = config_from_json(read_json(fs::path(run) / "config.json"));
    REQUIRE(train(rest, resumed(run)) == RunStatus::NanLoss);
    REQUIRE(without_elapsed(read_metrics(fs::path(run) / "metrics.csv")) == without_elapsed(rows));
    REQUIRE(checkpoint_step(run) == kept);
  }

  // The checkpoint is not overwritten: run to that step, keep a copy, resume into the NaN.
  const std::string again = tmp / "again";
  TrainConfig upto = c;
  upto.steps = kept;
  REQUIRE(train(upto, fresh(again)) == RunStatus::Completed);
  const auto before = snapshot(fs::path(again) / "checkpoint");
  TrainConfig rest = config_from_json(read_json(fs::path(again) / "config.json"));
  rest.steps = c.steps;
  REQUIRE(train(rest, resumed(again)) == RunStatus::NanLoss);
  REQUIRE(snapshot(fs::path(again) / "checkpoint") == before);
  REQUIRE(without_elapsed(read_metrics(fs::path(again) / "metrics.csv")) == without_elapsed(rows));

  // Before any checkpoint: no checkpoint is written at all.
  TrainConfig early = c;
  early.checkpoint_every = 1000;
  REQUIRE(train(early, fresh(tmp / "early")) == RunStatus::NanLoss);
  REQUIRE_FALSE(fs::exists(tmp / "early/checkpoint"));
}

TEST_CASE("a run directory another train holds is neither resumed nor replaced", "[train]") {
  TempDir tmp;
  TrainConfig c = tiny_mlp();
  c.steps = 10;
  const std::string run = tmp / "run";
  REQUIRE(train(c, fresh(run)) == RunStatus::Completed);
  const auto before = snapshot(run);
  TrainConfig longer = c;
  longer.steps = 20;
  REQUIRE_FALSE(run_dir_in_use(run));
  REQUIRE_FALSE(run_dir_in_use(tmp / "no such run"));
  {
    const RunLock other(run, "--out");  // as another process's train holds it while it runs
    REQUIRE(run_dir_in_use(run));  // (a sweep waits for it)
    REQUIRE_TG_ERROR(train(longer, resumed(run)),
                     Contains("--resume: " + run + " is in use by another tinygrok train"));
    REQUIRE_TG_ERROR(train(c, RunOptions{run, false, true, true}),
                     Contains("--out: " + run + " is in use by another tinygrok train"));
    REQUIRE(snapshot(run) == before);
  }
  REQUIRE_FALSE(run_dir_in_use(run));  // released with its holder, and not taken by the probe
  REQUIRE(train(longer, resumed(run)) == RunStatus::Completed);
  REQUIRE(MetricsLog::read(tmp / "run/metrics.csv").back().step == 20);
}

TEST_CASE("bad input: a tg::Error naming the flag or file, and an existing run directory "
          "left byte-for-byte unchanged", "[train]") {
  TempDir tmp;
  const TrainConfig good = tiny_mlp();
  TrainConfig short_run = good;
  short_run.steps = 20;
  short_run.checkpoint_every = 10;
  const std::string run = tmp / "run";
  REQUIRE(train(short_run, fresh(run)) == RunStatus::Completed);
  const auto before = snapshot(run);
  REQUIRE(before.size() >= 7);
  const std::string fresh_dir = tmp / "fresh";

  // Every bad configuration fails before anything is touched: with --force on the existing run
  // (which would replace it), and with a new directory (which must not appear).
  auto rejects = [&](const TrainConfig& c, const std::string& flag) {
    INFO(flag);
    REQUIRE_TG_ERROR(train(c, RunOptions{run, false, true, true}), Contains(flag));
    REQUIRE(snapshot(run) == before);
    REQUIRE_TG_ERROR(train(c, fresh(fresh_dir)), Contains(flag));
    REQUIRE_FALSE(fs::exists(fresh_dir));
  };

  REQUIRE_TG_ERROR(preset("bogus"), Contains("--preset") && Contains("bogus"));
  {
    TrainConfig c = good;
    c.op = "pow";
    rejects(c, "--op");
  }
  {
    TrainConfig c = good;
    c.op = "div";
    c.p = 24;
    rejects(c, "--p");
  }
  for (double frac : {1.5, 0.0, 1.0, -0.2}) {
    TrainConfig c = good;
    c.frac = frac;
    rejects(c, "--frac");
  }
  {
    TrainConfig c = good;
    c.batch = 318;  // the training set has 317 pairs
    rejects(c, "--batch");
    c.batch = 317;  // exactly the training set is fine
    c.steps = 2;
    REQUIRE(train(c, fresh(fresh_dir)) == RunStatus::Completed);
    fs::remove_all(fresh_dir);
  }
  for (int64_t steps : {0, -5}) {
    TrainConfig c = good;
    c.steps = steps;
    rejects(c, "--steps");
  }
  {  // a mistyped size is refused before any of it is allocated (it used to fill memory)
    TrainConfig c = good;
    c.d_mlp = 100'000'000'000;
    rejects(c, "--d-mlp 100000000000); at most 2^31");
    c = preset("nanda");
    c.steps = 2;
    c.layers = 100'000'000;
    rejects(c, "the transformer model would have");
    rejects(c, "--layers 100000000, --d-model 128, --d-mlp 512");
  }
  {
    TrainConfig c = good;
    c.split_file = tmp / "no_such_split.txt";
    rejects(c, "no_such_split.txt");
    c = good;
    c.init = tmp / "no_such_checkpoint";
    rejects(c, "no_such_checkpoint");
  }

  // An existing run directory without --resume or --force.
  REQUIRE_TG_ERROR(train(good, fresh(run)), Contains("--out") && Contains(run));
  REQUIRE(snapshot(run) == before);
  // (An empty directory is not in the way.)
  fs::create_directories(fresh_dir);
  REQUIRE(train(short_run, fresh(fresh_dir)) == RunStatus::Completed);
  fs::remove_all(fresh_dir);

  // --resume of something that is not a run directory.
  {
    const std::string empty = tmp / "empty";
    fs::create_directories(empty);
    std::ofstream(fs::path(empty) / "notes.txt") << "not a run\n";
    const auto empty_before = snapshot(empty);
    REQUIRE_TG_ERROR(train(good, resumed(empty)), Contains("--resume") && Contains(empty));
    REQUIRE(snapshot(empty) == empty_before);
    REQUIRE_TG_ERROR(train(good, resumed(tmp / "missing")),
                     Contains("--resume") && Contains(tmp / "missing"));
    REQUIRE_FALSE(fs::exists(tmp / "missing"));
  }

  // --resume with --steps before the checkpoint, or a configuration that is not the run's.
  {
    TrainConfig c = short_run;
    c.steps = 10;
    REQUIRE_TG_ERROR(train(c, resumed(run)), Contains("--steps"));
    REQUIRE(snapshot(run) == before);
    c = short_run;
    c.steps = 40;
    c.lr = 0.5;
    REQUIRE_TG_ERROR(train(c, resumed(run)), Contains("lr") && Contains("checkpoint"));
    REQUIRE(snapshot(run) == before);
  }

  // Damaged or mismatched checkpoints, on --resume (the run untouched) and on --init.
  auto damaged_copy = [&](const std::string& name) {
    const std::string copy = tmp / name;
    copy_tree(run, copy);
    return copy;
  };
  auto rejects_checkpoint = [&](const std::string& copy, const TrainConfig& c,
                                const std::string& what) {
    INFO(what);
    const auto copy_before = snapshot(copy);
    TrainConfig longer = c;
    longer.steps = 40;
    REQUIRE_TG_ERROR(train(longer, resumed(copy)), Contains(what));
    REQUIRE(snapshot(copy) == copy_before);
    TrainConfig init = good;
    init.init = copy;
    REQUIRE_TG_ERROR(train(init, fresh(fresh_dir)), Contains(what));
    REQUIRE_FALSE(fs::exists(fresh_dir));
  };
  {
    const std::string copy = damaged_copy("truncated_model");
    truncate_to_half(fs::path(copy) / "checkpoint/model.safetensors");
    rejects_checkpoint(copy, short_run, "model.safetensors");
  }
  {
    const std::string copy = damaged_copy("truncated_optimizer");
    truncate_to_half(fs::path(copy) / "checkpoint/optimizer.safetensors");
    rejects_checkpoint(copy, short_run, "optimizer.safetensors");
  }
  {
    // The model at step 20, the optimiser from step 10 of the same run.
    TrainConfig ten = short_run;
    ten.steps = 10;
    REQUIRE(train(ten, fresh(tmp / "ten")) == RunStatus::Completed);
    const std::string copy = damaged_copy("mixed_steps");
    fs::copy_file(tmp / "ten/checkpoint/optimizer.safetensors",
                  fs::path(copy) / "checkpoint/optimizer.safetensors",
                  fs::copy_options::overwrite_existing);
    rejects_checkpoint(copy, short_run, "step");
  }
  {
    // The whole checkpoint of a run with another model width.
    TrainConfig narrow = short_run;
    narrow.d_mlp = 32;
    REQUIRE(train(narrow, fresh(tmp / "narrow")) == RunStatus::Completed);
    const std::string copy = damaged_copy("other_model");
    fs::remove_all(fs::path(copy) / "checkpoint");
    copy_tree(tmp / "narrow/checkpoint", fs::path(copy) / "checkpoint");
    rejects_checkpoint(copy, short_run, "checkpoint");
    TrainConfig longer = short_run;
    longer.steps = 40;
    REQUIRE_TG_ERROR(train(longer, resumed(copy)), Contains("d_mlp"));
    TrainConfig init = good;
    init.init = copy;
    REQUIRE_TG_ERROR(train(init, fresh(fresh_dir)), Contains("--init") && Contains("W_in"));
  }
  {
    // A checkpoint with no checkpoint directory at all.
    const std::string copy = damaged_copy("no_checkpoint");
    fs::remove_all(fs::path(copy) / "checkpoint");
    rejects_checkpoint(copy, short_run, copy);
  }

  // And the original run still resumes after all that.
  TrainConfig longer = short_run;
  longer.steps = 40;
  REQUIRE(train(longer, resumed(run)) == RunStatus::Completed);
  REQUIRE(checkpoint_step(run) == 40);
}

TEST_CASE("write_file_atomically: a failed write or rename keeps the old file, no temporary left",
          "[train]") {
  TempDir tmp;
  const std::string path = (tmp.path / "summary.json").string();
  write_file_atomically(path, "old", "test");
  REQUIRE(read_text(path) == "old");

  // A full disk, as a file size limit below the new content (SIGXFSZ ignored, so the write fails
  // with EFBIG instead of ending the process); both restored before any check can fail.
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 4;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string error;
  try {
    write_file_atomically(path, std::string(4096, 'x'), "test");
  } catch (const Error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous_handler);
  CHECK_THAT(error, StartsWith("test: cannot write " + path + ".partial: File too large"));
  CHECK(read_text(path) == "old");
  CHECK_FALSE(fs::exists(path + ".partial"));

  // A name the rename cannot take: a directory that is not empty.
  const fs::path taken = tmp.path / "taken";
  fs::create_directories(taken / "inside");
  REQUIRE_TG_ERROR(write_file_atomically(taken.string(), "new", "test"),
                   StartsWith("test: cannot replace " + taken.string() + ": "));
  CHECK(fs::is_directory(taken / "inside"));
  CHECK_FALSE(fs::exists(taken.string() + ".partial"));
}
