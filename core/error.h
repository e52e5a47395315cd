// Error: the one exception type of tinygrok, and helpers that build its messages.
//
// Every message starts with the op that failed and says why, with the shapes involved, e.g.
//   matmul: [3, 4] @ [5, 6]: inner dimensions differ (4 vs 5)
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tg {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// "[3, 4]" for a shape or any list of integers.
inline std::string shape_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

// Concatenates its arguments with operator<<, the way the error messages are built.
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

// Throws tg::Error with the concatenated message when the condition fails.
template <typename... Parts>
void check(bool condition, const Parts&... parts) {
  if (!condition) throw Error(cat(parts...));
}

}  // namespace tg
