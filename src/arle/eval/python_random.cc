// CPython's random.Random (see python_random.h): Modules/_randommodule.c for the generator and
// its seeding, Lib/random.py for _randbelow, sample and shuffle.
#include "arle/eval/python_random.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <unordered_set>

#include "arle/core/check.h"

namespace arle::eval {
namespace {

constexpr uint32_t kMatrixA = 0x9908b0dfU;
constexpr uint32_t kUpperMask = 0x80000000U;
constexpr uint32_t kLowerMask = 0x7fffffffU;

}  // namespace

void PythonRandom::Seed(uint64_t seed) {
  // CPython converts abs(seed) to little-endian 32-bit words and drops the high zero words, but
  // keeps at least one word, so 0 seeds with the key [0].
  std::vector<uint32_t> key;
  key.push_back(static_cast<uint32_t>(seed));
  if ((seed >> 32) != 0) key.push_back(static_cast<uint32_t>(seed >> 32));

  // init_genrand(19650218)
  mt_[0] = 19650218U;
  for (int i = 1; i < kN; ++i) {
    mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
  mti_ = kN;

  // init_by_array(key)
  const size_t key_length = key.size();
  int i = 1;
  size_t j = 0;
  for (size_t k = std::max<size_t>(kN, key_length); k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] +
             static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
    if (j >= key_length) j = 0;
  }
  for (int k = kN - 1; k > 0; --k) {
    mt_[i] =
        (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000U;  // MSB is 1, assuring a non-zero initial array
}

uint32_t PythonRandom::NextUint32() {
  if (mti_ >= kN) {
    int kk = 0;
    for (; kk < kN - 397; ++kk) {
      const uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + 397] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    }
    for (; kk < kN - 1; ++kk) {
      const uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + (397 - kN)] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    }
    const uint32_t y = (mt_[kN - 1] & kUpperMask) | (mt_[0] & kLowerMask);
    mt_[kN - 1] = mt_[396] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    mti_ = 0;
  }
  uint32_t y = mt_[mti_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

uint64_t PythonRandom::GetRandBits(int k) {
  ARLE_CHECK(k >= 0 && k <= 64) << "GetRandBits(" << k << "): k must be in [0, 64]";
  if (k == 0) return 0;
  if (k <= 32) return NextUint32() >> (32 - k);
  // Words are filled least significant first; the last one keeps its top k - 32 bits.
  const uint64_t low = NextUint32();
  const uint64_t high = NextUint32() >> (64 - k);
  return low | (high << 32);
}

double PythonRandom::Random() {
  const uint32_t a = NextUint32() >> 5;
  const uint32_t b = NextUint32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

uint64_t PythonRandom::RandBelow(uint64_t n) {
  if (n == 0) return 0;
  // k = n.bit_length(), not (n - 1).bit_length(): a power of two n draws one bit more than it
  // needs and rejects about half of the draws, which is what CPython does.
  const int k = std::bit_width(n);
  uint64_t r = GetRandBits(k);
  while (r >= n) r = GetRandBits(k);
  return r;
}

std::vector<size_t> PythonRandom::Sample(size_t population, size_t k) {
  ARLE_CHECK(k <= population) << "Sample: k " << k << " > population " << population;
  const size_t n = population;
  std::vector<size_t> result(k);
  size_t setsize = 21;  // size of a small set minus size of an empty list
  if (k > 5) {
    // 4 ** ceil(log(k * 3, 4)); CPython's math.log(x, 4) is log(x) / log(4) in doubles.
    const double exponent = std::ceil(std::log(static_cast<double>(k * 3)) / std::log(4.0));
    setsize += size_t{1} << (2 * static_cast<int>(exponent));
  }
  if (n <= setsize) {
    std::vector<size_t> pool(n);
    for (size_t i = 0; i < n; ++i) pool[i] = i;
    for (size_t i = 0; i < k; ++i) {
      const size_t j = static_cast<size_t>(RandBelow(n - i));
      result[i] = pool[j];
      pool[j] = pool[n - i - 1];  // move the non-selected item into the vacancy
    }
  } else {
    std::unordered_set<size_t> selected;
    for (size_t i = 0; i < k; ++i) {
      size_t j = static_cast<size_t>(RandBelow(n));
      while (selected.count(j) != 0) j = static_cast<size_t>(RandBelow(n));
      selected.insert(j);
      result[i] = j;
    }
  }
  return result;
}

}  // namespace arle::eval
