// UTF-8, as the strings from files (safetensors headers, class names) must be: well-formed, no
// overlong forms, no surrogates, nothing above U+10FFFF.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mg {

// The code point starting at s[i], moving i past it; -1 (i moved past one byte) if no valid UTF-8
// sequence starts there.
inline int32_t next_utf8(const std::string& s, size_t& i) {
  const uint32_t c = static_cast<unsigned char>(s[i++]);
  if (c < 0x80) return static_cast<int32_t>(c);
  size_t n;
  uint32_t cp, min;
  if ((c & 0xE0) == 0xC0)
    n = 1, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0)
    n = 2, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0)
    n = 3, cp = c & 0x07, min = 0x10000;
  else
    return -1;
  if (s.size() - i < n) return -1;
  for (size_t k = 0; k < n; ++k, ++i) {
    const auto d = static_cast<unsigned char>(s[i]);
    if ((d & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (d & 0x3F);
  }
  return cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ? -1 : static_cast<int32_t>(cp);
}

inline bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();)
    if (next_utf8(s, i) < 0) return false;
  return true;
}

}  // namespace mg
