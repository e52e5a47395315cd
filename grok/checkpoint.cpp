// Checkpoints: two safetensors files written into a fresh directory and swapped in by renames.
#include "grok/checkpoint.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "nn/safetensors.h"

namespace tg::grok {

namespace fs = std::filesystem;

std::string checkpoint_dir(const std::string& run_dir) { return run_dir + "/checkpoint"; }

void save_checkpoint(const std::string& run_dir, const Checkpoint& checkpoint) {
  const fs::path final_dir = checkpoint_dir(run_dir);
  const fs::path tmp_dir = final_dir.string() + ".tmp", old_dir = final_dir.string() + ".old";
  fs::remove_all(tmp_dir);
  fs::create_directories(tmp_dir);
  nn::save_safetensors((tmp_dir / "optimizer.safetensors").string(), checkpoint.optimizer,
                       checkpoint.run_state);
  nn::save_safetensors((tmp_dir / "model.safetensors").string(), checkpoint.model,
                       checkpoint.run_state);
  // Swap: the previous checkpoint steps aside as .old until the new one is in place.
  fs::remove_all(old_dir);
  if (fs::exists(final_dir)) fs::rename(final_dir, old_dir);
  fs::rename(tmp_dir, final_dir);
  fs::remove_all(old_dir);
}

namespace {

// The model file a path names: RUN/, RUN/checkpoint/ or a .safetensors file. A run interrupted
// mid-swap still has its previous checkpoint as checkpoint.old/.
fs::path model_file(const std::string& path) {
  const fs::path p(path);
  check(fs::exists(p), "checkpoint ", path, ": no such file or directory");
  if (fs::is_regular_file(p)) return p;
  for (const fs::path& dir : {p / "checkpoint", p / "checkpoint.old", p}) {
    if (fs::exists(dir / "model.safetensors")) return dir / "model.safetensors";
  }
  throw Error(cat("checkpoint ", path, ": no model.safetensors in it or in its checkpoint/"));
}

std::string step_of(const std::map<std::string, std::string>& metadata, const fs::path& file) {
  auto it = metadata.find("step");
  check(it != metadata.end(), "checkpoint ", file.string(), ": metadata has no 'step'");
  return it->second;
}

}  // namespace

void check_finite_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                          const std::string& file) {
  for (const auto& [name, t] : tensors) {
    if (!is_floating(t.dtype())) continue;
    const std::vector<double> values = t.to_vector<double>();
    const auto bad = std::find_if(values.begin(), values.end(),
                                  [](double v) { return !std::isfinite(v); });
    check(bad == values.end(), file, ": tensor '", name, "' holds ", *bad, " at element ",
          bad - values.begin(), " (of ", values.size(), "); the checkpoint cannot be used");
  }
}

template <typename T>
T metadata_number(const std::map<std::string, std::string>& metadata, const std::string& key,
                  const std::string& file) {
  const auto it = metadata.find(key);
  check(it != metadata.end(), "checkpoint ", file, ": metadata has no '", key, "'");
  const std::string& text = it->second;
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  check(error == std::errc() && end == text.data() + text.size() && !text.empty(), "checkpoint ",
        file, ": metadata '", key, "' is '", text, "', not ",
        std::is_floating_point_v<T> ? "a number" : std::is_signed_v<T> ? "an integer"
                                                                         : "a count");
  return value;
}
template int64_t metadata_number<int64_t>(const std::map<std::string, std::string>&,
                                          const std::string&, const std::string&);
template uint64_t metadata_number<uint64_t>(const std::map<std::string, std::string>&,
                                            const std::string&, const std::string&);
template double metadata_number<double>(const std::map<std::string, std::string>&,
                                        const std::string&, const std::string&);

Checkpoint load_checkpoint(const std::string& path) {
  const fs::path model_path = model_file(path);
  nn::SafetensorsFile model = nn::load_safetensors(model_path.string());
  check_finite_tensors(model.tensors, model_path.string());
  Checkpoint checkpoint{std::move(model.tensors), {}, std::move(model.metadata)};
  const fs::path optimizer_path = model_path.parent_path() / "optimizer.safetensors";
  if (fs::exists(optimizer_path)) {
    nn::SafetensorsFile optimizer = nn::load_safetensors(optimizer_path.string());
    check_finite_tensors(optimizer.tensors, optimizer_path.string());
    const std::string model_step = step_of(checkpoint.run_state, model_path);
    const std::string optimizer_step = step_of(optimizer.metadata, optimizer_path);
    check(model_step == optimizer_step, "checkpoint ", model_path.parent_path().string(),
          ": model.safetensors is at step ", model_step, " but optimizer.safetensors at step ",
          optimizer_step);
    checkpoint.optimizer = std::move(optimizer.tensors);
  }
  return checkpoint;
}

namespace {
fs::path snapshot_dir(const std::string& run_dir) { return fs::path(run_dir) / "snapshots"; }
}  // namespace

void save_snapshot(const std::string& run_dir, int64_t step,
                   const std::vector<std::pair<std::string, Tensor>>& model,
                   const std::map<std::string, std::string>& metadata) {
  const fs::path dir = snapshot_dir(run_dir);
  fs::create_directories(dir);
  char name[64];
  std::snprintf(name, sizeof name, "step_%08lld.safetensors", static_cast<long long>(step));
  std::map<std::string, std::string> meta = metadata;
  meta["step"] = std::to_string(step);
  nn::save_safetensors((dir / name).string(), model, meta);
}

std::vector<std::pair<int64_t, std::string>> list_snapshots(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  const fs::path dir = snapshot_dir(run_dir);
  if (!fs::is_directory(dir)) return out;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    long long step = -1;
    char tail[32] = {};
    // step_<digits>.safetensors exactly; anything else (a .tmp left by a crash) is not one.
    if (std::sscanf(name.c_str(), "step_%lld.safetensor%31s", &step, tail) == 2 &&
        std::string(tail) == "s" && step >= 0)
      out.emplace_back(step, entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace tg::grok
