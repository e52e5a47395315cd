// The sweep directory: checking that it holds this spec's sweep, and keeping the spec's copy.
#include "grok/sweep/sweep_dir.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace tg::grok::sweep {

namespace fs = std::filesystem;

void check_sweep_dir(const std::string& dir, const SweepSpec& spec, bool force) {
  if (force || !fs::exists(dir)) return;
  check(fs::is_directory(dir), "--out: ", dir, " is not a directory");
  const fs::path copy = fs::path(dir) / "spec.json";
  if (!fs::exists(copy)) {
    check(fs::is_empty(dir), "--out: ", dir, " exists and is not a sweep directory (no spec.json);"
          " pass --force to use it anyway");
    return;
  }
  ordered_json saved;
  try {
    std::ifstream in(copy);
    in >> saved;
  } catch (const nlohmann::json::exception&) {
    throw Error(cat("--out: ", copy.string(), " is not valid JSON; pass --force to replace it"));
  }
  check(saved == spec.source, "--out: ", dir, " holds the sweep of another spec (see ",
        copy.string(), "); pass --force to run this one there (runs of the same configuration "
        "are kept, the others redone), or choose another --out");
}

void write_spec_copy(const std::string& dir, const SweepSpec& spec, const std::string& writer) {
  fs::create_directories(dir);
  const fs::path copy = fs::path(dir) / "spec.json";
  const fs::path temporary = fs::path(dir) / ("spec.json." + writer + ".tmp");
  {
    std::ofstream out(temporary);
    out << spec.source.dump(2) << "\n";
    check(out.good(), "sweep: cannot write ", temporary.string());
  }
  fs::rename(temporary, copy);
}

std::string runs_dir(const std::string& dir) { return (fs::path(dir) / "runs").string(); }

}  // namespace tg::grok::sweep
