// GradMode: whether ops record the graph on this thread, and the RAII guard that turns it off.
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

}  // namespace tg
