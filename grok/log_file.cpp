// The append-only CSV logs of a run: an atomic rewrite, then appends.
#include "grok/log_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace tg::grok {

std::FILE* restart_log(const std::string& path, const std::string& header,
                       const std::vector<std::string>& kept, const std::string& what) {
  const std::string temporary = path + ".partial";
  // "e": close-on-exec, so gnuplot and a sweep's runs do not inherit the log.
  std::FILE* out = std::fopen(temporary.c_str(), "we");
  check(out != nullptr, what, ": cannot write ", temporary, ": ", std::strerror(errno));
  std::fprintf(out, "%s\n", header.c_str());
  for (const std::string& line : kept) std::fprintf(out, "%s\n", line.c_str());
  // On the disk before the rename, so that the new name never points at a partial file.
  int error = std::fflush(out) != 0 || std::ferror(out) ? (errno != 0 ? errno : EIO) : 0;
  if (error == 0 && ::fsync(fileno(out)) != 0) error = errno;
  if (std::fclose(out) != 0 && error == 0) error = errno;
  std::error_code ignored;
  if (error != 0) {
    std::filesystem::remove(temporary, ignored);
    throw Error(cat(what, ": cannot write ", temporary, ": ", std::strerror(error)));
  }
  std::error_code renamed;
  std::filesystem::rename(temporary, path, renamed);
  if (renamed) {
    std::filesystem::remove(temporary, ignored);
    throw Error(cat(what, ": cannot replace ", path, ": ", renamed.message()));
  }
  std::FILE* log = std::fopen(path.c_str(), "ae");
  check(log != nullptr, what, ": cannot append to ", path, ": ", std::strerror(errno));
  return log;
}

}  // namespace tg::grok
