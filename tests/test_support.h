// Helpers shared by the test programs: an assertion on tinygrok's error type and message, a
// temporary directory that cleans up after itself, a file's text, and bitwise equality of named
// tensor lists (checkpoints).
#pragma once

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

// Both the type (tg::Error, not another exception) and the message.
#define REQUIRE_TG_ERROR(expr, matcher)  \
  do {                                   \
    REQUIRE_THROWS_AS(expr, tg::Error);  \
    REQUIRE_THROWS_WITH(expr, matcher);  \
  } while (false)

namespace tg::testing {

// The message of the tg::Error that fn throws ("" when it throws none): for comparing two
// devices' messages for the same bad input.
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A fresh directory under the system temp directory, unique per process and per instance,
// removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;

  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("tinygrok_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string operator/(const std::string& name) const { return file(name); }
};

// An environment variable set for the scope (unset when value is null), then as it was.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> before;
  ScopedEnv(std::string variable, const char* value) : name(std::move(variable)) {
    if (const char* old = std::getenv(name.c_str())) before = old;
    if (value != nullptr) ::setenv(name.c_str(), value, 1);
    else ::unsetenv(name.c_str());
  }
  ~ScopedEnv() {
    if (before) ::setenv(name.c_str(), before->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
};

// A whole file's bytes (a failed REQUIRE when it cannot be read).
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Bitwise equality of two named tensor lists (names, shapes and every value).
inline void require_same_tensors(const std::vector<std::pair<std::string, Tensor>>& a,
                                 const std::vector<std::pair<std::string, Tensor>>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    REQUIRE(a[i].first == b[i].first);
    REQUIRE(a[i].second.shape() == b[i].second.shape());
    REQUIRE(a[i].second.to_vector<double>() == b[i].second.to_vector<double>());
  }
}

}  // namespace tg::testing
