// The reverse-mode engine. Scheduling follows libtorch: count, for every node, how many consumers
// will send it a gradient; run a node once all of them have (its count reaches zero). That is a
// reverse topological order without recursion, so deep graphs cannot overflow the stack.
#include "maxgrad/core/autograd.h"

#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "maxgrad/core/ops.h"

namespace mg {

namespace {
thread_local bool g_grad_enabled = true;
std::atomic<const EngineObserver*> g_observer{nullptr};
}  // namespace

void set_engine_observer(const EngineObserver* observer) { g_observer.store(observer, std::memory_order_release); }

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward,
            const std::vector<Tensor>& saved) {
  bool any = false;
  if (g_grad_enabled)
    for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (const EngineObserver* o = g_observer.load(std::memory_order_acquire); o && o->on_record)
    o->on_record(name, inputs, any);
  if (!any) return;

  auto node = std::make_shared<Node>();
  node->name = name;
  for (const Tensor& t : inputs) {
    Node::Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.grad_fn())
        e.fn = t.grad_fn();
      else
        e.leaf = t.impl_ptr();
    }
    node->next.push_back(e);
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
  }
  for (const Tensor& s : saved)
    if (s.defined()) node->saved.emplace_back(s, s.version());
  node->backward = std::move(backward);
  out.impl().grad_fn = node;
  out.impl().requires_grad = true;
}

Node::~Node() {
  // A node whose last owner is a dying node is moved onto `orphans` instead of dying inside that
  // node's destructor. `saved` and `backward` go first: a saved input holds its own grad_fn, which
  // is usually the node on the edge, so releasing it first leaves the edge as the last owner.
  std::vector<std::shared_ptr<Node>> orphans;
  auto adopt_children = [&orphans](Node& n) {
    n.saved.clear();
    n.backward = nullptr;
    for (Edge& e : n.next)
      if (e.fn && e.fn.use_count() == 1) orphans.push_back(std::move(e.fn));
  };
  adopt_children(*this);
  while (!orphans.empty()) {
    std::shared_ptr<Node> n = std::move(orphans.back());
    orphans.pop_back();
    adopt_children(*n);
  }  // n is freed here, its own children already taken: its destructor finds nothing to recurse into
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  // Leading dims that broadcasting added are summed away; dims that were 1 are summed, kept.
  int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < grad.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && grad.size(d) != 1)) dims.push_back(d);
  Tensor r = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
  return r.reshape(shape);
}

bool sole_owner(const Tensor& t) {
  return t.defined() && t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1;
}

// slot += g: in place when slot is its own (see sole_owner), which saves a buffer and a pass
// writing it (the residual connections: 9.2M values in a batch-32 cifar step, counted); out of place
// otherwise (add passes one gradient tensor to several edges). Either way the same sums, same bits.
static void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g;
    return;
  }
  if (sole_owner(slot) && slot.is_contiguous() && slot.dtype() == g.dtype() && slot.shape() == g.shape())
    slot.add_(g);
  else
    slot = add(slot, g);
}

namespace {
class ObservedNode {
 public:
  explicit ObservedNode(const Node& n) : o_(g_observer.load(std::memory_order_acquire)), n_(n) {
    if (o_ && o_->node_begin) o_->node_begin(n_);
  }
  ~ObservedNode() {
    if (o_ && o_->node_end) o_->node_end(n_);
  }

 private:
  const EngineObserver* o_;
  const Node& n_;
};
}  // namespace

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  NoGradGuard no_grad;  // backward formulas are ordinary ops, not recorded

  // 1. Count the consumers of every node reachable from the root.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{root.grad_fn().get()};
  std::unordered_set<Node*> seen{stack.back()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Node::Edge& e : n->next) {
      if (!e.fn) continue;
      ++pending[e.fn.get()];
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }

  // 2. Run nodes whose consumers have all delivered, passing gradients down the edges.
  std::unordered_map<Node*, Tensor> grads{{root.grad_fn().get(), grad}};
  std::vector<std::shared_ptr<Node>> ready{root.grad_fn()};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.back();
    ready.pop_back();
    ObservedNode observed(*node);  // the observer (if any) sees this iteration, even if it throws
    Tensor g = std::move(grads[node.get()]);
    grads.erase(node.get());
    MG_CHECK(node->backward, "backward", "the graph through '", node->name,
             "' was already freed by an earlier backward(); pass retain_graph=true to the first call");
    for (const auto& [t, v] : node->saved)
      MG_CHECK(t.version() == v, "backward", "a tensor ", t.info(), " saved by '", node->name,
               "' was modified in place after it was saved (version ", v, " -> ", t.version(),
               "); make the in-place update outside the graph or use an out-of-place op");

    std::vector<Tensor> in_grads = node->backward(g);
    MG_CHECK(in_grads.size() == node->next.size(), "backward", "'", node->name, "' returned ", in_grads.size(),
             " gradients for ", node->next.size(), " inputs");
    for (size_t i = 0; i < node->next.size(); ++i) {
      const Node::Edge& e = node->next[i];
      if (!e.fn && !e.leaf) continue;
      Tensor& gi = in_grads[i];
      MG_CHECK(gi.defined(), "backward", "'", node->name, "' gave no gradient for input ", i);
      MG_CHECK(gi.shape() == node->input_shapes[i], "backward", "'", node->name, "' gave a gradient of shape ",
               gi.shape_str(), " for input ", i, " of shape ", shape_str(node->input_shapes[i]));
      if (e.leaf) {
        Tensor leaf(e.leaf);
        Tensor acc = leaf.grad();
        Tensor gl = gi.dtype() == leaf.dtype() ? gi : gi.to(leaf.dtype());
        // .grad must own its storage: one gradient tensor can reach several leaves (add passes it
        // on) or be the caller's, and optimisers update .grad in place. add() and clone() both
        // return a fresh contiguous tensor.
        leaf.set_grad(acc.defined() ? add(acc, gl) : gl.clone());
      } else {
        accumulate(grads[e.fn.get()], gi);
        if (--pending[e.fn.get()] == 0) ready.push_back(e.fn);
      }
    }
    if (!retain_graph) {  // free what the node saved: this is what releases the activations
      node->backward = nullptr;
      node->saved.clear();
    }
  }
}

}  // namespace mg
