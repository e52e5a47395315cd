// Device: where a tensor's storage lives (the host CPU, or a CUDA device by index).
#pragma once

#include <cstdint>
#include <string>

namespace tg {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }

  bool is_cpu() const { return type == DeviceType::CPU; }
  bool operator==(const Device&) const = default;

  std::string str() const {
    return type == DeviceType::CPU ? "cpu" : "cuda:" + std::to_string(index);
  }
};

// Parses "cpu", "cuda" or "cuda:N" (as a command-line flag would give it).
Device parse_device(const std::string& text);

}  // namespace tg
