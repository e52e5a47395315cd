// Storage: a reference-counted block of memory on one device; tensors are views into it.
#pragma once

#include <cstddef>
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

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  Deleter deleter_;
};

}  // namespace tg
