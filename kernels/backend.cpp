// The backend registry: one Backend per device type; the CPU one always exists.
#include "kernels/backend.h"

#include "kernels/cpu/cpu_backend.h"

namespace tg {

namespace {
Backend*& cuda_backend() {
  static Backend* backend = nullptr;
  return backend;
}
}  // namespace

void register_backend(DeviceType type, Backend* backend) {
  check(type == DeviceType::CUDA, "register_backend: the CPU backend is built in");
  cuda_backend() = backend;
}

Backend& backend_for(Device device) {
  if (device.is_cpu()) {
    static CpuBackend cpu;
    return cpu;
  }
  check(cuda_backend() != nullptr, "device ", device.str(),
        ": this build of tinygrok has no CUDA backend");
  return *cuda_backend();
}

}  // namespace tg
