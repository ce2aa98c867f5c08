// Sampler tests: processed logits and truncated distributions against PyTorch goldens, logprobs,
// greedy, seeds and parameter validation. The many-draw chi-square tests are in
// sampler_draw_test.cc (label slow).
#include "arle/runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "sampler_test_util.h"

namespace arle::runtime {
namespace {

using testing::CaseLogits;
using testing::CaseProbs;
using testing::GoldenCase;
using testing::LoadGolden;
using testing::ParamsFromJson;

const nlohmann::json& Golden() {
  static const nlohmann::json golden = LoadGolden();
  return golden;
}

TEST(SamplerTest, GoldenHasAllCases) { EXPECT_GE(Golden()["cases"].size(), 13u); }

// Steps 1-3 (bias, repetition, frequency, presence) match vLLM's apply_penalties in PyTorch.
TEST(SamplerTest, BiasAndPenaltiesMatchReference) {
  for (const auto& c : Golden()["cases"]) {
    if (!c.contains("processed")) continue;
    SCOPED_TRACE(c["name"].get<std::string>());
    Sampler sampler(ParamsFromJson(c["params"]), 0);
    std::vector<float> logits = CaseLogits(c);
    const auto context = c["context"].get<std::vector<int32_t>>();
    sampler.ApplyBiasAndPenalties(logits, context, c["n_prompt"].get<size_t>());
    const auto expected = c["processed"].get<std::vector<float>>();
    ASSERT_EQ(logits.size(), expected.size());
    for (size_t i = 0; i < logits.size(); ++i)
      EXPECT_FLOAT_EQ(logits[i], expected[i]) << "token " << i;
  }
}

// The penalties case really changes the logits (so the comparison above is not vacuous), and
// the prompt counts for repetition but not for presence/frequency.
TEST(SamplerTest, PenaltyDomains) {
  const auto& c = GoldenCase(Golden(), "penalties");
  const auto raw = c["logits"].get<std::vector<float>>();
  const auto processed = c["processed"].get<std::vector<float>>();
  const auto params = ParamsFromJson(c["params"]);
  // Token 40 appears only in the prompt: repetition penalty only.
  const float r = raw[40];
  EXPECT_FLOAT_EQ(processed[40],
                  r > 0 ? r / params.repetition_penalty : r * params.repetition_penalty);
  // Token 12: once in the prompt, three times generated.
  const float r12 =
      raw[12] > 0 ? raw[12] / params.repetition_penalty : raw[12] * params.repetition_penalty;
  EXPECT_NEAR(processed[12], r12 - 3 * params.frequency_penalty - params.presence_penalty, 1e-5);
  // Token 0 is nowhere in the context: untouched.
  EXPECT_EQ(processed[0], raw[0]);
}

// Steps 5-8 (temperature, top-k, top-p, min-p) against HF's warpers in PyTorch, including the
// 151,936-token vocabulary where top-p keeps ~2,000 tokens.
TEST(SamplerTest, DistributionsMatchReference) {
  for (const auto& c : Golden()["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    Sampler sampler(ParamsFromJson(c["params"]), 0);
    std::vector<float> logits = CaseLogits(c);
    const auto context = c["context"].get<std::vector<int32_t>>();
    sampler.ApplyBiasAndPenalties(logits, context, c["n_prompt"].get<size_t>());
    std::vector<Candidate> dist;
    sampler.ComputeDistribution(logits, &dist);
    std::vector<double> got(logits.size(), 0.0);
    double sum = 0.0;
    for (const Candidate& cand : dist) {
      EXPECT_EQ(got[cand.id], 0.0) << "token " << cand.id << " listed twice";
      got[cand.id] = cand.p;
      sum += cand.p;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    const std::vector<double> expected = CaseProbs(c, logits.size());
    int kept = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      EXPECT_EQ(got[i] > 0.0, expected[i] > 0.0) << "token " << i << " kept/excluded differently";
      EXPECT_NEAR(got[i], expected[i], 1e-5 * expected[i] + 1e-9) << "token " << i;
      kept += expected[i] > 0.0;
    }
    EXPECT_EQ(static_cast<int>(dist.size()), kept);
  }
}

// top_k of 0, -1, the vocabulary size or more all mean "off".
TEST(SamplerTest, TopKOffValues) {
  const auto& c = GoldenCase(Golden(), "temperature_1");
  const auto logits = CaseLogits(c);
  const auto expected = CaseProbs(c, logits.size());
  for (int k : {0, -1, 64, 1000}) {
    SamplingParams p;
    p.top_k = k;
    ASSERT_TRUE(p.Validate(64).ok()) << k;
    Sampler sampler(p, 0);
    std::vector<Candidate> dist;
    sampler.ComputeDistribution(logits, &dist);
    ASSERT_EQ(dist.size(), 64u) << k;
    for (const Candidate& cand : dist)
      EXPECT_NEAR(cand.p, expected[cand.id], 1e-5 * expected[cand.id]);
  }
}

// Candidates come out in the documented canonical order.
TEST(SamplerTest, CanonicalOrder) {
  const auto& c = GoldenCase(Golden(), "combined");
  Sampler sampler(ParamsFromJson(c["params"]), 0);
  std::vector<Candidate> dist;
  sampler.ComputeDistribution(CaseLogits(c), &dist);
  ASSERT_GT(dist.size(), 2u);
  for (size_t i = 1; i < dist.size(); ++i) {
    EXPECT_TRUE(dist[i - 1].p > dist[i].p ||
                (dist[i - 1].p == dist[i].p && dist[i - 1].id < dist[i].id));
  }
  SamplingParams plain;
  Sampler untruncated(plain, 0);
  untruncated.ComputeDistribution(CaseLogits(c), &dist);
  for (size_t i = 0; i < dist.size(); ++i) EXPECT_EQ(dist[i].id, static_cast<int32_t>(i));
}

TEST(SamplerTest, GreedyIsArgmaxOfProcessedLogitsLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler sampler(p, 0);
  const std::vector<float> tied = {1.0f, 3.0f, -2.0f, 3.0f, 3.0f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sampler.Sample(tied, {}, 0).id, 1);
  const std::vector<float> last = {1.0f, 2.0f, 7.0f, 3.0f, 7.5f};
  EXPECT_EQ(sampler.Sample(last, {}, 0).id, 4);

  // Greedy sees the penalties: token 4 generated twice loses to token 2.
  p.frequency_penalty = 1.0f;
  Sampler penalised(p, 0);
  const std::vector<int32_t> context = {0, 4, 4};
  EXPECT_EQ(penalised.Sample(last, context, 1).id, 2);
  // ...but a prompt occurrence does not count for frequency.
  EXPECT_EQ(penalised.Sample(last, context, 3).id, 4);

  // A temperature below kGreedyTemperature is greedy too; different seeds agree.
  for (uint64_t seed : {1u, 2u, 3u}) {
    SamplingParams tiny;
    tiny.temperature = 1e-7f;
    tiny.seed = seed;
    Sampler s(tiny, 0);
    EXPECT_EQ(s.Sample(tied, {}, 0).id, 1);
  }
}

std::vector<int32_t> DrawSequence(const SamplingParams& p, uint64_t default_seed,
                                  const std::vector<float>& logits, int n) {
  Sampler sampler(p, default_seed);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(sampler.Sample(logits, {}, 0).id);
  return out;
}

TEST(SamplerTest, SeedsReproduceAndDiffer) {
  const auto logits = CaseLogits(GoldenCase(Golden(), "temperature_1"));
  SamplingParams p;
  p.temperature = 1.5f;
  p.seed = 1234;
  const auto a = DrawSequence(p, 0, logits, 1000);
  EXPECT_EQ(a, DrawSequence(p, 99, logits, 1000));  // the default is ignored when seed is set
  p.seed = 1235;
  const auto b = DrawSequence(p, 0, logits, 1000);
  EXPECT_NE(a, b);
  int same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  EXPECT_LT(same, 500);  // independent streams agree at a rate of sum p^2, far below 1/2 here
  // Unset seed: the default seed decides.
  p.seed.reset();
  EXPECT_EQ(DrawSequence(p, 1234, logits, 1000), a);
  EXPECT_NE(DrawSequence(p, 7, logits, 1000), a);
}

// Interleaving requests (as a batch does) changes nothing for any of them.
TEST(SamplerTest, BatchInvariance) {
  const auto logits = CaseLogits(GoldenCase(Golden(), "temperature_1"));
  SamplingParams p1, p2;
  p1.seed = 5;
  p2.seed = 6;
  p2.top_k = 10;
  const auto alone1 = DrawSequence(p1, 0, logits, 200);
  const auto alone2 = DrawSequence(p2, 0, logits, 200);
  Sampler s1(p1, 0), s2(p2, 0);
  std::vector<int32_t> mixed1, mixed2;
  for (int i = 0; i < 200; ++i) {
    mixed2.push_back(s2.Sample(logits, {}, 0).id);
    mixed1.push_back(s1.Sample(logits, {}, 0).id);
  }
  EXPECT_EQ(mixed1, alone1);
  EXPECT_EQ(mixed2, alone2);
}

TEST(SamplerTest, LogprobsMatchLogSoftmaxInDouble) {
  for (const char* name : {"temperature_0.7", "penalties", "top_k_8"}) {
    const auto& c = GoldenCase(Golden(), name);
    for (LogprobsMode mode : {LogprobsMode::kRaw, LogprobsMode::kProcessed}) {
      SCOPED_TRACE(std::string(name) + (mode == LogprobsMode::kRaw ? " raw" : " processed"));
      SamplingParams p = ParamsFromJson(c["params"]);
      p.logprobs = true;
      p.top_logprobs = 5;
      p.logprobs_mode = mode;
      p.seed = 3;
      const auto reference = c[mode == LogprobsMode::kRaw ? "raw_logprobs" : "processed_logprobs"]
                                 .get<std::vector<double>>();
      std::vector<int> order(reference.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return reference[a] > reference[b]; });
      Sampler sampler(p, 0);
      const auto logits = CaseLogits(c);
      const auto context = c["context"].get<std::vector<int32_t>>();
      for (int draw = 0; draw < 20; ++draw) {
        const SampledToken t = sampler.Sample(logits, context, c["n_prompt"].get<size_t>());
        EXPECT_NEAR(t.logprob, reference[t.id], 2e-6 * std::max(1.0, std::abs(reference[t.id])));
        ASSERT_EQ(t.top_logprobs.size(), 5u);
        for (size_t i = 0; i < 5; ++i) {
          EXPECT_EQ(t.top_logprobs[i].first, order[i]);
          EXPECT_NEAR(t.top_logprobs[i].second, reference[order[i]],
                      2e-6 * std::max(1.0, std::abs(reference[order[i]])));
          if (i > 0) {
            EXPECT_GE(t.top_logprobs[i - 1].second, t.top_logprobs[i].second);
          }
        }
      }
    }
  }
}

TEST(SamplerTest, TopLogprobsTiesByLowerIdAndNoLogprobsByDefault) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_logprobs = 3;
  Sampler sampler(p, 0);
  const std::vector<float> logits = {0.0f, 2.0f, 1.0f, 2.0f, 2.0f};
  const SampledToken t = sampler.Sample(logits, {}, 0);
  ASSERT_EQ(t.top_logprobs.size(), 3u);
  EXPECT_EQ(t.top_logprobs[0].first, 1);
  EXPECT_EQ(t.top_logprobs[1].first, 3);
  EXPECT_EQ(t.top_logprobs[2].first, 4);
  EXPECT_FLOAT_EQ(t.logprob, t.top_logprobs[0].second);

  SamplingParams plain;
  Sampler quiet(plain, 0);
  const SampledToken q = quiet.Sample(logits, {}, 0);
  EXPECT_TRUE(std::isnan(q.logprob));
  EXPECT_TRUE(q.top_logprobs.empty());
}

TEST(SamplerTest, MaskedLogitsAreNeverSampled) {
  SamplingParams p;
  p.temperature = 2.0f;
  p.seed = 11;
  Sampler sampler(p, 0);
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {ninf, 0.0f, ninf, 0.5f, ninf};
  for (int i = 0; i < 2000; ++i) {
    const int32_t id = sampler.Sample(logits, {}, 0).id;
    EXPECT_TRUE(id == 1 || id == 3) << id;
  }
}

// Extreme truncations all collapse to the argmax (lowest id among equal maxima), at any
// temperature, and a one-token vocabulary always yields token 0.
TEST(SamplerTest, ExtremeTruncationsKeepOnlyTheTop) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  auto with = [](auto edit) {
    SamplingParams p;
    p.temperature = 1.7f;
    edit(p);
    return p;
  };
  for (const SamplingParams& p :
       {with([](SamplingParams& p) { p.top_k = 1; }),
        with([](SamplingParams& p) { p.top_p = 1e-6f; }), with([](SamplingParams& p) {
          p.top_k = 3;
          p.top_p = 1e-6f;
        })}) {
    Sampler sampler(p, 9);
    for (int i = 0; i < 200; ++i) EXPECT_EQ(sampler.Sample(logits, {}, 0).id, 1);
  }
  // min_p = 1 keeps every token tied at the maximum probability, and only those.
  Sampler tied(with([](SamplingParams& p) { p.min_p = 1.0f; }), 9);
  int ones = 0;
  for (int i = 0; i < 2000; ++i) {
    const int32_t id = tied.Sample(logits, {}, 0).id;
    ASSERT_TRUE(id == 1 || id == 3) << id;
    ones += id == 1;
  }
  EXPECT_GT(ones, 850);  // Binomial(2000, 1/2): 850..1150 is beyond 6 sigma
  EXPECT_LT(ones, 1150);
  Sampler single(SamplingParams(), 1);
  const std::vector<float> one = {-3.0f};
  EXPECT_EQ(single.Sample(one, {}, 0).id, 0);
}

TEST(SamplerDeathTest, NanLogitIsABug) {
  const std::vector<float> logits = {0.0f, NAN, 1.0f};
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  Sampler g(greedy, 0);
  EXPECT_DEATH(g.Sample(logits, {}, 0), "NaN logit");
  Sampler s(SamplingParams(), 0);
  EXPECT_DEATH(s.Sample(logits, {}, 0), "NaN logit");
}

void ExpectInvalid(const SamplingParams& p, const std::string& field) {
  const core::Status s = p.Validate(100);
  ASSERT_FALSE(s.ok()) << field;
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.field(), field) << s.message();
  EXPECT_EQ(s.message().rfind(field, 0), 0u) << s.message();
}

TEST(SamplerTest, Validate) {
  EXPECT_TRUE(SamplingParams().Validate(100).ok());
  SamplingParams ok;
  ok.temperature = 0.0f;
  ok.top_k = -1;
  ok.top_p = 1.0f;
  ok.min_p = 1.0f;
  ok.presence_penalty = -2.0f;
  ok.frequency_penalty = 2.0f;
  ok.logit_bias = {{0, -100.0f}, {99, 100.0f}};
  ok.top_logprobs = 20;
  EXPECT_TRUE(ok.Validate(100).ok()) << ok.Validate(100).ToString();

  auto with = [](auto edit) {
    SamplingParams p;
    edit(p);
    return p;
  };
  ExpectInvalid(with([](SamplingParams& p) { p.temperature = -0.1f; }), "temperature");
  ExpectInvalid(with([](SamplingParams& p) { p.temperature = NAN; }), "temperature");
  ExpectInvalid(with([](SamplingParams& p) { p.top_k = -2; }), "top_k");
  ExpectInvalid(with([](SamplingParams& p) { p.top_p = 0.0f; }), "top_p");
  ExpectInvalid(with([](SamplingParams& p) { p.top_p = 1.01f; }), "top_p");
  ExpectInvalid(with([](SamplingParams& p) { p.min_p = -0.01f; }), "min_p");
  ExpectInvalid(with([](SamplingParams& p) { p.min_p = 1.5f; }), "min_p");
  ExpectInvalid(with([](SamplingParams& p) { p.repetition_penalty = 0.0f; }), "repetition_penalty");
  ExpectInvalid(with([](SamplingParams& p) { p.presence_penalty = 2.5f; }), "presence_penalty");
  ExpectInvalid(with([](SamplingParams& p) { p.frequency_penalty = -2.5f; }), "frequency_penalty");
  ExpectInvalid(with([](SamplingParams& p) { p.logit_bias = {{100, 1.0f}}; }), "logit_bias");
  ExpectInvalid(with([](SamplingParams& p) { p.logit_bias = {{-1, 1.0f}}; }), "logit_bias");
  ExpectInvalid(with([](SamplingParams& p) { p.logit_bias = {{3, 100.5f}}; }), "logit_bias");
  ExpectInvalid(with([](SamplingParams& p) { p.top_logprobs = 21; }), "top_logprobs");
  ExpectInvalid(with([](SamplingParams& p) { p.top_logprobs = -1; }), "top_logprobs");
}

}  // namespace
}  // namespace arle::runtime
