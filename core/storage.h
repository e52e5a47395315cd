// Storage: a reference-counted block of memory on one device; tensors are views into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/device.h"

namespace tg {

class Storage {
 public:
  using Deleter = std::function<void(void*)>;

  Storage(void* data, size_t nbytes, Device device, Deleter deleter)
      : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}
  ~Storage() {
    if (deleter_) deleter_(data_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  // How many in-place writes (copy_, fill_, add_, an optimiser's step) its tensors have had.
  // A tensor saved for backward remembers the version it was saved at, so that a backward
  // that would read values changed since can refuse (autograd/node.h).
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  uint64_t version_ = 0;
  void* data_;
  size_t nbytes_;
  Device device_;
  Deleter deleter_;
};

}  // namespace tg
