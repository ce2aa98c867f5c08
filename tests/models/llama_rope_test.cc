// RoPE frequencies against torch values (tests/models/gen_rope_freqs.py, which follows
// transformers' rope init functions): default, linear, llama3, yarn.
#include "arle/models/llama/llama_rope.h"

#include <cmath>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "arle/core/file_util.h"

namespace arle::models::llama {
namespace {

TEST(RopeFreqsTest, MatchesTorchReference) {
  auto text = core::ReadFile(std::string(ARLE_TEST_DATA_DIR) + "/models/rope_freqs.json");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const nlohmann::json golden = nlohmann::json::parse(*text);
  ASSERT_GE(golden["cases"].size(), 6u);
  for (const auto& cs : golden["cases"]) {
    SCOPED_TRACE(cs["name"].get<std::string>());
    const auto& cfg = cs["config"];
    LlamaConfig c;
    c.head_dim = cfg["head_dim"];
    c.rope_theta = cfg["theta"];
    c.n_ctx_train = 131072;
    const std::string type = cfg["type"];
    auto& rs = c.rope_scaling;
    if (type == "linear") rs.type = RopeScaling::Type::kLinear;
    if (type == "llama3") rs.type = RopeScaling::Type::kLlama3;
    if (type == "yarn") rs.type = RopeScaling::Type::kYarn;
    if (cfg.contains("factor")) rs.factor = cfg["factor"];
    if (cfg.contains("low_freq_factor")) rs.low_freq_factor = cfg["low_freq_factor"];
    if (cfg.contains("high_freq_factor")) rs.high_freq_factor = cfg["high_freq_factor"];
    if (cfg.contains("original_max")) rs.original_max_position_embeddings = cfg["original_max"];
    auto got = ComputeRopeFrequencies(c);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const auto& want = cs["inv_freq"];
    ASSERT_EQ(got->inv_freq.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const double w = want[i];
      // Both sides are f32 evaluations of the same formulas; pow and the llama3 blend may round
      // differently by a few ulp (2^-23 relative each).
      EXPECT_NEAR(got->inv_freq[i], w, 8 * 0x1.0p-23 * std::fabs(w)) << "i=" << i;
    }
    EXPECT_NEAR(got->attention_scaling, cs["attention_scaling"].get<double>(), 1e-6);
  }
}

TEST(RopeFreqsTest, RejectsBadParameters) {
  LlamaConfig c;
  c.head_dim = 15;
  EXPECT_FALSE(ComputeRopeFrequencies(c).ok());
  c.head_dim = 16;
  c.rope_theta = 0;
  EXPECT_FALSE(ComputeRopeFrequencies(c).ok());
  c.rope_theta = 10000;
  c.rope_scaling.type = RopeScaling::Type::kLlama3;
  c.rope_scaling.factor = 8;
  c.rope_scaling.low_freq_factor = 4;
  c.rope_scaling.high_freq_factor = 1;
  c.rope_scaling.original_max_position_embeddings = 8192;
  EXPECT_FALSE(ComputeRopeFrequencies(c).ok());
}

}  // namespace
}  // namespace arle::models::llama
