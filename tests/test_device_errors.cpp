// Device errors, in every build on every machine: asking for a CUDA device that this build or
// machine lacks is a clear tg::Error naming the device and the reason, never a crash.
#include <catch2/catch.hpp>

#include <string>

#include "kernels/backend.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// The first CUDA device this machine lacks: cuda:0 in a build without CUDA or on a machine
// without a GPU, the one past the last GPU elsewhere.
Device missing_cuda_device() {
  for (int i = 0;; ++i) {
    try {
      backend_for(Device::cuda(i));
    } catch (const Error&) {
      return Device::cuda(i);
    }
  }
}

// Why `missing` is missing, in the words of this build.
std::string missing_reason(Device missing) {
#ifdef TINYGROK_HAVE_CUDA
  return missing.index == 0 ? "no CUDA device is available (cudaGetDeviceCount: "
                            : "this machine has ";
#else
  (void)missing;
  return "this build of tinygrok has no CUDA backend";
#endif
}

}  // namespace

TEST_CASE("device errors: cuda:0 here is a working backend or a clear error", "[device]") {
  const auto ask = [] {
    try {
      return std::string(backend_for(Device::cuda(0)).device() == Device::cuda(0) ? "works" : "?");
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  const std::string answer = ask();
  CHECK(ask() == answer);  // the CUDA runtime is probed once; asking again says the same
  if (answer == "works") {
    WARN("this machine has a CUDA device: cuda:0 works");
    return;
  }
  CHECK_THAT(answer, StartsWith("device cuda:0: "));
#ifdef TINYGROK_HAVE_CUDA
  CHECK_THAT(answer, Contains("no CUDA device is available (cudaGetDeviceCount: "));
#else
  CHECK(answer == "device cuda:0: this build of tinygrok has no CUDA backend");
#endif
}

TEST_CASE("device errors: every route to a missing CUDA device throws tg::Error", "[device]") {
  const Device missing = missing_cuda_device();
  const std::string name = missing.str();
  INFO("missing device " << name);
  // (Catch2 2 combines matchers by reference: the parts must outlive each `&&`.)
  const auto names_device = StartsWith("device " + name + ": ");
  const auto says_why = Contains(missing_reason(missing));
  REQUIRE_TG_ERROR(backend_for(missing), names_device && says_why);
  REQUIRE_TG_ERROR(zeros({2}, DType::Float32, missing), names_device && says_why);
  REQUIRE_TG_ERROR(Tensor::empty({2, 2}, DType::Float64, parse_device(name)),
                   names_device && says_why);
  REQUIRE_TG_ERROR(ones({3}).to(missing), names_device && says_why);
  REQUIRE_TG_ERROR(from_vector<float>({1, 2}, {}, missing), names_device && says_why);
  REQUIRE_TG_ERROR(rand({4}, default_generator(), DType::Float32, missing),
                   names_device && says_why);
  REQUIRE_TG_ERROR(backend_for(Device::cuda(-1)), StartsWith("device cuda:-1: "));
  // The CPU is untouched by all that.
  CHECK(ones({3}).to(Device::cpu()).to_vector<float>() == std::vector<float>(3, 1));
}
