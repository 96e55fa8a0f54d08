#include "maxgrad/core/runtime/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace mg {
namespace {

struct Target {
  std::string name;  // empty: no crash point armed
  long nth = 1;
};

// MAXGRAD_CRASH_AT, read once: "name" or "name:n".
const Target& target() {
  static const Target t = [] {
    Target r;
    const char* env = std::getenv("MAXGRAD_CRASH_AT");
    if (!env || !*env) return r;
    const std::string s = env;
    const size_t colon = s.rfind(':');
    r.name = s.substr(0, colon);
    if (colon != std::string::npos) r.nth = std::strtol(s.c_str() + colon + 1, nullptr, 10);
    return r;
  }();
  return t;
}

}  // namespace

void crash_point(const char* name) {
  const Target& t = target();
  if (t.name.empty() || t.name != name) return;
  static std::atomic<long> passes{0};  // passes through the armed point only
  if (++passes == t.nth) ::kill(::getpid(), SIGKILL);
}

}  // namespace mg
