// Module: parameter registry, recursive modes, and state_dict save/load.
#include "nn/module.h"

#include "autograd/grad_mode.h"

namespace tg::nn {

void Module::check_new_name(const std::string& name, const char* what) const {
  check(!name.empty(), what, ": empty name");
  for (const Entry& e : entries_)
    check(e.name != name, what, ": ", name, " is already registered in this module");
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_new_name(name, "register_parameter");
  check(name.find('.') == std::string::npos, "register_parameter: ", name,
        ": names may not contain '.' (the separator of hierarchical names)");
  check(value.defined(), "register_parameter: ", name, ": undefined tensor");
  check(is_floating(value.dtype()), "register_parameter: ", name, ": needs a float tensor, got ",
        dtype_name(value.dtype()));
  if (!value.is_leaf()) value = value.detach();  // a parameter is a leaf of every graph
  value.requires_grad_(true);
  entries_.push_back({name, value, nullptr});
  return value;
}

void Module::add_module(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "register_module");
  check(module != nullptr, "register_module: ", name, ": null module");
  module->train(training_);
  entries_.push_back({name, Tensor(), std::move(module)});
}

void Module::collect(const std::string& prefix,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const Entry& e : entries_) {
    if (e.module) e.module->collect(prefix + e.name + ".", out);
    else out.emplace_back(prefix + e.name, e.parameter);
  }
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t total = 0;
  for (const Tensor& p : parameters()) total += p.numel();
  return total;
}

void Module::train(bool on) {
  training_ = on;
  for (Entry& e : entries_)
    if (e.module) e.module->train(on);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, p] : named_parameters()) out.emplace(name, p);
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  const auto params = named_parameters();
  // Check everything first, so that a failed load leaves the module as it was.
  std::map<std::string, const Tensor*> own;
  for (const auto& [name, p] : params) {
    own.emplace(name, &p);
    const auto it = state.find(name);
    if (it == state.end()) {
      check(!strict, "load_state_dict: ", name, ": missing from the state (", state.size(),
            " keys given)");
      continue;
    }
    const Tensor& value = it->second;
    check(value.defined(), "load_state_dict: ", name, ": undefined tensor");
    check(value.shape() == p.shape() && value.dtype() == p.dtype(), "load_state_dict: ", name,
          ": expected ", shape_str(p.shape()), " ", dtype_name(p.dtype()), ", got ",
          shape_str(value.shape()), " ", dtype_name(value.dtype()));
  }
  if (strict)
    for (const auto& [name, value] : state)
      check(own.count(name) != 0, "load_state_dict: ", name,
            ": unexpected key (the module has no parameter of that name)");

  NoGradGuard no_grad;
  for (const auto& [name, p] : params) {
    const auto it = state.find(name);
    if (it == state.end() || it->second.same(p)) continue;
    Tensor target = p;
    target.copy_(it->second);
  }
}

namespace {

// Points the TensorImpl that every holder of `p` shares at `value`'s data, rather than making a
// new handle, and drops its gradient.
void rebind(const Tensor& p, const Tensor& value) {
  TensorImpl& impl = *p.impl();
  impl.storage = value.storage();
  impl.shape = value.shape();
  impl.strides = value.strides();
  impl.offset = value.offset();
  impl.dtype = value.dtype();
  impl.grad.reset();
}

}  // namespace

Module& Module::to(DType dtype) {
  check(is_floating(dtype), "Module::to: parameters must be float, not ", dtype_name(dtype));
  NoGradGuard no_grad;
  for (auto& [name, p] : named_parameters())
    if (p.dtype() != dtype) rebind(p, p.detach().to(dtype));
  return *this;
}

Module& Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& [name, p] : named_parameters())
    if (p.device() != device) rebind(p, p.detach().to(device));
  return *this;
}

}  // namespace tg::nn
