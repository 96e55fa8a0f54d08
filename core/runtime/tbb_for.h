// mg::tbb_parallel_for: tbb::parallel_for, plus what ThreadSanitizer needs to check the loop body.
//
// Debian's libtbb is not built with TSan, so TSan cannot see how a loop hands its work (the body and
// the sub-ranges, copied from thread to thread) to oneTBB's threads, nor how they hand it back: it
// would report every loop's reads of its inputs, and the caller's reads of its outputs, as races.
// Under TSan this wrapper states what tbb::parallel_for guarantees anyway, through one sync address:
// every copy of the body is a release, every chunk starts with an acquire and ends with a release,
// and the caller acquires once the loop returns. A chunk that throws releases too, and the caller
// acquires before the exception reaches it: oneTBB rethrows only after every chunk has stopped. Chunks running at the
// same time stay unordered, so two of them touching the same memory are still reported. The reports left are about
// oneTBB's own bookkeeping; tests/tsan.supp silences those (and only those). Other builds call tbb::parallel_for
// directly: this header costs them nothing.
#pragma once
#include <tbb/parallel_for.h>

#include <type_traits>
#include <utility>

#if defined(__SANITIZE_THREAD__)
#define MG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MG_TSAN 1
#endif
#endif

#ifdef MG_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace mg {

#ifdef MG_TSAN
namespace tsan_detail {
inline char token;  // a global address, so a thread can acquire before it reads anything oneTBB handed it
inline void acquire() { __tsan_acquire(&token); }
inline void release() { __tsan_release(&token); }
// Calls F on scope exit, also when an exception passes through.
template <void (*F)()> struct OnExit {
  ~OnExit() { F(); }
};

template <class F> struct Body {
  F f;
  explicit Body(const F& fn) : f(fn) { release(); }
  Body(const Body& o) : f((acquire(), o.f)) { release(); }
  template <class A> void operator()(A&& a) const {
    acquire();
    const OnExit<release> released;
    f(std::forward<A>(a));
  }
};
}  // namespace tsan_detail

// A Range (tbb::blocked_range, ...), then the body, then optional arguments (a partitioner).
template <class Range, class F, class... Rest, std::enable_if_t<!std::is_integral_v<Range>, int> = 0>
void tbb_parallel_for(const Range& range, const F& body, Rest&&... rest) {
  const tsan_detail::OnExit<tsan_detail::acquire> acquired;
  tbb::parallel_for(range, tsan_detail::Body<F>(body), std::forward<Rest>(rest)...);
}
// An index range [first, last), body(i) for each index.
template <class Index, class F, std::enable_if_t<std::is_integral_v<Index>, int> = 0>
void tbb_parallel_for(Index first, Index last, const F& body) {
  const tsan_detail::OnExit<tsan_detail::acquire> acquired;
  tbb::parallel_for(first, last, tsan_detail::Body<F>(body));
}
#else
template <class Range, class F, class... Rest, std::enable_if_t<!std::is_integral_v<Range>, int> = 0>
void tbb_parallel_for(const Range& range, const F& body, Rest&&... rest) {
  tbb::parallel_for(range, body, std::forward<Rest>(rest)...);
}
template <class Index, class F, std::enable_if_t<std::is_integral_v<Index>, int> = 0>
void tbb_parallel_for(Index first, Index last, const F& body) {
  tbb::parallel_for(first, last, body);
}
#endif

}  // namespace mg
