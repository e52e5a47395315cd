// GradMode: whether ops record the graph on this thread, and the RAII guards that turn it off
// and on again.
#pragma once

namespace tg {

class GradMode {
 public:
  static bool enabled() { return enabled_flag(); }
  static void set_enabled(bool value) { enabled_flag() = value; }

 private:
  static bool& enabled_flag() {
    thread_local bool enabled = true;
    return enabled;
  }
};

// Within its scope no op records a node (evaluation, optimiser updates, backward itself).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Within its scope ops record nodes again, inside a NoGradGuard's too (PyTorch's enable_grad).
class EnableGradGuard {
 public:
  EnableGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(previous_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace tg
