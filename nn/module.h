// Module: the base of every layer and model — a registry of named parameters and child modules,
// in registration order, with train/eval mode and state_dict save/load.
//
// Parameters are Tensor handles: state_dict() returns aliases, and load_state_dict() copies values
// into the existing storage, so an optimiser holding the same handles sees the loaded values.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tg::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // A copy would alias the parameters of the original; share modules through shared_ptr instead.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Depth-first in registration order, with dotted names ("blocks.0.attn.W_Q").
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;

  // Sets the mode of this module and all its descendants (dropout is active only in training).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad();  // drops every parameter's gradient

  // Name -> parameter (aliases, not copies).
  std::map<std::string, Tensor> state_dict() const;
  // Copies each value into the parameter of that name, in place and outside the graph. Throws
  // tg::Error naming the parameter for a shape or dtype mismatch, and when strict, for a missing
  // or an unexpected key. Everything is checked before anything is written.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // Converts every parameter to a float dtype in place (float64 for gradient checks): the handles
  // stay the same, so convert before anything (an optimiser) keeps per-parameter state. Gradients
  // are dropped.
  Module& to(DType dtype);
  // Moves every parameter to `device` in place, the same way: the handles stay, so move before
  // an optimiser makes its per-parameter state (which it then allocates on the same device).
  Module& to(Device device);

 protected:
  // Registers a parameter under `name` (no dots), sets requires_grad, and returns the handle.
  Tensor register_parameter(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module: M must derive from tg::nn::Module");
    add_module(name, module);
    return module;
  }

 private:
  // One registration: a parameter or a child module, kept in one list so that the order of
  // named_parameters() is the order of registration.
  struct Entry {
    std::string name;
    Tensor parameter;
    std::shared_ptr<Module> module;
  };

  void add_module(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;

  std::vector<Entry> entries_;
  bool training_ = true;
};

}  // namespace tg::nn
