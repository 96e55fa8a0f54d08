#include "maxgrad/core/kernels/token_rows.h"

#include <algorithm>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/simd.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/token_rows.h"

namespace mg::kernels {

namespace {

// f(s, p0, np, c0, nc) for every block of sample s: positions [p0, p0 + np) x channels [c0, c0 + nc),
// at most one vector's width each way; (sample, positions) blocks in parallel.
template <typename T, typename F> void for_blocks(int64_t b, int64_t c, int64_t hw, F f) {
  constexpr int64_t kBlock = kVecLanes<T>;
  const int64_t pblocks = (hw + kBlock - 1) / kBlock;
  parallel_for(b * pblocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, c * kBlock)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t s = i / pblocks, p0 = i % pblocks * kBlock;
      for (int64_t c0 = 0; c0 < c; c0 += kBlock) f(s, p0, std::min(kBlock, hw - p0), c0, std::min(kBlock, c - c0));
    }
  });
}

}  // namespace

template <typename T> void to_token_rows(const T* x, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* t) {
  if (use_reference_kernels()) return reference::to_token_rows(x, b, c, hw, rows, t);
  constexpr int64_t kBlock = kVecLanes<T>;
  for_blocks<T>(b, c, hw, [&](int64_t s, int64_t p0, int64_t np, int64_t c0, int64_t nc) {
    const T* src = x + (s * c + c0) * hw + p0;  // channel cc's positions at src + cc * hw
    auto dst = [&](int64_t pp) { return t + (s * hw + rows[p0 + pp]) * c + c0; };
    if (nc == kBlock && np == kBlock) {  // a whole block: in registers, transposed by shuffles
      Vec<T> r[kBlock];
      for (int64_t cc = 0; cc < kBlock; ++cc) r[cc] = vload(src + cc * hw);
      vtranspose<T>(r);
      for (int64_t pp = 0; pp < kBlock; ++pp) vstore(dst(pp), r[pp]);
      return;
    }
    for (int64_t pp = 0; pp < np; ++pp)  // a ragged edge, one value at a time
      for (int64_t cc = 0; cc < nc; ++cc) dst(pp)[cc] = src[cc * hw + pp];
  });
}

template <typename T> void from_token_rows(const T* t, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* x) {
  if (use_reference_kernels()) return reference::from_token_rows(t, b, c, hw, rows, x);
  constexpr int64_t kBlock = kVecLanes<T>;
  for_blocks<T>(b, c, hw, [&](int64_t s, int64_t p0, int64_t np, int64_t c0, int64_t nc) {
    T* dst = x + (s * c + c0) * hw + p0;  // channel cc's positions at dst + cc * hw
    auto src = [&](int64_t pp) { return t + (s * hw + rows[p0 + pp]) * c + c0; };
    if (nc == kBlock && np == kBlock) {
      Vec<T> r[kBlock];
      for (int64_t pp = 0; pp < kBlock; ++pp) r[pp] = vload(src(pp));
      vtranspose<T>(r);
      for (int64_t cc = 0; cc < kBlock; ++cc) vstore(dst + cc * hw, r[cc]);
      return;
    }
    for (int64_t pp = 0; pp < np; ++pp)
      for (int64_t cc = 0; cc < nc; ++cc) dst[cc * hw + pp] = src(pp)[cc];
  });
}

#define MG_INSTANTIATE(T)                                                                  \
  template void to_token_rows<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, T*); \
  template void from_token_rows<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
