// The backward pass: order the graph, run each node once, accumulate gradients with +=
// (or let a node add them in its own kernels, Node::adds_pending_gradients).
//
// Two loops, no recursion (a 100,000-node chain must not overflow the stack):
//  1. walk the graph from the root and count, for each node, how many edges point at it;
//  2. run nodes whose count has dropped to zero, starting from the root. A node's gradient is
//     the sum of what all its consumers sent it, so it only runs once every consumer has.
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/factories.h"

namespace tg {

namespace {

std::unordered_map<Node*, int> count_dependencies(Node* root) {
  std::unordered_map<Node*, int> dependencies{{root, 0}};
  std::vector<Node*> stack{root};
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const Edge& e : node->next_edges) {
      if (!e.node) continue;
      auto [it, first_visit] = dependencies.try_emplace(e.node.get(), 0);
      ++it->second;
      if (first_visit) stack.push_back(e.node.get());
    }
  }
  return dependencies;
}

// node->apply_adding(grad) for a node that adds its inputs' pending gradients itself
// (Node::adds_pending_gradients): hands it what each input's other consumers have sent so far,
// and puts back what it left, for the usual sum.
std::vector<Tensor> apply_adding_pending(Node& node, const Tensor& grad,
                                         std::unordered_map<Node*, Tensor>& grads) {
  const std::vector<Edge>& edges = node.next_edges;
  std::vector<Tensor> pending(edges.size());
  for (size_t i = 0; i < edges.size(); ++i) {
    Node* next = edges[i].node.get();
    bool earlier_edge = false;  // the first edge to an input takes its pending sum
    for (size_t j = 0; j < i; ++j) earlier_edge = earlier_edge || edges[j].node.get() == next;
    auto it = next ? grads.find(next) : grads.end();
    if (earlier_edge || it == grads.end()) continue;
    pending[i] = std::move(it->second);
    grads.erase(it);
  }
  std::vector<bool> had_pending(edges.size());
  for (size_t i = 0; i < edges.size(); ++i) had_pending[i] = pending[i].defined();
  std::vector<Tensor> input_grads = node.apply_adding(grad, pending);
  for (size_t i = 0; i < edges.size(); ++i) {
    if (pending[i].defined()) {
      grads[edges[i].node.get()] = std::move(pending[i]);
    } else if (had_pending[i]) {
      check(i < input_grads.size() && input_grads[i].defined(), "backward: ", node.name(),
            " took input ", i, "'s pending gradient but returned none for it");
    }
  }
  return input_grads;
}

// root_grad undefined: the seed 1, for a root that knows its gradients for it.
void run_backward(const Tensor& root, const Tensor& root_grad, bool retain_graph) {
  NoGradGuard no_grad;  // backward computes values, it does not record a graph of its own
  Node* start = root.grad_fn().get();
  std::unordered_map<Node*, int> dependencies = count_dependencies(start);
  std::unordered_map<Node*, Tensor> grads{{start, root_grad}};
  std::vector<Node*> ready{start};

  while (!ready.empty()) {
    Node* node = ready.back();
    ready.pop_back();
    check(!node->released(), "backward: ", node->name(), " was already run by an earlier "
          "backward() that freed the graph; pass retain_graph=true to the first backward() to "
          "run backward twice");
    // A node that received no gradient (its consumers' gradients were all undefined) passes
    // none on, but still counts as run so that its predecessors are released in turn.
    std::vector<Tensor> input_grads;
    if (auto it = grads.find(node); it != grads.end()) {
      Tensor grad = std::move(it->second);
      grads.erase(it);
      // Only the root goes without a gradient: the seed 1, which it knows how to take.
      node->check_saved_unchanged();
      input_grads = !grad.defined()                  ? node->apply_to_unit_seed()
                    : node->adds_pending_gradients() ? apply_adding_pending(*node, grad, grads)
                                                     : node->apply(grad);
    }
    if (!retain_graph) node->release();

    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& edge = node->next_edges[i];
      Node* next = edge.node.get();
      if (!next) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        // A gradient that does not fit its input is a bug in that op's backward; catching it
        // here keeps it from being silently broadcast into the sum below.
        check(input_grads[i].shape() == edge.shape && input_grads[i].dtype() == edge.dtype,
              "backward: ", node->name(), " returned a gradient ",
              shape_str(input_grads[i].shape()), " ", dtype_name(input_grads[i].dtype()),
              " for input ", i, " of shape ", shape_str(edge.shape), " ", dtype_name(edge.dtype));
        Tensor& slot = grads[next];
        slot = slot.defined() ? slot + input_grads[i] : input_grads[i];
      }
      if (--dependencies[next] == 0) ready.push_back(next);
    }
  }
}

}  // namespace

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  check(requires_grad(), "backward: tensor of shape ", shape_str(shape()),
        " does not require grad (no input of the ops that made it requires grad)");
  Tensor root_grad = gradient;
  if (!root_grad.defined()) {
    check(numel() == 1, "backward: tensor of shape ", shape_str(shape()),
          " is not a scalar; pass the upstream gradient explicitly");
    // The seed is 1. A root that knows its gradients for it (a loss) is not given a tensor of
    // ones to multiply by: on a GPU that is two kernels fewer in every step.
    if (!is_leaf() && grad_fn()->knows_unit_seed_gradients()) {
      run_backward(*this, Tensor(), retain_graph);
      return;
    }
    root_grad = ones(shape(), dtype(), device());
  }
  check(root_grad.shape() == shape(), "backward: gradient of shape ", shape_str(root_grad.shape()),
        " does not match tensor of shape ", shape_str(shape()));
  check(root_grad.dtype() == dtype(), "backward: gradient is ", dtype_name(root_grad.dtype()),
        ", tensor is ", dtype_name(dtype()));
  check(root_grad.device() == device(), "backward: gradient is on ", root_grad.device().str(),
        ", tensor on ", device().str());
  if (is_leaf()) {  // nothing to traverse: the gradient goes straight into .grad
    NoGradGuard no_grad;
    AccumulateGrad(impl_ptr()).apply(root_grad.detach());
    return;
  }
  run_backward(*this, root_grad.detach(), retain_graph);
}

}  // namespace tg
