// PythonRandom: CPython's random.Random bit for bit (MT19937 seeded from an int the way CPython
// seeds it, getrandbits, random(), _randbelow, sample and shuffle), so arle picks the same
// few-shot examples as lm-evaluation-harness, whose sampler is random.Random(seed).sample.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace arle::eval {

// The generator behind `random.Random(seed)` for a non-negative int seed (CPython seeds with
// abs(seed), so a negative seed -s equals s). Matches CPython 3.2 and later, whose seeding,
// getrandbits, random() and _randbelow (getrandbits rejection sampling with k = n.bit_length())
// have not changed since; sample and shuffle follow CPython 3.11's code, the same picks as every
// version from 3.2 on. Not thread-safe: one generator per thread.
class PythonRandom {
 public:
  explicit PythonRandom(uint64_t seed = 0) { Seed(seed); }

  // random.seed(seed): init_by_array over the seed's 32-bit words, least significant first
  // ([0] for seed 0).
  void Seed(uint64_t seed);

  // The next raw 32-bit output of MT19937 (genrand_uint32).
  uint32_t NextUint32();

  // random.getrandbits(k) for 0 <= k <= 64: one 32-bit output per started word, least
  // significant word first, the last word shifted right to keep its k % 32 high bits.
  // REQUIRES: 0 <= k <= 64.
  uint64_t GetRandBits(int k);

  // random.random(): a double in [0, 1) with 53 random bits (two outputs).
  double Random();

  // random._randbelow(n): uniform in [0, n) by rejection over getrandbits(n.bit_length()).
  // CPython returns 0 for n == 0 without drawing; so does this.
  uint64_t RandBelow(uint64_t n);

  // random.sample(range(population), k): k distinct indices in selection order. CPython keeps a
  // pool (list) when population <= 21 (+ 4^ceil(log4(3k)) when k > 5) and a set of picks
  // (redrawing repeats) otherwise; both branches are reproduced since they consume the
  // generator differently. REQUIRES: k <= population.
  std::vector<size_t> Sample(size_t population, size_t k);

  // random.shuffle(x): Fisher-Yates from the end, swapping x[i] with x[_randbelow(i + 1)].
  template <typename T>
  void Shuffle(std::span<T> x) {
    for (size_t i = x.size(); i-- > 1;) {
      const size_t j = static_cast<size_t>(RandBelow(i + 1));
      std::swap(x[i], x[j]);
    }
  }
  template <typename T>
  void Shuffle(std::vector<T>& x) {
    Shuffle(std::span<T>(x));
  }

 private:
  static constexpr int kN = 624;
  std::array<uint32_t, kN> mt_{};
  int mti_ = kN + 1;
};

}  // namespace arle::eval
