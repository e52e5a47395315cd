// Device: parsing device names.
#include "core/device.h"

#include "core/error.h"

namespace tg {

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string digits = text.substr(5);
    const bool numeric = !digits.empty() && digits.size() < 4 &&
                         digits.find_first_not_of("0123456789") == std::string::npos;
    if (numeric) return Device::cuda(std::stoi(digits));
  }
  throw Error(cat("device: unknown device '", text, "' (expected cpu, cuda or cuda:N)"));
}

}  // namespace tg
