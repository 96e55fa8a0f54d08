#include "maxgrad/core/generator.h"

#include <cmath>

#include "maxgrad/core/error.h"

namespace mg {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void Generator::manual_seed(uint64_t seed) {
  uint64_t x = seed;
  for (auto& v : s_) v = x = splitmix64(x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Generator::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  // One Box-Muller pair per call (the second value is dropped) keeps the state a plain 4 words.
  double u1 = 1.0 - uniform();  // (0, 1]: log(u1) is finite
  double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

int64_t Generator::randint(int64_t n) {
  if (n <= 0) throw Error("Generator::randint: n must be positive");
  uint64_t un = static_cast<uint64_t>(n);
  uint64_t limit = UINT64_MAX - UINT64_MAX % un;  // reject the tail so every value is equally likely
  uint64_t r;
  do r = next_u64();
  while (r >= limit);
  return static_cast<int64_t>(r % un);
}

std::vector<uint64_t> Generator::state() const { return {s_.begin(), s_.end()}; }

void Generator::set_state(const std::vector<uint64_t>& s) {
  if (s.size() != 4) throw Error("Generator::set_state: expected 4 words of state");
  // xoshiro256**'s one forbidden state: from all zeros it draws zeros forever (every mask the same)
  if (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0)
    throw Error("Generator::set_state: an all-zero state is not a state of this generator (it would draw only zeros)");
  for (int i = 0; i < 4; ++i) s_[i] = s[i];
}

}  // namespace mg
