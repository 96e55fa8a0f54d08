// The autograd engine: Node (one recorded op), record() (how an op joins the graph) and the
// backward pass. Read core/autograd.cpp top to bottom: it fits on two screens.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "maxgrad/core/tensor.h"

namespace mg {

// dL/d(output) -> dL/d(each input), in the order the inputs were given to record().
// An entry may be left undefined when that input does not need a gradient.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

class Node {
 public:
  // Where one input's gradient goes: into the node that produced it, or, for a leaf,
  // straight into its .grad. Both null: that input does not need a gradient.
  struct Edge {
    std::shared_ptr<Node> fn;
    std::shared_ptr<TensorImpl> leaf;
  };

  std::string name;                 // the op, e.g. "mul"
  std::vector<Edge> next;           // one per input of the op
  std::vector<Shape> input_shapes;  // to check what backward returns
  BackwardFn backward;              // cleared once run, unless retain_graph
  // Tensors the backward closure reads, with their storage version at forward time.
  std::vector<std::pair<Tensor, uint64_t>> saved;

  // Frees the chain of nodes below this one with an explicit stack: left to the shared_ptrs, a
  // 100,000-op chain would recurse once per node and overflow the stack.
  ~Node();
};

// Grad mode is per thread, like PyTorch's: NoGradGuard turns recording off in a scope.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Makes `out` the result of op `name` applied to `inputs` when any input requires grad (and grad
// mode is on). `saved` lists the tensors `backward` captured, so that an in-place write into one
// of them before backward() is reported instead of silently giving a wrong gradient.
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward,
            const std::vector<Tensor>& saved = {});

// Sums a broadcast gradient back to the shape of the input it was broadcast from.
Tensor sum_to(const Tensor& grad, const Shape& shape);

// Whether nothing but this handle can see t's memory: no other handle to the tensor, no view of its
// storage, nothing saved that holds it. Then the engine adds a later gradient into a node's first
// in place, and a backward may write its result over the incoming gradient it was handed (an
// elementwise one reads each value once, before writing it): no new buffer, and no memory traffic
// fetching one to write into.
bool sole_owner(const Tensor& t);

// The engine itself (Tensor::backward calls this).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

// A tool that watches the engine (the op profiler, core/runtime/profiler.h) installs an observer; the engine
// calls it and knows nothing else of the tool. on_record: op `name` has just computed its output
// (joined: it also joined the graph); node_begin / node_end: around one node of run_backward.
// Null pointers (the default) are not called.
struct EngineObserver {
  void (*on_record)(const char* name, const std::vector<Tensor>& inputs, bool joined) = nullptr;
  void (*node_begin)(const Node& node) = nullptr;
  void (*node_end)(const Node& node) = nullptr;
};
void set_engine_observer(const EngineObserver* observer);  // nullptr: none; the object must outlive its use

// The recorded graph below `t`, one node per line, indented by depth; and the same as Graphviz DOT.
std::string graph_to_string(const Tensor& t);
std::string graph_to_dot(const Tensor& t);

}  // namespace mg
