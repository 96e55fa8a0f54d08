// One exception type for every user error (bad shape, dtype, index, file): the message names the
// op, the shapes and what would fit, so a user can fix the call without reading the source.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "maxgrad/core/utf8.h"

namespace mg {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

// A string from a file, made fit for a message: control characters and bytes that are not valid
// UTF-8 shown as \xHH (no terminal escape sequence reaches the terminal), at most `max` bytes kept
// (no 100 MB message).
inline std::string printable(const std::string& s, size_t max = 200) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < max;) {
    const size_t start = i;
    const int32_t cp = next_utf8(s, i);
    if (cp >= 0x20 && cp != 0x7f) {
      out.append(s, start, i - start);
    } else {
      const auto c = static_cast<unsigned char>(s[start]);
      out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
      i = start + 1;
    }
  }
  return s.size() > max ? out + "..." : out;
}

namespace detail {
inline void cat_into(std::ostringstream&) {}
template <typename A, typename... R> void cat_into(std::ostringstream& o, const A& a, const R&... r) {
  o << a;
  cat_into(o, r...);
}
}  // namespace detail

template <typename... A> std::string cat(const A&... a) {
  std::ostringstream o;
  detail::cat_into(o, a...);
  return o.str();
}

}  // namespace mg

// MG_CHECK(cond, "op", parts...): throws mg::Error("op: parts...") when cond is false.
#define MG_CHECK(COND, OP, ...)                                       \
  do {                                                                \
    if (!(COND)) throw ::mg::Error(::mg::cat(OP, ": ", __VA_ARGS__)); \
  } while (0)
