// The hand-vectorised kernels (attention, batch norm, layer norm, depthwise convolution) read and write
// nothing past their operands. Each operand in turn is placed so
// that it ends exactly where an unmapped page begins: one element too far is a crash, not a silent
// read of a neighbour. (AddressSanitizer builds change the code the compiler makes, and heap
// redzones miss a read that lands in the next allocation, so this checks the optimised build too.)
// It caught GCC 12 at -O3 vectorising the attention backward's column reads of P past its end.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "maxgrad/core/kernels/attention.h"
#include "maxgrad/core/kernels/batch_norm.h"
#include "maxgrad/core/kernels/depthwise.h"
#include "maxgrad/core/kernels/layer_norm.h"

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

// Runs fn(pointers) once per operand, that operand guarded and the others plain; sizes in elements.
template <typename T, typename Fn> void each_operand_guarded(const std::vector<int64_t>& sizes, Fn fn) {
  for (size_t guarded = 0; guarded < sizes.size(); ++guarded) {
    INFO("operand ", guarded, " ends at an unmapped page");
    std::vector<std::vector<T>> plain(sizes.size());
    std::unique_ptr<Guarded<T>> guard;
    std::vector<T*> p;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const T fill = static_cast<T>(0.01 * static_cast<double>(i + 1));
      if (i == guarded) {
        guard = std::make_unique<Guarded<T>>(sizes[i], fill);
        p.push_back(guard->data());
      } else {
        plain[i].assign(static_cast<size_t>(sizes[i]), fill);
        p.push_back(plain[i].data());
      }
    }
    fn(p);
  }
}

template <typename T> void attention_within_operands(const kernels::AttnGeom& g) {
  INFO("attention, n ", g.n, ", heads ", g.heads, ", hd ", g.hd);
  const int64_t n = g.n, c = g.heads * g.hd;
  // qkv, bias, out, gout, scratch, gqkv, probs (written by the forward, read by the backward)
  each_operand_guarded<T>(
      {n * 3 * c, g.heads * n * n, n * c, n * c, kernels::attention_scratch_size(g), n * 3 * c, g.heads * n * n},
      [&](const std::vector<T*>& p) {
        std::vector<T> gbias(static_cast<size_t>(g.heads * n * n), T(0));
        kernels::attention_forward<T>(p[0], p[1], g, T(0.25), p[2], p[6], p[4]);
        kernels::attention_backward<T>(p[0], p[6], p[3], g, T(0.25), p[5], gbias.data(), p[4]);
        CHECK(p[5][0] == p[5][0]);  // ran to the end (and produced a number)
      });
}

template <typename T> void batch_norm_within_operands(const kernels::BnGeom& g) {
  INFO("batch norm, (", g.n, ", ", g.c, ", ", g.inner, ")");
  const int64_t all = g.n * g.c * g.inner;
  // x, w, b, y, gy, gx, then the per-channel mean, var, rstd, scale, shift
  each_operand_guarded<T>({all, g.c, g.c, all, all, all, g.c, g.c, g.c, g.c, g.c}, [&](const std::vector<T*>& p) {
    std::vector<double> sum_g(static_cast<size_t>(g.c)), sum_gxhat(static_cast<size_t>(g.c));
    kernels::bn_forward_training<T>(p[0], g, 1e-3, p[1], p[2], kernels::BnAct::Gelu, p[3], p[6], p[7], p[8], p[9],
                                    p[10]);
    kernels::bn_backward<T>(p[4], p[0], g, p[6], p[8], p[1], p[2], true, kernels::BnAct::Gelu, p[9], p[10], p[5],
                            sum_g.data(), sum_gxhat.data());
    CHECK(p[5][0] == p[5][0]);
  });
}

template <typename T> void layer_norm_within_operands(const kernels::LnGeom& g) {
  INFO("layer norm, rows ", g.rows, ", c ", g.c);
  const int64_t all = g.rows * g.c;
  // x, w, b, y, mean, rstd, gy, gx
  each_operand_guarded<T>({all, g.c, g.c, all, g.rows, g.rows, all, all}, [&](const std::vector<T*>& p) {
    std::vector<double> dw(static_cast<size_t>(g.c)), db(static_cast<size_t>(g.c));
    kernels::ln_forward<T>(p[0], g, 1e-5, p[1], p[2], p[3], p[4], p[5]);
    kernels::ln_backward<T>(p[6], p[0], g, p[4], p[5], p[1], p[7], dw.data(), db.data());
    CHECK(p[7][0] == p[7][0]);
  });
}

template <typename T>
void depthwise_within_operands(int64_t channels, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad) {
  const int64_t ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
  const kernels::ConvGeom g{1, h, w, k, k, stride, pad, ho, wo};
  INFO("depthwise ", k, "x", k, ", stride ", stride, ", padding ", pad, ", on ", channels, " planes of ", h, "x", w);
  // x, weight, bias, y, gy, gx, scratch, weight-gradient accumulator
  each_operand_guarded<T>({channels * h * w, channels * k * k, channels, channels * ho * wo, channels * ho * wo,
                           channels * h * w, kernels::dw_scratch_size(g), channels * kernels::dw_acc_size(g)},
                          [&](const std::vector<T*>& p) {
                            kernels::dw_forward<T>(p[0], p[1], p[2], g, 0, channels, p[3], p[6]);
                            kernels::dw_backward_input<T>(p[4], p[1], g, 0, channels, p[5], p[6]);
                            kernels::dw_backward_weight_acc<T>(p[4], p[0], g, 0, channels, p[7], p[6]);
                            CHECK(p[5][0] == p[5][0]);
                          });
}

}  // namespace

TEST_CASE("attention forward and backward read and write only within their operands") {
  for (const kernels::AttnGeom& g : {kernels::AttnGeom{16, 4, 16}, kernels::AttnGeom{16, 1, 32},
                                     kernels::AttnGeom{4, 2, 8}, kernels::AttnGeom{49, 2, 32}}) {
    attention_within_operands<float>(g);
    attention_within_operands<double>(g);
  }
}

TEST_CASE("batch norm (+ GELU) forward and backward read and write only within their operands") {
  for (const kernels::BnGeom& g : {kernels::BnGeom{3, 5, 16}, kernels::BnGeom{2, 3, 7}, kernels::BnGeom{4, 2, 33}}) {
    batch_norm_within_operands<float>(g);
    batch_norm_within_operands<double>(g);
  }
}

TEST_CASE("layer norm forward and backward read and write only within their operands") {
  for (const kernels::LnGeom& g : {kernels::LnGeom{37, 32}, kernels::LnGeom{5, 7}, kernels::LnGeom{300, 64}}) {
    layer_norm_within_operands<float>(g);
    layer_norm_within_operands<double>(g);
  }
}

TEST_CASE("depthwise convolution kernels read and write only within their operands") {
  depthwise_within_operands<float>(5, 8, 8, 3, 1, 1);   // MaxViT's, stride 1 (the split path)
  depthwise_within_operands<float>(5, 8, 8, 3, 2, 1);   // and stride 2
  depthwise_within_operands<double>(3, 4, 4, 3, 2, 1);  //
  depthwise_within_operands<float>(3, 7, 7, 5, 2, 2);   // the phase-plane path
  depthwise_within_operands<double>(2, 6, 9, 3, 1, 0);
}

#else
TEST_CASE("guard-page checks need Linux (mmap, mprotect)") { MESSAGE("skipped: not Linux"); }
#endif
