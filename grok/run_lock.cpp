// One `tinygrok train` at a time in a run directory, by flock(2) on the directory.
#include "grok/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace tg::grok {

RunLock::RunLock(const std::string& dir, const std::string& flag) {
  fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  check(fd_ >= 0, flag, ": cannot open ", dir, ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd_);
    fd_ = -1;
    check(error != EWOULDBLOCK, flag, ": ", dir, " is in use by another tinygrok train; ",
          flag == "--resume" ? "wait for it to end (or stop it: it checkpoints) to resume it"
                             : "wait for it to end, or choose another --out");
    throw Error(cat(flag, ": cannot lock ", dir, ": ", std::strerror(error)));
  }
}

bool run_dir_in_use(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // drops the lock if this took it
  return held;
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing drops the lock
}

RunLock::RunLock(RunLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

RunLock& RunLock::operator=(RunLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

}  // namespace tg::grok
