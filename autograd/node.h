// Node: one recorded op in the backward graph — its gradient function and its input edges.
//
// When an op runs with an input that requires grad, it creates a Node subclass that saves only
// what its backward needs, points one edge at each input's producer (another Node, or an
// AccumulateGrad for a leaf), and becomes the output's grad_fn. backward() (engine.cpp) then
// calls apply() on each node once, in reverse topological order.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg {

class Node;

// Where the gradient of one input goes: the node that produced that input, or null when the
// input does not require grad. The input's shape and dtype let the engine check that a backward
// returns a gradient that fits its input.
struct Edge {
  std::shared_ptr<Node> node;
  Shape shape;
  DType dtype = DType::Float32;
};

class Node {
 public:
  virtual ~Node();

  // The op's name for error messages and graph printing, e.g. "MatmulBackward".
  virtual std::string name() const = 0;

  // Given d(loss)/d(output), returns d(loss)/d(input) for each edge, in edge order (an undefined
  // Tensor where the input needs none). Runs with grad mode off.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;

  // backward() without a gradient seeds a scalar with 1. A node that knows its input gradients
  // for that seed without reading it (a loss that computed them in its forward pass) says so,
  // and the engine calls apply_to_unit_seed() instead of making a tensor of ones for apply().
  virtual bool knows_unit_seed_gradients() const { return false; }
  virtual std::vector<Tensor> apply_to_unit_seed() { return {}; }

  // An input that several ops read gets the sum of their gradients, which the engine adds as
  // they arrive. A node that can add the sum so far into a kernel it runs anyway (a GEMM that
  // adds a residual as it stores its output) says so, and the engine calls apply_adding()
  // instead of apply(): pending[i] is what input i's other consumers have sent so far
  // (undefined: nothing yet, or an earlier edge of this node goes to the same input). For each
  // pending[i] the node adds into its gradient for input i, it resets pending[i]; the engine
  // adds the ones left, as usual.
  virtual bool adds_pending_gradients() const { return false; }
  virtual std::vector<Tensor> apply_adding(const Tensor& grad_output,
                                           std::vector<Tensor>& pending) {
    return apply(grad_output);
  }

  // Drops saved tensors once backward has used them (unless retain_graph).
  void release() {
    release_saved();
    saved_versions.clear();
    released_ = true;
  }
  bool released() const { return released_; }

  // Throws if a tensor this node saved for its backward has been written in place since (its
  // storage's version moved on): the backward would read values the forward never used. The
  // engine calls it before apply().
  void check_saved_unchanged() const;

  std::vector<Edge> next_edges;

  // What save() kept for this node's backward, each with its storage's version at the time.
  // Weak: the backward closure owns the saved tensors, and release() drops both.
  struct SavedVersion {
    std::weak_ptr<TensorImpl> tensor;
    uint64_t version = 0;
  };
  std::vector<SavedVersion> saved_versions;

 protected:
  virtual void release_saved() {}

 private:
  bool released_ = false;
};

// The sink for a leaf tensor: adds the incoming gradient into leaf.grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(const Tensor& grad_output) override;

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

// True when an op on these inputs must be recorded: grad mode is on and some input needs grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// The edge for one input: its grad_fn, a new AccumulateGrad for a leaf that requires grad, or a
// null edge.
Edge edge_to(const Tensor& input);

// A node whose backward is a closure written beside the op's forward, micrograd-style. The
// closure captures what backward needs (through save()); release() destroys it, and with it the
// saved tensors.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;
// The input gradients for the seed 1 (Node::apply_to_unit_seed); empty: none known.
using UnitSeedBackwardFn = std::function<std::vector<Tensor>()>;
// A backward that may add the gradients pending for its inputs (Node::apply_adding).
using AddingBackwardFn =
    std::function<std::vector<Tensor>(const Tensor& grad_output, std::vector<Tensor>& pending)>;

class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, BackwardFn backward, UnitSeedBackwardFn unit_seed_backward = {})
      : name_(name),
        backward_(std::move(backward)),
        unit_seed_backward_(std::move(unit_seed_backward)) {}
  FunctionNode(const char* name, AddingBackwardFn backward)
      : name_(name), adding_backward_(std::move(backward)) {}
  std::string name() const override { return name_; }
  std::vector<Tensor> apply(const Tensor& grad_output) override {
    if (!adding_backward_) return backward_(grad_output);
    std::vector<Tensor> nothing_pending(next_edges.size());
    return adding_backward_(grad_output, nothing_pending);
  }
  bool knows_unit_seed_gradients() const override { return bool(unit_seed_backward_); }
  std::vector<Tensor> apply_to_unit_seed() override { return unit_seed_backward_(); }
  bool adds_pending_gradients() const override { return bool(adding_backward_); }
  std::vector<Tensor> apply_adding(const Tensor& grad_output,
                                   std::vector<Tensor>& pending) override {
    return adding_backward_ ? adding_backward_(grad_output, pending) : apply(grad_output);
  }

 protected:
  void release_saved() override {
    backward_ = nullptr;
    unit_seed_backward_ = nullptr;
    adding_backward_ = nullptr;
  }

 private:
  const char* name_;
  BackwardFn backward_;
  UnitSeedBackwardFn unit_seed_backward_;
  AddingBackwardFn adding_backward_;
};

// Makes `output` the result of a recorded op: a FunctionNode named `name` with one edge per
// input, in the order the backward closure returns their gradients. Returns `output`.
Tensor record(Tensor output, const char* name, BackwardFn backward,
              std::initializer_list<const Tensor*> inputs);
// The same, for a scalar output whose input gradients for backward()'s seed 1 are known already:
// `unit_seed_backward` returns them (Node::apply_to_unit_seed).
Tensor record(Tensor output, const char* name, BackwardFn backward,
              UnitSeedBackwardFn unit_seed_backward, std::initializer_list<const Tensor*> inputs);
Tensor record(Tensor output, const char* name, BackwardFn backward,
              const std::vector<Tensor>& inputs);
// The same for a backward that may add its inputs' pending gradients (Node::apply_adding).
Tensor record_adding(Tensor output, const char* name, AddingBackwardFn backward,
                     std::initializer_list<const Tensor*> inputs);

// What a backward closure captures of a tensor: detached, since a node must not own its own
// output's grad_fn (that would be a reference cycle) and backward only needs the values. Its
// storage's version is noted too, and the next record() on this thread, the op's own (save()
// is called in its closure's captures), hands it to the node, whose check_saved_unchanged()
// then refuses a backward after an in-place write to it, as PyTorch does.
Tensor save(const Tensor& t);

}  // namespace tg
