// Shared helpers for the sampler tests: the PyTorch golden file (tests/runtime/golden/, written by
// gen_sampler_golden.py), parameter parsing, and a chi-square goodness-of-fit check.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arle/runtime/sampler.h"

namespace arle::runtime::testing {

inline nlohmann::json LoadGolden() {
  const std::string path =
      std::string(ARLE_SOURCE_DIR) + "/tests/runtime/golden/sampler_golden.json";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return nlohmann::json::parse(in);
}

inline const nlohmann::json& GoldenCase(const nlohmann::json& golden, const std::string& name) {
  for (const auto& c : golden["cases"]) {
    if (c["name"] == name) return c;
  }
  ADD_FAILURE() << "no golden case " << name;
  return golden["cases"][0];
}

inline SamplingParams ParamsFromJson(const nlohmann::json& j) {
  SamplingParams p;
  p.temperature = j.value("temperature", 1.0f);
  p.top_k = j.value("top_k", 0);
  p.top_p = j.value("top_p", 1.0f);
  p.min_p = j.value("min_p", 0.0f);
  p.repetition_penalty = j.value("repetition_penalty", 1.0f);
  p.presence_penalty = j.value("presence_penalty", 0.0f);
  p.frequency_penalty = j.value("frequency_penalty", 0.0f);
  if (j.contains("logit_bias")) {
    for (const auto& e : j["logit_bias"])
      p.logit_bias.emplace_back(e[0].get<int32_t>(), e[1].get<float>());
  }
  return p;
}

// The golden script's large_logits(): hash-spread values in [-8, 8), bit-identical to PyTorch's.
inline std::vector<float> LargeLogits(int64_t n_vocab) {
  std::vector<float> logits(n_vocab);
  for (int64_t i = 0; i < n_vocab; ++i) {
    const uint64_t h = (static_cast<uint64_t>(i) * 2654435761ull) % (1ull << 32);
    logits[i] = static_cast<float>(static_cast<double>(h) / static_cast<double>(1ull << 28) - 8.0);
  }
  return logits;
}

// Logits of a golden case: the stored small vector or the regenerated large one.
inline std::vector<float> CaseLogits(const nlohmann::json& c) {
  if (c.contains("large_vocab")) return LargeLogits(c["large_vocab"].get<int64_t>());
  return c["logits"].get<std::vector<float>>();
}

// Dense reference probabilities of a golden case.
inline std::vector<double> CaseProbs(const nlohmann::json& c, size_t n_vocab) {
  if (c.contains("probs")) return c["probs"].get<std::vector<double>>();
  std::vector<double> probs(n_vocab, 0.0);
  const auto ids = c["kept_ids"].get<std::vector<int64_t>>();
  const auto ps = c["kept_probs"].get<std::vector<double>>();
  for (size_t i = 0; i < ids.size(); ++i) probs[ids[i]] = ps[i];
  return probs;
}

// Upper-tail standard normal quantile: z with P(Z > z) = alpha, by bisection on erfc.
inline double NormalUpperQuantile(double alpha) {
  double lo = 0.0, hi = 40.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(mid / std::sqrt(2.0)) > alpha ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// Chi-square critical value for `df` degrees of freedom at upper-tail probability alpha
// (Wilson-Hilferty cube-root normal approximation; accurate to ~1% for df >= 3).
inline double ChiSquareCritical(int df, double alpha) {
  const double z = NormalUpperQuantile(alpha);
  const double a = 2.0 / (9.0 * df);
  const double c = 1.0 - a + z * std::sqrt(a);
  return df * c * c * c;
}

// Goodness of fit of `counts` (n draws) to `probs`. Tokens with probability 0 must never be
// drawn. Bins with expected count < 5 are pooled into one bin. Fails at p = 1e-4.
inline void ExpectFitsDistribution(const std::vector<int64_t>& counts,
                                   const std::vector<double>& probs, const std::string& what) {
  ASSERT_EQ(counts.size(), probs.size());
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  double stat = 0.0;
  int bins = 0;
  double pooled_expected = 0.0;
  int64_t pooled_observed = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << what << ": excluded token " << i << " was drawn";
      continue;
    }
    const double expected = probs[i] * static_cast<double>(n);
    if (expected < 5.0) {
      pooled_expected += expected;
      pooled_observed += counts[i];
      continue;
    }
    const double d = static_cast<double>(counts[i]) - expected;
    stat += d * d / expected;
    ++bins;
  }
  if (pooled_expected >= 5.0) {
    const double d = static_cast<double>(pooled_observed) - pooled_expected;
    stat += d * d / pooled_expected;
    ++bins;
  } else {
    // Too rare to test as a bin; still bound it loosely (Poisson mean < 5: > 25 is p < 1e-10).
    EXPECT_LE(pooled_observed, 25) << what << ": rare tokens drawn far too often";
  }
  if (bins < 2) return;  // a single bin has no degree of freedom
  const int df = bins - 1;
  const double critical = ChiSquareCritical(df, 1e-4);
  EXPECT_LT(stat, critical) << what << ": chi-square " << stat << " with " << df
                            << " degrees of freedom (critical " << critical << " at p=1e-4)";
}

}  // namespace arle::runtime::testing
