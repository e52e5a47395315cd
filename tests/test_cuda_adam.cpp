// The fused adam_step primitive (kernels/cuda/adam.cu, kernels/cpu/adam.cpp) against its
// reference, the unfused composition of elementwise tensor ops in adam_lanes' order: on parameter
// lists of awkward sizes (empty, 1, 7, 33, 257, 1031, 4097: across a CUDA chunk), a list longer
// than one launch's table, float32 and float64, no decay, L2 and decoupled decay, with and without
// the norms, several steps in a row. The GPU's update must equal the composition bit for bit
// (same operations, same order, no FMA contraction); the CPU's fused loop agrees to rounding (its
// compiler may contract). The norms agree with sums of squares by hand to rounding (summed in
// other orders) and repeat bit for bit. Then Adam/AdamW on cuda:0 against the CPU, and
// the checks that leave every buffer unwritten; and the recordable weight norm of an eval
// (optim::sum_of_squares_on_device) against global_norm. Every case skips visibly without a GPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "op_test_util.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "test_cuda_support.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::relative_error;

namespace {

const Device kGpu = Device::cuda(0);
const DType kFloatTypes[] = {DType::Float32, DType::Float64};

// One list of parameters with gradients and Adam moments, on one device.
struct AdamLists {
  std::vector<Tensor> p, g, m, v;

  AdamLists to(Device device) const {
    AdamLists out;
    for (const Tensor& t : p) out.p.push_back(t.to(device).clone());
    for (const Tensor& t : g) out.g.push_back(t.to(device).clone());
    for (const Tensor& t : m) out.m.push_back(t.to(device).clone());
    for (const Tensor& t : v) out.v.push_back(t.to(device).clone());
    return out;
  }
};

// Random parameters and moments (v >= 0) of the given sizes, on the CPU.
AdamLists random_lists(const std::vector<int64_t>& sizes, DType dtype, Generator& gen) {
  AdamLists l;
  for (int64_t n : sizes) {
    l.p.push_back(normal({n}, 0, 1, gen, dtype));
    l.g.push_back(normal({n}, 0, 1, gen, dtype));
    l.m.push_back(normal({n}, 0, 0.1, gen, dtype));
    const Tensor r = normal({n}, 0, 0.1, gen, dtype);
    l.v.push_back(r * r);
  }
  return l;
}

// New random gradients, the same values on every copy.
void new_gradients(std::vector<AdamLists*> copies, Generator& gen) {
  const size_t count = copies[0]->g.size();
  for (size_t i = 0; i < count; ++i) {
    const Tensor g = normal(copies[0]->g[i].shape(), 0, 1, gen, copies[0]->g[i].dtype());
    for (AdamLists* c : copies) c->g[i] = g.to(c->g[i].device()).clone();
  }
}

// The reference: one step as a chain of elementwise tensor ops (about 17 kernels and 5
// temporaries per parameter), in adam_lanes' order, the scalars rounded to the dtype first.
void adam_step_by_ops(const AdamLists& l, const AdamHyper& h) {
  NoGradGuard no_grad;
  const double bias1 = 1 - std::pow(h.beta1, static_cast<double>(h.step));
  const double bias2 = 1 - std::pow(h.beta2, static_cast<double>(h.step));
  const bool l2 = h.weight_decay != 0 && !h.decoupled;
  const bool decoupled = h.weight_decay != 0 && h.decoupled;
  for (size_t i = 0; i < l.p.size(); ++i) {
    const auto s = [&](double value) { return scalar(value, l.p[i].dtype(), l.p[i].device()); };
    Tensor p = l.p[i], g = l.g[i];
    if (l2) g = g + s(h.weight_decay) * p;
    if (decoupled) p = p * s(1 - h.lr * h.weight_decay);
    const Tensor m = s(h.beta1) * l.m[i] + s(1 - h.beta1) * g;
    const Tensor v = s(h.beta2) * l.v[i] + s(1 - h.beta2) * (g * g);
    p = p - s(h.lr / bias1) * (m / (sqrt(v) / s(std::sqrt(bias2)) + s(h.eps)));
    Tensor(l.m[i]).copy_(m);
    Tensor(l.v[i]).copy_(v);
    Tensor(l.p[i]).copy_(p);
  }
}

void run_adam_step(Backend& backend, const AdamLists& l, const AdamHyper& h, double* grad_sq,
                   double* weight_sq) {
  backend.adam_step(l.p, l.g, l.m, l.v, h, grad_sq, weight_sq);
}

double sum_of_squares(const std::vector<Tensor>& list) {
  double total = 0;
  for (const Tensor& t : list)
    for (double x : t.to_vector<double>()) total += x * x;
  return total;
}

void check_bitwise(const std::vector<Tensor>& got, const std::vector<Tensor>& want,
                   const char* what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("entry " << i << " of shape " << shape_str(want[i].shape()));
    REQUIRE(got[i].shape() == want[i].shape());
    const auto g = got[i].to_vector<double>(), w = want[i].to_vector<double>();
    CHECK((g.empty() || std::memcmp(g.data(), w.data(), g.size() * sizeof(double)) == 0));
  }
}

void check_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want, double tol,
                 const char* what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  std::vector<double> g, w;
  for (size_t i = 0; i < got.size(); ++i) {
    const auto gi = got[i].to_vector<double>(), wi = want[i].to_vector<double>();
    REQUIRE(gi.size() == wi.size());
    g.insert(g.end(), gi.begin(), gi.end());
    w.insert(w.end(), wi.begin(), wi.end());
  }
  CHECK(relative_error(g, w) < tol);
}

enum class Decay { None, L2, Decoupled };

AdamHyper hyper_for(Decay decay, int64_t step) {
  AdamHyper h;
  h.step = step;
  h.lr = 1e-2 / static_cast<double>(step);  // a schedule: lr changes between steps
  h.beta1 = 0.9;
  h.beta2 = 0.98;
  h.eps = 1e-8;
  h.weight_decay = decay == Decay::None ? 0 : 0.5;
  h.decoupled = decay == Decay::Decoupled;
  return h;
}

// Three steps of the GPU primitive, the CPU primitive and the composition from the same start
// and gradients: the two primitives agree bit for bit, the composition to rounding, and the
// norms with each other and with sums of squares taken by hand.
void compare_three_ways(const std::vector<int64_t>& sizes, DType dtype, Decay decay, bool norms,
                        uint64_t seed) {
  Generator gen(seed);
  AdamLists cpu = random_lists(sizes, dtype, gen);
  AdamLists gpu = cpu.to(kGpu), ops = cpu.to(Device::cpu());
  const double tol = dtype == DType::Float32 ? 1e-6 : 1e-14;
  for (int64_t step = 1; step <= 3; ++step) {
    INFO("step " << step);
    if (step > 1) new_gradients({&cpu, &gpu, &ops}, gen);
    const AdamHyper h = hyper_for(decay, step);
    const double grad_sq_by_hand = sum_of_squares(cpu.g);
    double cpu_grad_sq = -1, cpu_weight_sq = -1, gpu_grad_sq = -1, gpu_weight_sq = -1;
    run_adam_step(backend_for(Device::cpu()), cpu, h, norms ? &cpu_grad_sq : nullptr,
                  norms ? &cpu_weight_sq : nullptr);
    run_adam_step(backend_for(kGpu), gpu, h, norms ? &gpu_grad_sq : nullptr,
                  norms ? &gpu_weight_sq : nullptr);
    adam_step_by_ops(ops, h);
    check_bitwise(gpu.p, ops.p, "parameters: GPU vs composition");
    check_bitwise(gpu.m, ops.m, "exp_avg: GPU vs composition");
    check_bitwise(gpu.v, ops.v, "exp_avg_sq: GPU vs composition");
    check_close(cpu.p, ops.p, tol, "parameters: CPU vs composition");
    check_close(cpu.m, ops.m, tol, "exp_avg: CPU vs composition");
    check_close(cpu.v, ops.v, tol, "exp_avg_sq: CPU vs composition");
    if (norms) {
      CHECK(gpu_grad_sq == Approx(grad_sq_by_hand).epsilon(1e-12).margin(0));
      CHECK(cpu_grad_sq == Approx(grad_sq_by_hand).epsilon(1e-12).margin(0));
      CHECK(gpu_weight_sq == Approx(sum_of_squares(gpu.p)).epsilon(1e-12).margin(0));
      CHECK(cpu_weight_sq == Approx(sum_of_squares(cpu.p)).epsilon(1e-12).margin(0));
      CHECK(gpu_weight_sq == Approx(cpu_weight_sq).epsilon(tol));
    } else {
      CHECK(gpu_grad_sq == -1);  // not written when not asked for
      CHECK(gpu_weight_sq == -1);
    }
  }
}

}  // namespace

TEST_CASE("cuda adam_step: awkward sizes, every decay, with and without norms, three steps",
          "[cuda][optim]") {
  TG_REQUIRE_CUDA_DEVICE();
  const std::vector<int64_t> sizes = {7, 0, 1, 1031, 33, 257, 4097, 0};
  uint64_t seed = 1;
  for (DType dtype : kFloatTypes)
    for (Decay decay : {Decay::None, Decay::L2, Decay::Decoupled})
      for (bool norms : {false, true}) {
        INFO(dtype_name(dtype) << " decay " << static_cast<int>(decay) << " norms " << norms);
        compare_three_ways(sizes, dtype, decay, norms, seed++);
      }
}

TEST_CASE("cuda adam_step: a list longer than one launch's table", "[cuda][optim]") {
  TG_REQUIRE_CUDA_DEVICE();
  std::vector<int64_t> sizes;
  for (int i = 0; i < 150; ++i) sizes.push_back((i * 37) % 53);  // some empty
  for (DType dtype : kFloatTypes) {
    INFO(dtype_name(dtype));
    compare_three_ways(sizes, dtype, Decay::Decoupled, true, 100);
    compare_three_ways(sizes, dtype, Decay::L2, false, 101);
  }
}

TEST_CASE("cuda adam_step: single-element and empty lists; norms repeat bit for bit",
          "[cuda][optim]") {
  TG_REQUIRE_CUDA_DEVICE();
  compare_three_ways({1}, DType::Float32, Decay::Decoupled, true, 7);
  compare_three_ways({0, 0}, DType::Float64, Decay::L2, true, 8);
  double grad_sq = -1, weight_sq = -1;
  backend_for(kGpu).adam_step({}, {}, {}, {}, AdamHyper{}, &grad_sq, &weight_sq);
  CHECK(grad_sq == 0);
  CHECK(weight_sq == 0);

  // The same inputs twice: the same norms to the last bit (no order depends on timing).
  Generator gen(9);
  const AdamLists start = random_lists({5000, 3, 777}, DType::Float32, gen);
  double first[2], second[2];
  for (double* out : {first, second}) {
    const AdamLists l = start.to(kGpu);
    run_adam_step(backend_for(kGpu), l, hyper_for(Decay::Decoupled, 1), &out[0], &out[1]);
  }
  CHECK(std::memcmp(first, second, sizeof first) == 0);
}

TEST_CASE("cuda adam_step: bad lists are rejected before anything is written", "[cuda][optim]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(3);
  const AdamLists start = random_lists({5, 4}, DType::Float32, gen);
  Backend& gpu = backend_for(kGpu);
  const AdamHyper h = hyper_for(Decay::Decoupled, 1);
  const auto unchanged = [&](const AdamLists& l) { check_bitwise(l.p, start.p, "untouched"); };

  SECTION("lists of different lengths") {
    AdamLists l = start.to(kGpu);
    l.v.pop_back();
    CHECK_THROWS_WITH(gpu.adam_step(l.p, l.g, l.m, l.v, h, nullptr, nullptr),
                      Catch::Contains("2 parameters but 2 gradients, 2 exp_avg and 1 exp_avg_sq"));
    unchanged(l);
  }
  SECTION("a gradient of the wrong shape, last in the list") {
    AdamLists l = start.to(kGpu);
    l.g[1] = zeros({5}, DType::Float32, kGpu);
    CHECK_THROWS_WITH(gpu.adam_step(l.p, l.g, l.m, l.v, h, nullptr, nullptr),
                      Catch::Contains("gradient 1 is float32 [5]"));
    unchanged(l);
  }
  SECTION("mixed dtypes") {
    AdamLists l = start.to(kGpu);
    l.m[1] = zeros({4}, DType::Float64, kGpu);
    CHECK_THROWS_WITH(gpu.adam_step(l.p, l.g, l.m, l.v, h, nullptr, nullptr),
                      Catch::Contains("exp_avg 1 is float64"));
    unchanged(l);
  }
  SECTION("a strided buffer") {
    AdamLists l = start.to(kGpu);
    l.v[0] = zeros({10}, DType::Float32, kGpu).slice(0, 0, 10, 2);
    CHECK_THROWS_WITH(gpu.adam_step(l.p, l.g, l.m, l.v, h, nullptr, nullptr),
                      Catch::Contains("(strided)"));
    unchanged(l);
  }
  SECTION("a tensor on the CPU") {
    AdamLists l = start.to(kGpu);
    l.g[0] = start.g[0];
    CHECK_THROWS_WITH(gpu.adam_step(l.p, l.g, l.m, l.v, h, nullptr, nullptr),
                      Catch::Contains("gradient 0 is float32 [5] on cpu"));
    unchanged(l);
  }
  SECTION("an integer list") {
    const std::vector<Tensor> ints = {zeros({3}, DType::Int64, kGpu)};
    CHECK_THROWS_WITH(gpu.adam_step(ints, ints, ints, ints, h, nullptr, nullptr),
                      Catch::Contains("adam_step: not defined for int64"));
  }
}

TEST_CASE("cuda Adam and AdamW: steps and norms match the CPU optimiser", "[cuda][optim]") {
  TG_REQUIRE_CUDA_DEVICE();
  for (bool decoupled : {false, true}) {
    INFO((decoupled ? "AdamW" : "Adam"));
    Generator gen(11);
    std::vector<Tensor> cpu_params, gpu_params;
    for (int64_t n : {33, 1, 257}) {
      const Tensor p = normal({n}, 0, 1, gen, DType::Float32);
      cpu_params.push_back(p.clone().requires_grad_());
      gpu_params.push_back(p.to(kGpu).requires_grad_());
    }
    const auto make = [&](std::vector<Tensor> ps) -> std::unique_ptr<optim::Adam> {
      if (decoupled) return std::make_unique<optim::AdamW>(std::move(ps), 1e-2, 0.9, 0.98, 1e-8, 1.0);
      return std::make_unique<optim::Adam>(std::move(ps), 1e-2, 0.9, 0.98, 1e-8, 0.1);
    };
    auto cpu_opt = make(cpu_params), gpu_opt = make(gpu_params);
    for (int step = 0; step < 3; ++step) {
      for (size_t i = 0; i < cpu_params.size(); ++i) {
        if (step == 1 && i == 1) {  // a parameter without a gradient is skipped
          cpu_params[i].impl()->grad = nullptr;
          gpu_params[i].impl()->grad = nullptr;
          continue;
        }
        const Tensor g = normal(cpu_params[i].shape(), 0, 1, gen, DType::Float32);
        cpu_params[i].impl()->grad = g.clone().impl_ptr();
        gpu_params[i].impl()->grad = g.to(kGpu).impl_ptr();
      }
      const double grad_norm_by_hand = optim::global_grad_norm(cpu_params);
      double cpu_grad_norm = 0, cpu_weight_norm = 0, gpu_grad_norm = 0, gpu_weight_norm = 0;
      cpu_opt->step_with_norms(&cpu_grad_norm, &cpu_weight_norm);
      gpu_opt->step_with_norms(&gpu_grad_norm, &gpu_weight_norm);
      check_close(gpu_params, cpu_params, 1e-6, "parameters after the step");
      CHECK(gpu_grad_norm == Approx(grad_norm_by_hand).epsilon(1e-12));
      CHECK(cpu_grad_norm == Approx(grad_norm_by_hand).epsilon(1e-12));
      if (step != 1) {  // (all parameters were updated: the weight norm is the global norm)
        CHECK(gpu_weight_norm == Approx(optim::global_norm(gpu_params)).epsilon(1e-12));
        CHECK(cpu_weight_norm == Approx(optim::global_norm(cpu_params)).epsilon(1e-12));
      }
    }
    CHECK(gpu_opt->steps() == 3);
    const auto cpu_state = cpu_opt->state(), gpu_state = gpu_opt->state();
    for (size_t i = 0; i < cpu_state.size(); ++i)
      check_close({gpu_state[i].second}, {cpu_state[i].second}, 1e-6, cpu_state[i].first.c_str());
  }
}

TEST_CASE("cuda Adam with its step count on the device: host-driven steps, the CPU, and a resume",
          "[cuda][optim]") {
  TG_REQUIRE_CUDA_DEVICE();
  optim::LrSchedule schedule{0.02};
  schedule.warmup_steps = 2;
  schedule.kind = optim::LrSchedule::Kind::Cosine;
  schedule.total_steps = 5;
  schedule.min_lr = 1e-3;
  Generator gen(23);
  std::vector<Tensor> host_driven, on_device, on_cpu;
  for (int64_t n : {33, 1, 4097}) {
    const Tensor p = normal({n}, 0, 1, gen, DType::Float32);
    host_driven.push_back(p.to(kGpu).requires_grad_());
    on_device.push_back(p.to(kGpu).requires_grad_());
    on_cpu.push_back(p.clone().requires_grad_());
  }
  optim::AdamW host_opt(host_driven, 1.0, 0.9, 0.98, 1e-8, 1.0);
  optim::AdamW device_opt(on_device, 1.0, 0.9, 0.98, 1e-8, 1.0);
  optim::AdamW cpu_opt(on_cpu, 1.0, 0.9, 0.98, 1e-8, 1.0);
  device_opt.keep_step_on_device(schedule.rule());
  cpu_opt.keep_step_on_device(schedule.rule());
  for (int step = 0; step < 7; ++step) {
    for (size_t i = 0; i < on_cpu.size(); ++i) {
      const Tensor g = normal(on_cpu[i].shape(), 0, 1, gen, DType::Float32);
      host_driven[i].impl()->grad = g.to(kGpu).impl_ptr();
      on_device[i].impl()->grad = g.to(kGpu).impl_ptr();
      on_cpu[i].impl()->grad = g.clone().impl_ptr();
    }
    host_opt.set_lr(schedule.at(host_opt.steps()));
    host_opt.step();
    device_opt.step();
    cpu_opt.step();
    // The device computes pow and cos itself: equal to the host's but for a last-bit rounding
    // of a scalar at most.
    check_close(on_device, host_driven, 1e-6, "device-counted vs host-driven");
    check_close(on_device, on_cpu, 1e-6, "device-counted, GPU vs CPU");
  }
  CHECK(device_opt.steps() == 7);
  // A checkpoint's count lands on the device, and the next step uses it.
  optim::AdamW resumed(on_device, 1.0, 0.9, 0.98, 1e-8, 1.0);
  resumed.keep_step_on_device(schedule.rule());
  std::map<std::string, Tensor> saved;
  for (const auto& [name, t] : device_opt.state()) saved.emplace(name, t.clone());
  resumed.load_state(saved, device_opt.steps());
  CHECK(resumed.steps() == 7);
}

TEST_CASE("cuda Adam with its step count on the device counts each call once, in any number of "
          "launches or none",
          "[cuda][optim]") {
  TG_REQUIRE_CUDA_DEVICE();
  optim::LrSchedule schedule{0.02};
  schedule.warmup_steps = 3;
  SECTION("70 parameters: two launches, and the step counted by the second") {
    Generator gen(29);
    std::vector<Tensor> on_device, on_cpu;
    for (int i = 0; i < 70; ++i) {
      const Tensor p = normal({1 + i % 5 * 1000}, 0, 1, gen, DType::Float32);
      on_device.push_back(p.to(kGpu).requires_grad_());
      on_cpu.push_back(p.clone().requires_grad_());
    }
    optim::AdamW device_opt(on_device, 1.0, 0.9, 0.98, 1e-8, 0.5);
    optim::AdamW cpu_opt(on_cpu, 1.0, 0.9, 0.98, 1e-8, 0.5);
    device_opt.keep_step_on_device(schedule.rule());
    cpu_opt.keep_step_on_device(schedule.rule());
    for (int step = 0; step < 4; ++step) {
      for (size_t i = 0; i < on_cpu.size(); ++i) {
        const Tensor g = normal(on_cpu[i].shape(), 0, 1, gen, DType::Float32);
        on_device[i].impl()->grad = g.to(kGpu).impl_ptr();
        on_cpu[i].impl()->grad = g.impl_ptr();
      }
      device_opt.step();
      cpu_opt.step();
      // Both launches of a step take its warmup lr: a count moved by the first would show.
      check_close(on_device, on_cpu, 1e-6, "device-counted, GPU vs CPU");
      CHECK(device_opt.steps() == step + 1);
    }
  }
  SECTION("only empty parameters: nothing to update, and the step still counts") {
    optim::AdamW device_opt({zeros({0}, DType::Float32, kGpu).requires_grad_()}, 1.0);
    device_opt.keep_step_on_device(schedule.rule());
    device_opt.params()[0].impl()->grad = zeros({0}, DType::Float32, kGpu).impl_ptr();
    device_opt.step();
    device_opt.step();
    CHECK(device_opt.steps() == 2);
  }
}

// A recorded eval's weight norm (grok/run_evaluator.cpp) must be global_norm's, bit for bit.
TEST_CASE("cuda sum_of_squares_on_device: global_norm's bits, eagerly and recorded; its errors",
          "[cuda][optim]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(31);
  std::vector<Tensor> params;
  for (int64_t n : {1, 33, 4097, 65536}) params.push_back(normal({n}, 0, 1, gen).to(kGpu));
  params.push_back(normal({7, 3}, 0, 1, gen, DType::Float64).to(kGpu));
  const double norm = optim::global_norm(params);
  CHECK(std::sqrt(optim::sum_of_squares_on_device(params).item()) == norm);

  Tensor out = zeros({1}, DType::Float64, kGpu);
  const auto recorded = backend_for(kGpu).capture(
      [&] { out.copy_(optim::sum_of_squares_on_device(params).reshape({1})); });
  recorded->replay();
  CHECK(std::sqrt(out.item()) == norm);
  params[0].copy_(full({1}, 1e3, DType::Float32, kGpu));  // replays read the weights of now
  recorded->replay();
  CHECK(std::sqrt(out.item()) == optim::global_norm(params));
  CHECK(std::sqrt(out.item()) > 1e3);

  CHECK_THROWS_WITH(optim::sum_of_squares_on_device({}),
                    Catch::Matchers::Contains("sum_of_squares_on_device: no tensors"));
  CHECK_THROWS_WITH(optim::sum_of_squares_on_device({params[0], ones({2})}),
                    Catch::Matchers::Contains("tensor 1 is on cpu; all must be on one device "
                                              "other than the CPU (tensor 0 is on cuda:0)"));
  CHECK_THROWS_WITH(optim::sum_of_squares_on_device({zeros({2}, DType::Int64, kGpu)}),
                    Catch::Matchers::Contains("not a float tensor"));
}
