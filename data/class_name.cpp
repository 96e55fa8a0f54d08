#include "maxgrad/data/class_name.h"

#include <cstdint>

#include "maxgrad/data/dataset.h"

namespace mg::data {
namespace {

// Length of the UTF-8 sequence at s[i], or 0 if it is not a valid one (overlong forms, surrogates
// and code points above U+10FFFF included).
size_t utf8_length(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp, min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0)
    n = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0)
    n = 3, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0)
    n = 4, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  return cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ? 0 : n;
}

// The name with every byte outside printable ASCII shown as \xHH, for the error message.
std::string shown(const std::string& name) {
  std::string out;
  static const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < name.size() && i < kMaxClassNameBytes; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f)
      out += static_cast<char>(c);
    else
      out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
  }
  return out + (name.size() > kMaxClassNameBytes ? "..." : "");
}

}  // namespace

void check_class_name(const std::string& name, const std::string& where) {
  std::string why;
  if (name.empty())
    why = "is empty";
  else if (name.size() > kMaxClassNameBytes)
    why = "is longer than " + std::to_string(kMaxClassNameBytes) + " bytes";
  for (size_t i = 0; why.empty() && i < name.size();) {
    const size_t n = utf8_length(name, i);
    const auto c = static_cast<unsigned char>(name[i]);
    if (n == 0)
      why = "is not valid UTF-8";
    else if (c < 0x20 || c == 0x7f)
      why = "holds a control character";
    else if (c == ',')
      why = "holds a comma (checkpoints list class names separated by commas)";
    i += n ? n : 1;
  }
  if (!why.empty()) throw DataError(where + ": class name '" + shown(name) + "' " + why);
}

}  // namespace mg::data
