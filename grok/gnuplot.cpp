// Running gnuplot: fork, chdir and exec, with no shell between us and a directory name.
#include "grok/gnuplot.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace tg::grok {

bool gnuplot_available() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

bool run_gnuplot(const std::string& dir, const std::string& script, bool show_output) {
  const pid_t child = fork();
  if (child < 0) return false;
  if (child == 0) {
    // Only async-signal-safe calls between fork and exec: the parent may have OpenMP threads.
    if (chdir(dir.c_str()) != 0) _exit(127);
    const int out = show_output ? STDERR_FILENO : open("/dev/null", O_WRONLY);
    dup2(out, STDOUT_FILENO);  // gnuplot's messages join ours on stderr, or go nowhere
    dup2(out, STDERR_FILENO);
    execlp("gnuplot", "gnuplot", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return false;  // Ctrl-C during a plot still waits for gnuplot
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace tg::grok
