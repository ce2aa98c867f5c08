// Sampler draw tests (label slow): 200,000 seeded draws per case fitted by chi-square (p = 1e-4)
// against the exact PyTorch distributions, excluded tokens never drawn, logit bias +-100.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "arle/runtime/sampler.h"
#include "sampler_test_util.h"

namespace arle::runtime {
namespace {

using testing::CaseLogits;
using testing::CaseProbs;
using testing::ExpectFitsDistribution;
using testing::GoldenCase;
using testing::LoadGolden;
using testing::ParamsFromJson;

const nlohmann::json& Golden() {
  static const nlohmann::json golden = LoadGolden();
  return golden;
}

std::vector<int64_t> Draw(const nlohmann::json& c, uint64_t seed, int n) {
  SamplingParams p = ParamsFromJson(c["params"]);
  p.seed = seed;
  Sampler sampler(p, 0);
  const std::vector<float> logits = CaseLogits(c);
  const auto context = c["context"].get<std::vector<int32_t>>();
  const size_t n_prompt = c["n_prompt"].get<size_t>();
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) ++counts[sampler.Sample(logits, context, n_prompt).id];
  return counts;
}

class DrawTest : public ::testing::TestWithParam<const char*> {};

TEST_P(DrawTest, FitsReferenceDistribution) {
  const auto& c = GoldenCase(Golden(), GetParam());
  const bool large = c.contains("large_vocab");
  // Large-vocabulary draws copy and scan 151,936 logits each, so fewer of them.
  const int n = large ? (c["name"] == "large_top_p" ? 1000 : 4000) : 200000;
  const auto counts = Draw(c, 20251125, n);
  ExpectFitsDistribution(counts, CaseProbs(c, counts.size()), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Golden, DrawTest,
                         ::testing::Values("temperature_1", "temperature_0.7", "temperature_1.5",
                                           "top_k_8", "top_p_0.6", "min_p_0.05", "combined",
                                           "penalties", "negative_penalties", "large_combined",
                                           "large_top_p"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& ch : name) {
                             if (ch == '.') ch = '_';
                           }
                           return name;
                         });

TEST(DrawTest, LogitBiasMinus100NeverSampledPlus100Always) {
  const auto& minus = GoldenCase(Golden(), "bias_minus_100");
  const int32_t banned = minus["params"]["logit_bias"][0][0].get<int32_t>();
  const auto counts = Draw(minus, 1, 200000);
  EXPECT_EQ(counts[banned], 0);
  ExpectFitsDistribution(counts, CaseProbs(minus, counts.size()), "bias_minus_100");

  const auto& plus = GoldenCase(Golden(), "bias_plus_100");
  const int32_t forced = plus["params"]["logit_bias"][0][0].get<int32_t>();
  EXPECT_EQ(Draw(plus, 2, 200000)[forced], 200000);
}

// A different seed gives a different, equally valid sample.
TEST(DrawTest, AnotherSeedAlsoFits) {
  const auto& c = GoldenCase(Golden(), "combined");
  const auto a = Draw(c, 1, 200000);
  const auto b = Draw(c, 2, 200000);
  EXPECT_NE(a, b);
  ExpectFitsDistribution(b, CaseProbs(c, b.size()), "combined seed 2");
}

}  // namespace
}  // namespace arle::runtime
