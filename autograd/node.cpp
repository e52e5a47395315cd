// Node: graph edges, recording, leaf accumulation, and loop-based destruction of long chains.
#include "autograd/node.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace tg {

namespace {

// What save() noted since the last record() on this thread: the op being recorded saved them.
// An entry whose tensor has died belonged to an op that saved and then did not record (it
// needed no gradient after all, or threw): it is dropped.
thread_local std::vector<Node::SavedVersion> unclaimed_saves;

void claim_saves(Node& node) {
  for (Node::SavedVersion& saved : unclaimed_saves)
    if (!saved.tensor.expired()) node.saved_versions.push_back(std::move(saved));
  unclaimed_saves.clear();
}

}  // namespace

Tensor save(const Tensor& t) {
  if (!t.defined()) return Tensor();
  Tensor saved = t.detach();
  if (unclaimed_saves.size() >= 64)  // many ops that saved and never recorded: forget the dead
    std::erase_if(unclaimed_saves, [](const Node::SavedVersion& s) { return s.tensor.expired(); });
  unclaimed_saves.push_back({saved.impl_ptr(), saved.storage()->version()});
  return saved;
}

void Node::check_saved_unchanged() const {
  for (const SavedVersion& saved : saved_versions) {
    const std::shared_ptr<TensorImpl> t = saved.tensor.lock();
    if (!t || t->storage->version() == saved.version) continue;
    throw Error(cat("backward: ", name(), " needs a ", dtype_name(t->dtype), " tensor of shape ",
                    shape_str(t->shape),
                    " that the forward pass saved, but it has been written in place since "
                    "(version ", saved.version, " when saved, ", t->storage->version(),
                    " now); run the forward pass again after changing it, or change a clone()"));
  }
}

Node::~Node() {
  // Destroying a chain of nodes recursively (each destructor releasing the next) overflows the
  // stack for long graphs. Instead, take over every predecessor this node owns alone, and let it
  // die here with its own edges already moved out, so no destructor nests inside another.
  std::vector<std::shared_ptr<Node>> pending;
  for (Edge& e : next_edges)
    if (e.node) pending.push_back(std::move(e.node));
  while (!pending.empty()) {
    std::shared_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    if (node.use_count() == 1)
      for (Edge& e : node->next_edges)
        if (e.node) pending.push_back(std::move(e.node));
  }
}

namespace {

// Whether `t` is the only handle on its memory: no other tensor shares its storage, and no one
// else holds the tensor itself (the backward engine passes the gradient it owns alone).
bool held_only_here(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1;
}

}  // namespace

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  // Leaves receive a gradient shaped like themselves, in their own dtype, owned (not a view).
  // A fresh result that nothing else can see (a GEMM's output, say) is taken as it is; one
  // that others still hold (passed on to two inputs by an add, a view, the caller's upstream
  // gradient) is copied. On a GPU that copy is a kernel launch per parameter per step.
  Tensor grad = !grad_output.is_contiguous()  ? grad_output.contiguous()
                : held_only_here(grad_output) ? grad_output
                                              : grad_output.clone();
  if (leaf_->grad) {
    grad = Tensor(leaf_->grad) + grad;  // accumulate across backward calls and shared uses
  }
  leaf_->grad = grad.impl_ptr();
  return {};
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

Edge edge_to(const Tensor& input) {
  if (!input.defined() || !input.requires_grad()) return {};
  std::shared_ptr<Node> node = input.grad_fn();
  if (!node) node = std::make_shared<AccumulateGrad>(input.impl_ptr());
  return {std::move(node), input.shape(), input.dtype()};
}

Tensor record(Tensor output, const char* name, BackwardFn backward,
              std::initializer_list<const Tensor*> inputs) {
  return record(std::move(output), name, std::move(backward), UnitSeedBackwardFn{}, inputs);
}

Tensor record(Tensor output, const char* name, BackwardFn backward,
              UnitSeedBackwardFn unit_seed_backward, std::initializer_list<const Tensor*> inputs) {
  auto node =
      std::make_shared<FunctionNode>(name, std::move(backward), std::move(unit_seed_backward));
  for (const Tensor* t : inputs) node->next_edges.push_back(t ? edge_to(*t) : Edge{});
  claim_saves(*node);
  output.impl()->grad_fn = std::move(node);
  return output;
}

Tensor record_adding(Tensor output, const char* name, AddingBackwardFn backward,
                     std::initializer_list<const Tensor*> inputs) {
  auto node = std::make_shared<FunctionNode>(name, std::move(backward));
  for (const Tensor* t : inputs) node->next_edges.push_back(t ? edge_to(*t) : Edge{});
  claim_saves(*node);
  output.impl()->grad_fn = std::move(node);
  return output;
}

Tensor record(Tensor output, const char* name, BackwardFn backward,
              const std::vector<Tensor>& inputs) {
  auto node = std::make_shared<FunctionNode>(name, std::move(backward));
  for (const Tensor& t : inputs) node->next_edges.push_back(edge_to(t));
  claim_saves(*node);
  output.impl()->grad_fn = std::move(node);
  return output;
}

}  // namespace tg
