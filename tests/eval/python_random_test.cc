// eval/python_random: PythonRandom against CPython's random.Random, from goldens written by
// tests/eval/python_random_goldens.py (raw outputs, getrandbits, random(), _randbelow, both
// branches of sample, chains of samples from one generator, shuffle).
#include "arle/eval/python_random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "arle/core/check.h"
#include "arle/core/file_util.h"

namespace arle::eval {
namespace {

using Json = nlohmann::json;

const Json& Goldens() {
  static const Json* j = [] {
    auto text =
        core::ReadFile(std::string(ARLE_TEST_DATA_DIR) + "/eval/goldens/python_random.json");
    ARLE_CHECK(text.ok()) << text.status().ToString();
    return new Json(Json::parse(*text));
  }();
  return *j;
}

TEST(PythonRandom, GoldensCoverTheHarnessSeed) {
  std::vector<uint64_t> seeds;
  for (const Json& c : Goldens().at("seeds")) seeds.push_back(c.at("seed").get<uint64_t>());
  EXPECT_NE(std::find(seeds.begin(), seeds.end(), 1234u), seeds.end());
  EXPECT_NE(std::find(seeds.begin(), seeds.end(), 0u), seeds.end());
  EXPECT_GE(seeds.size(), 6u);
}

TEST(PythonRandom, RawOutputsMatch) {
  for (const Json& c : Goldens().at("seeds")) {
    const uint64_t seed = c.at("seed").get<uint64_t>();
    SCOPED_TRACE("seed " + std::to_string(seed));
    PythonRandom r(seed);
    const auto want = c.at("uint32").get<std::vector<uint32_t>>();
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(r.NextUint32(), want[i]) << "output " << i;
  }
}

TEST(PythonRandom, GetRandBitsMatches) {
  for (const Json& c : Goldens().at("seeds")) {
    const uint64_t seed = c.at("seed").get<uint64_t>();
    SCOPED_TRACE("seed " + std::to_string(seed));
    PythonRandom r(seed);
    for (const Json& step : c.at("getrandbits")) {
      const int k = step[0].get<int>();
      EXPECT_EQ(r.GetRandBits(k), step[1].get<uint64_t>()) << "k " << k;
    }
  }
}

TEST(PythonRandom, RandomMatchesBitForBit) {
  for (const Json& c : Goldens().at("seeds")) {
    PythonRandom r(c.at("seed").get<uint64_t>());
    for (const Json& v : c.at("random")) {
      const double got = r.Random();
      EXPECT_EQ(got, v.get<double>());  // exact: json round-trips doubles
      EXPECT_GE(got, 0.0);
      EXPECT_LT(got, 1.0);
    }
  }
}

TEST(PythonRandom, RandBelowMatches) {
  for (const Json& c : Goldens().at("seeds")) {
    const uint64_t seed = c.at("seed").get<uint64_t>();
    SCOPED_TRACE("seed " + std::to_string(seed));
    PythonRandom r(seed);
    for (const Json& step : c.at("randbelow")) {
      const uint64_t n = step[0].get<uint64_t>();
      EXPECT_EQ(r.RandBelow(n), step[1].get<uint64_t>()) << "n " << n;
    }
  }
}

TEST(PythonRandom, SampleMatchesBothBranches) {
  int cases = 0;
  for (const Json& c : Goldens().at("seeds")) {
    const uint64_t seed = c.at("seed").get<uint64_t>();
    for (const Json& s : c.at("sample")) {
      const size_t n = s[0].get<size_t>();
      const size_t k = s[1].get<size_t>();
      PythonRandom r(seed);
      EXPECT_EQ(r.Sample(n, k), s[2].get<std::vector<size_t>>())
          << "seed " << seed << " n " << n << " k " << k;
      ++cases;
    }
  }
  EXPECT_GT(cases, 300);
}

TEST(PythonRandom, SuccessiveSamplesFromOneGeneratorMatch) {
  for (const Json& c : Goldens().at("seeds")) {
    const uint64_t seed = c.at("seed").get<uint64_t>();
    PythonRandom r(seed);
    int i = 0;
    for (const Json& s : c.at("sample_chain")) {
      EXPECT_EQ(r.Sample(s[0].get<size_t>(), s[1].get<size_t>()), s[2].get<std::vector<size_t>>())
          << "seed " << seed << " call " << i++;
    }
  }
}

TEST(PythonRandom, ShuffleMatches) {
  for (const Json& c : Goldens().at("seeds")) {
    const uint64_t seed = c.at("seed").get<uint64_t>();
    PythonRandom r(seed);
    for (const Json& want : c.at("shuffle")) {
      std::vector<int> x(want.size());
      std::iota(x.begin(), x.end(), 0);
      r.Shuffle(x);
      EXPECT_EQ(x, want.get<std::vector<int>>()) << "seed " << seed << " n " << x.size();
    }
  }
}

TEST(PythonRandom, ReseedingRestartsTheStream) {
  PythonRandom a(1234);
  const uint32_t first = a.NextUint32();
  a.NextUint32();
  a.Seed(1234);
  EXPECT_EQ(a.NextUint32(), first);
  EXPECT_EQ(a.RandBelow(0), 0u);
  EXPECT_TRUE(a.Sample(7, 0).empty());
}

}  // namespace
}  // namespace arle::eval
