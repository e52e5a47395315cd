// Numbers on the command line are read whole, in decimal, within their type's range. CLI11
// alone reads integers with strtoll's base 0 ("023" is octal 19, "0x10" is 16), turns "" into
// 0 (`--wd "$WD"` with WD unset would train without weight decay), and clamps a number past
// the type's range to its limit.
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace tg::grok::cli {

// The error for `text` as a T, or "" when it is one; an integer's text is rewritten in plain
// decimal ("023" -> "23"), which CLI11's own conversion then reads as written.
template <typename T>
std::string read_decimal(std::string& text) {
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);
  if (text.empty()) return "expected a number, got nothing";
  const char* begin = text.data() + (text[0] == '+' ? 1 : 0);  // "+5", as strtod reads it
  const char* end = text.data() + text.size();
  T value{};
  std::from_chars_result read;
  if constexpr (std::is_integral_v<T>)
    read = std::from_chars(begin, end, value, 10);
  else
    read = std::from_chars(begin, end, value, std::chars_format::general);
  if (read.ec == std::errc::result_out_of_range && read.ptr == end) {
    if constexpr (std::is_integral_v<T>)
      return "'" + text + "' is out of range (" + std::to_string(std::numeric_limits<T>::min()) +
             " to " + std::to_string(std::numeric_limits<T>::max()) + ")";
    else
      return "'" + text + "' is out of a double's range";
  }
  if (read.ec != std::errc() || read.ptr != end || begin == end) {
    if constexpr (std::is_unsigned_v<T>)
      return "expected a whole number >= 0, got '" + text + "'";
    else if constexpr (std::is_integral_v<T>)
      return "expected a whole number, got '" + text + "'";
    else
      return "expected a number, got '" + text + "'";
  }
  if constexpr (std::is_integral_v<T>) text = std::to_string(value);
  return "";
}

template <typename T>
struct NumberOf {
  using type = T;
};
template <typename T>
struct NumberOf<std::vector<T>> {  // a list option: each of its values
  using type = T;
};

// app->add_option(name, target, help) for a number, or a list of numbers, read as above.
template <typename T>
CLI::Option* add_number_option(CLI::App* app, const std::string& name, T& target,
                               const std::string& help) {
  return app->add_option(name, target, help)
      ->transform(CLI::Validator(read_decimal<typename NumberOf<T>::type>, ""));
}

}  // namespace tg::grok::cli
