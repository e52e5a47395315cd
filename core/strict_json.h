// JSON that must mean one thing: nlohmann's parser keeps the last of a key given twice in one
// object, silently; sweep specs, config.json and safetensors headers refuse it instead.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace tg {

// Parses the whole of `text` as Json (nlohmann::json or nlohmann::ordered_json). A key given twice
// in one object throws tg::Error("<where>key \"<key>\" is given twice"); invalid JSON throws
// nlohmann::json::exception, for the caller to name its file.
template <typename Json>
Json parse_json_refusing_repeated_keys(const std::string& text, const std::string& where) {
  std::vector<std::set<std::string>> keys;  // the keys of each object being read
  const auto no_repeated_keys = [&](int, typename Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) keys.emplace_back();
    if (event == Json::parse_event_t::object_end) keys.pop_back();
    if (event == Json::parse_event_t::key) {
      const std::string key = parsed.template get<std::string>();
      if (!keys.back().insert(key).second)
        throw Error(cat(where, "key \"", key, "\" is given twice"));
    }
    return true;
  };
  return Json::parse(text, no_repeated_keys);
}

}  // namespace tg
