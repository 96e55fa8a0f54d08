#include "maxgrad/core/runtime/profiler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/tensor.h"

namespace mg::profiler {

namespace {

std::atomic<bool> g_on{false}, g_shapes{false};

struct Table {
  std::mutex m;
  std::map<std::pair<Phase, std::string>, Entry> entries;
};
Table& table() {
  static Table* t = new Table;  // never destroyed: scopes may end during static destruction
  return *t;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Per thread: when the last op, scope or backward node ended (forward time is measured from there),
// and how many PartOfOp scopes and backward nodes are open (ops inside them are not timed alone).
thread_local int64_t t_mark_ns = -1;
thread_local int t_nested = 0;

void add(Phase phase, const std::string& name, int64_t ns) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.m);
  Entry& e = t.entries[{phase, name}];
  e.phase = phase;
  if (e.name.empty()) e.name = name;
  ++e.calls;
  e.ms += 1e-6 * static_cast<double>(ns);
}

// "name" or, recording shapes, "name [a,b] [c]". Missing inputs (no bias) and 0-dim ones are left
// out, in both phases alike: the engine keeps an undefined input's shape as [].
std::string key(const std::string& name, const std::vector<Shape>& shapes) {
  if (!g_shapes.load(std::memory_order_relaxed)) return name;
  std::string k = name;
  for (const Shape& s : shapes) {
    if (s.empty()) continue;
    k += " [";
    for (size_t i = 0; i < s.size(); ++i) k += (i ? "," : "") + std::to_string(s[i]);
    k += "]";
  }
  return k;
}

// A span that began at start_ns ends now: its time goes to `key`, and the next op is timed from here.
void end_span(Phase phase, const std::string& key, int64_t start_ns) {
  add(phase, key, now_ns() - start_ns);
  t_mark_ns = now_ns();  // not the end above: updating the table is nobody's time
}

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::Forward: return "forward";
    case Phase::Backward: return "backward";
    case Phase::Scope: return "scope";
  }
  return "?";
}

}  // namespace

// ---- the engine's observer (core/autograd.h) ----
namespace {

// The op's forward has just finished: ops that join the graph are timed, and every op with grad mode
// off (evaluation); the time since this thread's last mark is the op's.
void on_record(const char* name, const std::vector<Tensor>& inputs, bool joined) {
  if (!enabled() || t_nested > 0 || (!joined && grad_enabled())) return;
  if (t_mark_ns < 0) {  // a thread that never marked: this op has no start to be timed from
    t_mark_ns = now_ns();
    return;
  }
  std::vector<Shape> shapes;  // as the engine keeps them for backward: [] for a missing input
  if (g_shapes.load(std::memory_order_relaxed))
    for (const Tensor& t : inputs) shapes.push_back(t.defined() ? t.shape() : Shape{});
  end_span(Phase::Forward, key(name, shapes), t_mark_ns);
}

// A backward node's whole iteration is its entry; as with PartOfOp, the ops its formula calls are
// part of it. Nodes do not nest on a thread (backward formulas are not recorded), but a stack costs
// nothing and keeps the pairing right whatever calls run_backward.
thread_local std::vector<int64_t> t_node_start;
void node_begin(const Node&) {
  ++t_nested;
  t_node_start.push_back(enabled() ? now_ns() : -1);
}
void node_end(const Node& node) {
  --t_nested;
  const int64_t start = t_node_start.back();
  t_node_start.pop_back();
  if (start >= 0) end_span(Phase::Backward, key(node.name, node.input_shapes), start);
}

const EngineObserver g_observer{on_record, node_begin, node_end};

}  // namespace

void enable(bool on, bool record_shapes) {
  set_engine_observer(&g_observer);  // once on, it stays installed: when off it returns at once
  t_mark_ns = now_ns();              // the first op after enabling is timed from here
  g_shapes.store(record_shapes, std::memory_order_relaxed);
  g_on.store(on, std::memory_order_relaxed);
}
bool enabled() { return g_on.load(std::memory_order_relaxed); }

void reset() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.m);
  t.entries.clear();
}

std::vector<Entry> entries() {
  std::vector<Entry> out;
  {
    Table& t = table();
    std::lock_guard<std::mutex> lock(t.m);
    for (const auto& kv : t.entries) out.push_back(kv.second);
  }
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.ms > b.ms; });
  return out;
}

std::string report(int64_t steps) {
  const std::vector<Entry> es = entries();
  const double per = 1.0 / static_cast<double>(std::max<int64_t>(steps, 1));
  double total = 0;
  int width = 2;  // the op column: as wide as the longest name
  for (const Entry& e : es) {
    total += e.ms;
    width = std::max(width, static_cast<int>(e.name.size()));
  }
  std::string out;
  std::vector<char> line(static_cast<size_t>(width) + 64);
  auto add_line = [&](const char* fmt, auto... args) {
    std::snprintf(line.data(), line.size(), fmt, args...);
    out += line.data();
  };
  add_line("%-9s %-*s %10s %8s %6s\n", "phase", width, "op", "ms/step", "calls", "share");
  for (const Entry& e : es)
    add_line("%-9s %-*s %10.2f %8.1f %5.1f%%\n", phase_name(e.phase), width, e.name.c_str(), e.ms * per,
             static_cast<double>(e.calls) * per, total > 0 ? 100.0 * e.ms / total : 0.0);
  add_line("%-9s %-*s %10.2f\n", "total", width, "", total * per);
  return out;
}

Scope::Scope(const char* name) : name_(name) {
  ++t_nested;
  if (enabled()) start_ns_ = now_ns();
}
Scope::~Scope() {
  --t_nested;
  if (start_ns_ >= 0) end_span(Phase::Scope, name_, start_ns_);
}

PartOfOp::PartOfOp() { ++t_nested; }
PartOfOp::~PartOfOp() { --t_nested; }

}  // namespace mg::profiler
