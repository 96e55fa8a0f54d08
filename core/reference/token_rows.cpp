#include "maxgrad/core/reference/token_rows.h"

namespace mg::reference {

template <typename T> void to_token_rows(const T* x, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* t) {
  for (int64_t s = 0; s < b; ++s)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < hw; ++p) t[(s * hw + rows[p]) * c + ch] = x[(s * c + ch) * hw + p];
}

template <typename T> void from_token_rows(const T* t, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* x) {
  for (int64_t s = 0; s < b; ++s)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < hw; ++p) x[(s * c + ch) * hw + p] = t[(s * hw + rows[p]) * c + ch];
}

#define MG_INSTANTIATE(T)                                                                  \
  template void to_token_rows<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, T*); \
  template void from_token_rows<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::reference
