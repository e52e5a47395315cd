// The append-only CSV logs of a run: an atomic rewrite, then appends.
#include "grok/log_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace tg::grok {

std::FILE* restart_log(const std::string& path, const std::string& header,
                       const std::vector<std::string>& kept, const std::string& what) {
  const std::string temporary = path + ".partial";
  std::FILE* out = std::fopen(temporary.c_str(), "w");
  check(out != nullptr, what, ": cannot write ", temporary, ": ", std::strerror(errno));
  std::fprintf(out, "%s\n", header.c_str());
  for (const std::string& line : kept) std::fprintf(out, "%s\n", line.c_str());
  const bool written = std::fflush(out) == 0 && !std::ferror(out);
  const int write_errno = errno;
  const bool closed = std::fclose(out) == 0;
  std::error_code ignored;
  if (!written || !closed) {
    std::filesystem::remove(temporary, ignored);
    throw Error(cat(what, ": cannot write ", temporary, ": ", std::strerror(write_errno)));
  }
  std::error_code renamed;
  std::filesystem::rename(temporary, path, renamed);
  if (renamed) {
    std::filesystem::remove(temporary, ignored);
    throw Error(cat(what, ": cannot replace ", path, ": ", renamed.message()));
  }
  std::FILE* log = std::fopen(path.c_str(), "a");
  check(log != nullptr, what, ": cannot append to ", path, ": ", std::strerror(errno));
  return log;
}

}  // namespace tg::grok
