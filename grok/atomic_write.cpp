// Writing a file whole: a temporary file, synced, then renamed over the old one.
#include "grok/atomic_write.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace tg::grok {

void write_file_atomically(const std::string& path, const std::string& content,
                           const std::string& what) {
  const std::string temporary = path + ".partial";
  // "e": close-on-exec, so that gnuplot and a sweep's runs do not inherit it.
  std::FILE* out = std::fopen(temporary.c_str(), "we");
  check(out != nullptr, what, ": cannot write ", temporary, ": ", std::strerror(errno));
  errno = 0;
  std::fwrite(content.data(), 1, content.size(), out);
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
}

}  // namespace tg::grok
