// A seedable random generator (xoshiro256**, seeded by splitmix64). Explicit, never global, so a
// run is reproducible from its seeds and its state can be saved in a checkpoint and restored.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace mg {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed);

  uint64_t next_u64();
  double uniform();            // [0, 1) with 53 random bits
  double normal();             // standard normal, Box-Muller
  int64_t randint(int64_t n);  // [0, n), unbiased

  // Whole state as plain numbers, for checkpoints.
  std::vector<uint64_t> state() const;
  void set_state(const std::vector<uint64_t>& s);

 private:
  std::array<uint64_t, 4> s_{};
};

// splitmix64: turns any seed (or a seed mixed with indices) into well-spread 64 bits.
uint64_t splitmix64(uint64_t x);

}  // namespace mg
