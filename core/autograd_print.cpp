// Printing the recorded graph (declared in core/autograd.h): a reading aid, not part of the engine.
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "maxgrad/core/autograd.h"

namespace mg {

namespace {
std::string leaf_label(const TensorImpl& t) {
  return cat(t.name.empty() ? "leaf" : t.name, " ", dtype_name(t.dtype), shape_str(t.shape));
}
}  // namespace

std::string graph_to_string(const Tensor& t) {
  std::ostringstream o;
  if (!t.grad_fn()) {
    o << leaf_label(t.impl()) << (t.requires_grad() ? " (requires grad)" : " (no graph)") << "\n";
    return o.str();
  }
  std::unordered_set<Node*> shown;
  // Depth-first with an explicit stack of (node or leaf, depth). Leaves go on the stack like nodes,
  // and children are pushed last-input-first, so they print in input order: mul(a, b) shows a, b.
  // A node already shown is printed once more as a reference.
  struct Item {
    Node* fn;
    const TensorImpl* leaf;
    int depth;
  };
  std::vector<Item> stack{{t.grad_fn().get(), nullptr, 0}};
  while (!stack.empty()) {
    Item it = stack.back();
    stack.pop_back();
    o << std::string(2 * it.depth, ' ');
    if (it.leaf) {
      o << leaf_label(*it.leaf) << "\n";
      continue;
    }
    o << it.fn->name;
    if (!shown.insert(it.fn).second) {
      o << " (see above)\n";
      continue;
    }
    o << "\n";
    for (auto e = it.fn->next.rbegin(); e != it.fn->next.rend(); ++e)
      if (e->fn || e->leaf) stack.push_back({e->fn.get(), e->leaf.get(), it.depth + 1});
  }
  return o.str();
}

std::string graph_to_dot(const Tensor& t) {
  std::ostringstream o;
  o << "digraph autograd {\n  rankdir=BT;\n  node [shape=box, fontname=\"monospace\"];\n";
  if (t.grad_fn()) {
    std::unordered_map<const void*, int> id;
    auto get_id = [&](const void* p, bool& fresh) {
      auto [it, ins] = id.emplace(p, static_cast<int>(id.size()));
      fresh = ins;
      return it->second;
    };
    std::vector<Node*> stack{t.grad_fn().get()};
    bool fresh;
    o << "  n" << get_id(stack.back(), fresh) << " [label=\"" << stack.back()->name << "\"];\n";
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      int me = id[n];
      for (const Node::Edge& e : n->next) {
        if (e.fn) {
          int c = get_id(e.fn.get(), fresh);
          if (fresh) {
            o << "  n" << c << " [label=\"" << e.fn->name << "\"];\n";
            stack.push_back(e.fn.get());
          }
          o << "  n" << c << " -> n" << me << ";\n";
        } else if (e.leaf) {
          int c = get_id(e.leaf.get(), fresh);
          if (fresh)
            o << "  n" << c << " [label=\"" << leaf_label(*e.leaf) << "\", style=filled, fillcolor=lightblue];\n";
          o << "  n" << c << " -> n" << me << ";\n";
        }
      }
    }
  }
  o << "}\n";
  return o.str();
}

}  // namespace mg
