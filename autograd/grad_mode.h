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

// Sets grad mode for its scope, then restores the mode it found.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(GradMode::enabled()) {
    GradMode::set_enabled(enabled);
  }
  ~GradModeGuard() { GradMode::set_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

// Within its scope no op records a node (evaluation, optimiser updates, backward itself).
class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

// Within its scope ops record nodes again, inside a NoGradGuard's too (PyTorch's enable_grad).
class EnableGradGuard : public GradModeGuard {
 public:
  EnableGradGuard() : GradModeGuard(true) {}
};

}  // namespace tg
