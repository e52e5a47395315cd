// One `tinygrok train` at a time in a run directory: a second one (a resume, or --force replacing
// the run) while the first still writes would interleave its rows or delete its checkpoint.
#pragma once

#include <string>

namespace tg::grok {

// An exclusive flock(2) on the directory itself, held while the object lives. The kernel drops
// it when the process ends, however it ends, so no stale lock is left to clean up. It excludes
// the processes of one machine: on a network file system each host may see only its own.
class RunLock {
 public:
  RunLock() = default;
  // Locks `dir` (an existing directory) or throws tg::Error "<flag>: <dir> is in use by another
  // tinygrok train ...".
  RunLock(const std::string& dir, const std::string& flag);
  ~RunLock();
  RunLock(RunLock&& other) noexcept;
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Whether another open of `dir` holds its RunLock now (false when there is no such directory).
// Only a hint: the holder may end, or another start, right after.
bool run_dir_in_use(const std::string& dir);

}  // namespace tg::grok
