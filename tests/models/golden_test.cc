// Golden test: the C++ forward of each tiny model in tests/data/goldens/ against the PyTorch
// reference (tests/reference/torch_reference.py): logits at every position and greedy tokens.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/models/llama/llama_model.h"
#include "arle/models/registry.h"
#include "tests/models/sequence_runner.h"

namespace arle::models {
namespace {

namespace fs = std::filesystem;
using testing::SequenceRunner;

const std::string kGoldenDir = std::string(ARLE_TEST_DATA_DIR) + "/goldens";

// Tolerance. The reference computes in float64 from the exact weights; arle accumulates in f32.
// A length-K f32 dot product has a rounding error of at most ~K * 2^-24 of the sum of |terms|
// (sqrt(K) * 2^-24 typically); the largest K here is 172 (the llama MLP), giving <= 1e-5 per
// matmul, and the two layers, norms and softmax compound that by a small factor. 1e-4 of the
// prompt's largest |logit| therefore has ~10x headroom over honest f32 error, while any real
// mistake (a wrong RoPE pair, a missed norm weight, a bad GQA mapping, a bf16 misread) moves
// logits by a sizeable fraction of their scale.
constexpr double kRelTolerance = 1e-4;

struct GoldenPrompt {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [n_tokens, n_vocab]
  std::vector<int32_t> greedy;
  double max_abs_logit = 0;
};

struct Golden {
  std::string name;
  std::string model_dir;
  int64_t n_vocab = 0;
  std::vector<GoldenPrompt> prompts;
};

std::vector<std::string> GoldenNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kGoldenDir, ec)) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

Golden LoadGolden(const std::string& name) {
  Golden g;
  g.name = name;
  auto meta_text = core::ReadFile(kGoldenDir + "/" + name + ".json");
  EXPECT_TRUE(meta_text.ok()) << meta_text.status().ToString();
  if (!meta_text.ok()) return g;
  const auto meta = nlohmann::json::parse(*meta_text);
  g.model_dir = kGoldenDir + "/" + meta["model_dir"].get<std::string>();
  g.n_vocab = meta["n_vocab"];
  auto blob = core::ReadFile(kGoldenDir + "/" + meta["logits_file"].get<std::string>());
  EXPECT_TRUE(blob.ok()) << blob.status().ToString();
  if (!blob.ok()) return g;
  for (const auto& p : meta["prompts"]) {
    GoldenPrompt prompt;
    prompt.tokens = p["tokens"].get<std::vector<int32_t>>();
    prompt.greedy = p["greedy"].get<std::vector<int32_t>>();
    prompt.max_abs_logit = p["max_abs_logit"];
    const size_t offset = p["logits_offset"].get<size_t>();
    const size_t count = prompt.tokens.size() * static_cast<size_t>(g.n_vocab);
    EXPECT_LE((offset + count) * sizeof(float), blob->size()) << name;
    if ((offset + count) * sizeof(float) > blob->size()) return g;
    prompt.logits.resize(count);
    std::memcpy(prompt.logits.data(), blob->data() + offset * sizeof(float), count * sizeof(float));
    g.prompts.push_back(std::move(prompt));
  }
  return g;
}

int32_t Argmax(std::span<const float> row) {
  // Lowest id on ties, like the reference (torch.argmax).
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// Compares [n, n_vocab] logits; returns the largest absolute difference.
double CompareLogits(std::span<const float> got, std::span<const float> want, int64_t n_vocab,
                     double tolerance, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  int reported = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    worst = std::max(worst, std::isnan(diff) ? INFINITY : diff);
    if (!(diff <= tolerance) && reported++ < 5) {
      ADD_FAILURE() << what << ": position " << i / n_vocab << " token " << i % n_vocab
                    << ": got " << got[i] << ", reference " << want[i] << " (tolerance "
                    << tolerance << ")";
    }
  }
  return worst;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST(GoldenSetTest, HasAtLeastThreeModels) {
  // qwen3 untied f32, llama tied f32, qwen3 bf16 (+ llama3 RoPE scaling): see make_goldens.sh.
  EXPECT_GE(GoldenNames().size(), 3u);
}

TEST_P(GoldenTest, LogitsAndGreedyMatchPyTorch) {
  const Golden g = LoadGolden(GetParam());
  ASSERT_FALSE(g.prompts.empty());
  LoadOptions options;
  options.n_threads = 1;  // results do not depend on the pool size (model.h); keeps CI load low
  auto model = models::Load(g.model_dir, options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Model& m = **model;

  for (size_t pi = 0; pi < g.prompts.size(); ++pi) {
    const GoldenPrompt& p = g.prompts[pi];
    const std::string what = g.name + " prompt " + std::to_string(pi);
    // The golden must be able to fail: logits of a real scale.
    ASSERT_GT(p.max_abs_logit, 0.1) << what;
    const double tol = kRelTolerance * p.max_abs_logit;
    const int64_t max_tokens = static_cast<int64_t>(p.tokens.size() + p.greedy.size());

    // 1. Whole-prompt prefill, logits at every position.
    SequenceRunner cache(m, max_tokens);
    std::vector<float> logits;
    core::Status st = cache.Forward(p.tokens, &logits, /*all_logits=*/true);
    ASSERT_TRUE(st.ok()) << st.ToString();
    const double worst = CompareLogits(logits, p.logits, g.n_vocab, tol, what + " prefill");
    char worst_text[32];
    std::snprintf(worst_text, sizeof(worst_text), "%.3g", worst);
    RecordProperty(what + " max_abs_diff", worst_text);

    // 2. Greedy decoding one token at a time through the KV cache.
    ASSERT_EQ(logits.size(), p.tokens.size() * static_cast<size_t>(g.n_vocab));
    std::vector<int32_t> generated;
    std::span<const float> last(logits.data() + logits.size() - g.n_vocab, g.n_vocab);
    for (size_t i = 0; i < p.greedy.size(); ++i) {
      const int32_t next = Argmax(last);
      generated.push_back(next);
      if (i + 1 == p.greedy.size()) break;
      st = cache.Forward(std::span<const int32_t>(&next, 1), &logits, false);
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_EQ(logits.size(), static_cast<size_t>(g.n_vocab));
      last = std::span<const float>(logits.data(), g.n_vocab);
    }
    EXPECT_EQ(generated, p.greedy) << what << " greedy";

    // 3. The prompt fed one token at a time gives the same per-position logits (the KV path).
    if (p.tokens.size() > 1) {
      SequenceRunner step_cache(m, max_tokens);
      std::vector<float> stepped;
      for (int32_t t : p.tokens) {
        st = step_cache.Forward(std::span<const int32_t>(&t, 1), &logits, false);
        ASSERT_TRUE(st.ok()) << st.ToString();
        stepped.insert(stepped.end(), logits.end() - g.n_vocab, logits.end());
      }
      CompareLogits(stepped, p.logits, g.n_vocab, tol, what + " token-by-token");
    }
  }
}

// The same weights as GGUF (`arle model init --format gguf`, same seed) give identical logits.
TEST_P(GoldenTest, GgufMatchesSafetensors) {
  const Golden g = LoadGolden(GetParam());
  const std::string gguf = g.model_dir + "/model.gguf";
  if (!core::FileExists(gguf)) GTEST_SKIP() << "no " << gguf << " (make_goldens.sh writes it)";
  LoadOptions options;
  options.n_threads = 1;
  auto st_model = models::Load(g.model_dir, options);
  ASSERT_TRUE(st_model.ok()) << st_model.status().ToString();
  auto gguf_model = models::Load(gguf, options);
  ASSERT_TRUE(gguf_model.ok()) << gguf_model.status().ToString();
  for (const GoldenPrompt& p : g.prompts) {
    SequenceRunner c1(**st_model, static_cast<int64_t>(p.tokens.size()));
    SequenceRunner c2(**gguf_model, static_cast<int64_t>(p.tokens.size()));
    std::vector<float> a, b;
    ASSERT_TRUE(c1.Forward(p.tokens, &a, true).ok());
    ASSERT_TRUE(c2.Forward(p.tokens, &b, true).ok());
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
        << g.name << ": GGUF and safetensors logits differ";
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, GoldenTest, ::testing::ValuesIn(GoldenNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace arle::models
