// The hand-vectorised kernels read nothing past their operands. Each operand in turn is placed so
// that it ends exactly where an unmapped page begins: one element too far is a crash, not a silent
// read of a neighbour. (AddressSanitizer builds change the code the compiler makes, and heap
// redzones miss a read that lands in the next allocation, so this checks the optimised build too.)
// It caught GCC 12 at -O3 vectorising the attention backward's column reads of P past its end.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "core/kernels/attention.h"

#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>

using namespace mg;

namespace {

// count elements of T that end exactly at a PROT_NONE page.
template <typename T> class Guarded {
 public:
  explicit Guarded(int64_t count, T fill) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t bytes = static_cast<size_t>(count) * sizeof(T);
    pages_ = (bytes + page - 1) / page + 1;
    base_ =
        static_cast<char*>(mmap(nullptr, pages_ * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(base_ != MAP_FAILED);
    REQUIRE(mprotect(base_ + (pages_ - 1) * page, page, PROT_NONE) == 0);
    data_ = reinterpret_cast<T*>(base_ + (pages_ - 1) * page - bytes);
    for (int64_t i = 0; i < count; ++i) data_[i] = fill;
  }
  ~Guarded() { munmap(base_, pages_ * static_cast<size_t>(sysconf(_SC_PAGESIZE))); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  T* data() { return data_; }

 private:
  char* base_ = nullptr;
  size_t pages_ = 0;
  T* data_ = nullptr;
};

template <typename T> void attention_within_operands(const kernels::AttnGeom& g) {
  const int64_t n = g.n, c = g.heads * g.hd;
  const int64_t sizes[] = {n * 3 * c, g.heads * n * n, n * c, n * c, kernels::attention_scratch_size(g),
                           n * 3 * c, g.heads * n * n};
  const char* names[] = {"qkv", "bias", "out", "gout", "scratch", "gqkv", "gbias / probs"};
  for (int guarded = 0; guarded < 7; ++guarded) {
    INFO("operand ending at an unmapped page: ", names[guarded], ", n ", n, ", heads ", g.heads, ", hd ", g.hd);
    std::vector<std::vector<T>> plain;
    std::vector<Guarded<T>*> owned;
    std::vector<T*> p;
    for (int i = 0; i < 7; ++i) {
      const T fill = static_cast<T>(0.01 * (i + 1));
      if (i == guarded) {
        owned.push_back(new Guarded<T>(sizes[i], fill));
        p.push_back(owned.back()->data());
      } else {
        plain.emplace_back(static_cast<size_t>(sizes[i]), fill);
        p.push_back(plain.back().data());
      }
    }
    T* probs = p[6];  // the forward writes P, the backward reads it (and gbias is the same size)
    std::vector<T> gbias(static_cast<size_t>(sizes[6]), T(0));
    kernels::attention_forward<T>(p[0], p[1], g, T(0.25), p[2], probs, p[4]);
    kernels::attention_backward<T>(p[0], probs, p[3], g, T(0.25), p[5], gbias.data(), p[4]);
    CHECK(p[5][0] == p[5][0]);  // ran to the end (and produced a number)
    for (auto* o : owned) delete o;
  }
}

}  // namespace

TEST_CASE("attention forward and backward read and write only within their operands") {
  for (const kernels::AttnGeom& g : {kernels::AttnGeom{16, 4, 16}, kernels::AttnGeom{16, 1, 32},
                                     kernels::AttnGeom{4, 2, 8}, kernels::AttnGeom{49, 2, 32}}) {
    attention_within_operands<float>(g);
    attention_within_operands<double>(g);
  }
}

#else
TEST_CASE("guard-page checks need Linux (mmap, mprotect)") { MESSAGE("skipped: not Linux"); }
#endif
