// Writing a run's small files whole: config.json, summary.json, a rewritten log.
#pragma once

#include <string>

namespace tg::grok {

// Replaces `path` with `content`: written to a temporary file beside it, synced and renamed over
// it, so that a crash or a full disk leaves either the old file or the new one, never a part. A
// failed write is a tg::Error starting with `what` and naming the file and the system's reason.
void write_file_atomically(const std::string& path, const std::string& content,
                           const std::string& what);

}  // namespace tg::grok
