// The append-only CSV logs of a run: an atomic rewrite, then appends.
#include "grok/log_file.h"

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "grok/atomic_write.h"

namespace tg::grok {

std::FILE* restart_log(const std::string& path, const std::string& header,
                       const std::vector<std::string>& kept, const std::string& what) {
  std::string content = header + "\n";
  for (const std::string& line : kept) content += line + "\n";
  write_file_atomically(path, content, what);
  // "e": close-on-exec, so gnuplot and a sweep's runs do not inherit the log.
  std::FILE* log = std::fopen(path.c_str(), "ae");
  check(log != nullptr, what, ": cannot append to ", path, ": ", std::strerror(errno));
  return log;
}

}  // namespace tg::grok
