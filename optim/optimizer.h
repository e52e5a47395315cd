// Optimizer: the interface every optimiser implements. It holds the model's parameters (shared
// handles: step() writes through the same storage), a learning rate that a schedule may change
// between steps, the count of completed steps, and named state tensors for checkpoints.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "kernels/lr_rule.h"

namespace tg::optim {

class Optimizer {
 public:
  // Parameters must be defined, floating-point, contiguous leaf tensors, each listed once.
  explicit Optimizer(std::vector<Tensor> params);
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;  // two optimisers must not share state buffers
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates, in place and outside the graph, every parameter whose grad() is defined, skips the
  // others, then counts the step (every call counts, even one that updated nothing).
  virtual void step() = 0;
  // Drops every parameter's gradient: grad() becomes undefined (PyTorch's set_to_none=True).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);  // finite and >= 0
  // Completed step() calls (with the count on the device, read from there: the host waits).
  int64_t steps() const;

  // Keeps the step count on the parameters' device and takes each step's learning rate from
  // `schedule` there (lr_at(schedule, steps())), instead of set_lr(): step() then reads nothing
  // from the host, so it can be recorded once and replayed (Backend::capture), each replay a
  // step further along the schedule. Adam and AdamW can; the others throw tg::Error.
  virtual void keep_step_on_device(const LrRule& schedule);
  bool step_on_device() const { return device_steps_.defined(); }
  const std::vector<Tensor>& params() const { return params_; }

  // Checkpoints. state() lists the optimiser's buffers in a fixed order, named "<buffer>.<i>"
  // with i the parameter's position ("exp_avg.3"). The tensors are the live buffers, not copies:
  // clone them to keep a snapshot while training goes on. The learning rate is not state (the
  // schedule recomputes it from steps()).
  virtual std::vector<std::pair<std::string, Tensor>> state() const = 0;
  // Copies `state` into the buffers and sets steps(). The whole map is checked first (every name
  // of state() present, no other names, shapes, dtypes, devices) and a tg::Error names the bad
  // entry, leaving the optimiser unchanged.
  virtual void load_state(const std::map<std::string, Tensor>& state, int64_t steps) = 0;

 protected:
  // The gradient step() should apply to parameter i: undefined when the parameter has none (skip
  // it), else checked against the parameter (shape, dtype, device) and contiguous. `op` names the
  // optimiser in errors.
  Tensor checked_grad(const char* op, size_t i) const;
  void count_step() { ++steps_; }
  // For keep_step_on_device(): the count, as an int64 [1] on the parameters' device, and the
  // schedule (device_steps() is undefined while the count is on the host).
  void move_step_count_to_device(const LrRule& schedule);
  const Tensor& device_steps() const { return device_steps_; }
  const LrRule& device_schedule() const { return device_schedule_; }

  // Contiguous zero buffers shaped like each parameter (momentum, Adam moments). Zero buffers
  // reproduce PyTorch's lazily created state exactly: its first update, buf = g or
  // m = (1 - b1) g, is what the general formula gives from zero.
  std::vector<Tensor> zeros_like_params() const;
  // load_state for optimisers whose state is a list of buffers: `buffers` is state().
  void load_buffers(const char* op, const std::vector<std::pair<std::string, Tensor>>& buffers,
                    const std::map<std::string, Tensor>& state, int64_t steps);

 private:
  std::vector<Tensor> params_;
  double lr_ = 0;
  int64_t steps_ = 0;
  Tensor device_steps_;  // defined: the count lives here (steps_ is not kept up to date)
  LrRule device_schedule_;
};

}  // namespace tg::optim
