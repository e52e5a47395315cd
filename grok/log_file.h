// The append-only CSV logs of a run (metrics.csv, analysis_track.csv): how one is (re)started.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace tg::grok {

// Rewrites `path` as `header` and the `kept` lines, then opens it for appending (close-on-exec).
// The new content goes to a temporary file, synced and renamed over the old one, so a crash or a
// full disk during the rewrite leaves the old log whole. `what` names the log in errors.
std::FILE* restart_log(const std::string& path, const std::string& header,
                       const std::vector<std::string>& kept, const std::string& what);

}  // namespace tg::grok
