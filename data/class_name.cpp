#include "maxgrad/data/class_name.h"

#include "maxgrad/core/error.h"
#include "maxgrad/core/utf8.h"
#include "maxgrad/data/dataset.h"

namespace mg::data {

void check_class_name(const std::string& name, const std::string& where) {
  std::string why;
  if (name.empty())
    why = "is empty";
  else if (name.size() > kMaxClassNameBytes)
    why = "is longer than " + std::to_string(kMaxClassNameBytes) + " bytes";
  for (size_t i = 0; why.empty() && i < name.size();) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (next_utf8(name, i) < 0)
      why = "is not valid UTF-8";
    else if (c < 0x20 || c == 0x7f)
      why = "holds a control character";
    else if (c == ',')
      why = "holds a comma (checkpoints list class names separated by commas)";
  }
  if (!why.empty()) throw DataError(where + ": class name '" + printable(name, kMaxClassNameBytes) + "' " + why);
}

}  // namespace mg::data
