// A tiny deterministic RNG for the data pipeline. Every random choice is drawn from a stream keyed by
// (seed, epoch, sample index), never from a shared generator, so the batches do not depend on the thread
// count or on the order workers finish, and a run resumed at epoch e, batch b sees exactly the same data.
#pragma once

#include <cstdint>

namespace mg::data {

// SplitMix64 (Steele, Lea, Flood 2014; the seeder of xoshiro): one add and a 64-bit finaliser per draw.
// Statistically good enough for shuffling and augmentation, and trivially reproducible in any language.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n), n > 0, without modulo bias: draws below 2^64 mod n are rejected.
  uint64_t below(uint64_t n) {
    const uint64_t reject_under = (0 - n) % n;  // == 2^64 mod n
    for (;;) {
      const uint64_t r = next();
      if (r >= reject_under) return r % n;
    }
  }

  // Uniform in [0, 1) from the top 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// Key for the stream of one (seed, a, b), e.g. (seed, epoch, index). Each part goes through a full SplitMix64
// step so nearby keys (index 7 vs 8) give unrelated streams.
inline uint64_t stream_key(uint64_t seed, uint64_t a, uint64_t b = 0) {
  uint64_t k = SplitMix64(seed).next();
  k = SplitMix64(k ^ a).next();
  return SplitMix64(k ^ b).next();
}

// Each transform with random choices of its own draws from its own streams, stream_key(seed ^ salt, epoch,
// index), never from the crop-and-flip stream: switching one on leaves every other draw as it was (random
// erasing on, the crops are those of a run without it). Each salt spells its name in ASCII.
constexpr uint64_t kAutoAugmentSalt = 0x6175746F61756721ull;   // "autoaug!"
constexpr uint64_t kErasingSalt = 0x6572617365626F78ull;       // "erasebox"
constexpr uint64_t kErasingValueSalt = 0x657261736576616Cull;  // "eraseval"

}  // namespace mg::data
