// Prompt scoring through the engine (EngineRequest::prompt_logprobs) on a tiny random Qwen3: the
// log-probs equal the log_softmax of the model's own logits rows for the whole prompt (a plain
// forward with every row's logits, tests/models/sequence_runner.h), bit for bit, whether the
// request runs alone, chunked, batched with others or after a shared prefix was cached; the
// cache never serves a block whose logits are asked for; max_tokens 0 scores only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "arle/core/random.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/sampler.h"
#include "engine_test_util.h"
#include "tests/models/sequence_runner.h"
#include "tests/models/tiny_model.h"

namespace arle::runtime {
namespace {

using testing::Collector;
using testing::TestTokenizer;

class EnginePromptLogprobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = models::testing::TinyConfig(models::llama::Architecture::kQwen3);
    weights_ = models::testing::TinyModelWeights(config_, core::DType::kBF16, 7);
    models::LoadOptions opts;
    opts.n_threads = 2;
    auto m = models::testing::BuildTiny(config_, weights_, opts);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = std::move(*m);
  }

  std::unique_ptr<Engine> NewEngine(int64_t max_batch_tokens = 256) {
    EngineOptions o;
    o.kv_cache_bytes = 16LL << 20;
    o.max_batch_tokens = max_batch_tokens;
    o.max_seqs = static_cast<int>(std::min<int64_t>(8, max_batch_tokens));
    auto e = Engine::Create(*model_, TestTokenizer(), o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(*e);
  }

  std::vector<int32_t> Prompt(uint64_t seed, int len) const {
    core::Rng rng(seed);
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i)
      p.push_back(static_cast<int32_t>(rng.NextU64() % config_.n_vocab));
    return p;
  }

  static EngineRequest Scoring(std::vector<int32_t> prompt, int64_t from, int top = 2) {
    EngineRequest r;
    r.prompt_tokens = std::move(prompt);
    r.stop.max_tokens = 0;
    r.prompt_logprobs = PromptLogprobsParams{.from = from, .top_logprobs = top, .on_logits = {}};
    return r;
  }

  // The reference: one forward of the whole prompt with every row's logits.
  std::vector<PromptTokenLogprob> Reference(const std::vector<int32_t>& prompt, int64_t from,
                                            int top, std::vector<float>* rows = nullptr) {
    models::testing::SequenceRunner runner(*model_, 256);
    std::vector<float> logits;
    EXPECT_TRUE(runner.Forward(prompt, &logits, /*all_logits=*/true).ok());
    const size_t v = static_cast<size_t>(config_.n_vocab);
    std::vector<PromptTokenLogprob> out;
    for (int64_t p = from; p < static_cast<int64_t>(prompt.size()); ++p) {
      const std::span<const float> row(logits.data() + (p - 1) * v, v);
      const SampledToken t = RawTokenLogprobs(row, prompt[p], top);
      PromptTokenLogprob e;
      e.id = prompt[p];
      e.logprob = t.logprob;
      e.top_logprobs = t.top_logprobs;
      e.is_argmax = RawTokenLogprobs(row, prompt[p], 1).top_logprobs[0].first == prompt[p];
      out.push_back(e);
    }
    if (rows != nullptr) rows->assign(logits.begin() + (from - 1) * v, logits.end() - v);
    return out;
  }

  static void ExpectSame(const std::vector<PromptTokenLogprob>& got,
                         const std::vector<PromptTokenLogprob>& want, const char* what) {
    SCOPED_TRACE(what);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].id, want[i].id) << i;
      EXPECT_EQ(0, std::memcmp(&got[i].logprob, &want[i].logprob, sizeof(float)))
          << "token " << i << ": " << got[i].logprob << " vs " << want[i].logprob;
      EXPECT_EQ(got[i].is_argmax, want[i].is_argmax) << i;
      ASSERT_EQ(got[i].top_logprobs.size(), want[i].top_logprobs.size()) << i;
      for (size_t k = 0; k < got[i].top_logprobs.size(); ++k) {
        EXPECT_EQ(got[i].top_logprobs[k].first, want[i].top_logprobs[k].first);
        EXPECT_EQ(0, std::memcmp(&got[i].top_logprobs[k].second, &want[i].top_logprobs[k].second,
                                 sizeof(float)));
      }
    }
  }

  models::llama::LlamaConfig config_;
  std::shared_ptr<models::testing::TinyWeights> weights_;
  std::unique_ptr<models::Model> model_;
};

TEST_F(EnginePromptLogprobsTest, ScoresEqualTheModelsOwnLogitsAloneChunkedAndBatched) {
  const std::vector<int32_t> prompt = Prompt(3, 53);
  const auto want = Reference(prompt, 1, 2);
  for (const int64_t batch : {256, 16, 7}) {  // whole, block-sized and odd chunks
    auto engine = NewEngine(batch);
    Collector c;
    ASSERT_TRUE(engine->Submit(Scoring(prompt, 1), c.Callback()).ok());
    // Others in flight at the same time: a generating request and another scoring one.
    Collector other, other_scoring;
    EngineRequest gen;
    gen.prompt_tokens = Prompt(9, 30);
    gen.sampling.temperature = 0;
    gen.stop.max_tokens = 5;
    gen.stop.ignore_eos = true;
    ASSERT_TRUE(engine->Submit(gen, other.Callback()).ok());
    ASSERT_TRUE(engine->Submit(Scoring(Prompt(4, 40), 5), other_scoring.Callback()).ok());
    ASSERT_TRUE(c.Wait() && other.Wait() && other_scoring.Wait());
    const testing::Collected got = c.result();
    EXPECT_EQ(got.samples[0].finish, FinishReason::kLength);
    EXPECT_TRUE(got.samples[0].tokens.empty());
    EXPECT_EQ(got.samples[0].n_events, 1);
    EXPECT_EQ(got.n_events_with_prompt_logprobs, 1);
    ExpectSame(got.prompt_logprobs, want, batch == 256 ? "whole" : batch == 16 ? "16" : "7");
    EXPECT_EQ(other.result().samples[0].tokens.size(), 5u);
    EXPECT_EQ(other_scoring.result().prompt_logprobs.size(), 35u);
  }
}

TEST_F(EnginePromptLogprobsTest, SharedContextComesFromTheCacheButScoredRowsAreComputed) {
  // A 40-token context then two different continuations: the second request finds the first's
  // context blocks in the cache (two full blocks), but only those before its first scored row.
  const std::vector<int32_t> context = Prompt(21, 40);
  std::vector<int32_t> a = context, b = context;
  for (int32_t t : Prompt(22, 9)) a.push_back(t);
  for (int32_t t : Prompt(23, 12)) b.push_back(t);
  auto engine = NewEngine();
  Collector ca, cb, cc;
  ASSERT_TRUE(engine->Submit(Scoring(a, 40), ca.Callback()).ok());
  ASSERT_TRUE(ca.Wait());
  ASSERT_TRUE(engine->Submit(Scoring(b, 40), cb.Callback()).ok());
  ASSERT_TRUE(cb.Wait());
  EXPECT_EQ(cb.result().samples[0].n_cached_prompt, 32);  // blocks before position 39
  ExpectSame(ca.result().prompt_logprobs, Reference(a, 40, 2), "first");
  ExpectSame(cb.result().prompt_logprobs, Reference(b, 40, 2), "second, cached context");
  // Scoring the whole of `b` again: the cache holds all of it, yet every row is computed.
  ASSERT_TRUE(engine->Submit(Scoring(b, 1), cc.Callback()).ok());
  ASSERT_TRUE(cc.Wait());
  EXPECT_EQ(cc.result().samples[0].n_cached_prompt, 0);
  ExpectSame(cc.result().prompt_logprobs, Reference(b, 1, 2), "whole prompt after caching");
}

TEST_F(EnginePromptLogprobsTest, LogitsCallbackSeesEveryScoredRowOnceInOrder) {
  const std::vector<int32_t> prompt = Prompt(31, 45);
  std::vector<float> want_rows;
  Reference(prompt, 10, 0, &want_rows);
  auto engine = NewEngine(16);
  std::vector<int64_t> positions;
  std::vector<float> rows;
  EngineRequest r = Scoring(prompt, 10, 0);
  r.prompt_logprobs->on_logits = [&](int64_t position, std::span<const float> logits) {
    positions.push_back(position);
    rows.insert(rows.end(), logits.begin(), logits.end());
  };
  Collector c;
  ASSERT_TRUE(engine->Submit(r, c.Callback()).ok());
  ASSERT_TRUE(c.Wait());
  ASSERT_EQ(positions.size(), 35u);
  for (size_t i = 0; i < positions.size(); ++i) EXPECT_EQ(positions[i], 10 + int64_t(i));
  ASSERT_EQ(rows.size(), want_rows.size());
  EXPECT_EQ(0, std::memcmp(rows.data(), want_rows.data(), rows.size() * sizeof(float)));
  EXPECT_TRUE(c.result().prompt_logprobs[0].top_logprobs.empty());
}

TEST_F(EnginePromptLogprobsTest, ScoringWithGenerationKeepsTheSampledTokens) {
  // echo + logprobs with max_tokens > 0: the prompt's scores come with the first sampled token,
  // and the generated tokens are those of the same request without scoring.
  const std::vector<int32_t> prompt = Prompt(41, 20);
  EngineRequest plain;
  plain.prompt_tokens = prompt;
  plain.sampling.temperature = 0;
  plain.stop.max_tokens = 6;
  plain.stop.ignore_eos = true;
  EngineRequest scored = plain;
  scored.prompt_logprobs = PromptLogprobsParams{.from = 1, .top_logprobs = 1, .on_logits = {}};
  auto engine = NewEngine(8);
  Collector cp, cs;
  ASSERT_TRUE(engine->Submit(plain, cp.Callback()).ok());
  ASSERT_TRUE(cp.Wait());
  ASSERT_TRUE(engine->Submit(scored, cs.Callback()).ok());
  ASSERT_TRUE(cs.Wait());
  EXPECT_EQ(testing::Ids(cs.result().samples[0].tokens),
            testing::Ids(cp.result().samples[0].tokens));
  EXPECT_EQ(cs.result().n_events_with_prompt_logprobs, 1);
  ExpectSame(cs.result().prompt_logprobs, Reference(prompt, 1, 1), "with generation");
}

TEST_F(EnginePromptLogprobsTest, AScoringRequestMayFillTheContext) {
  EngineOptions o;
  o.kv_cache_bytes = 16LL << 20;
  o.max_context_tokens = 32;
  auto engine = Engine::Create(*model_, TestTokenizer(), o);
  ASSERT_TRUE(engine.ok());
  const std::vector<int32_t> prompt = Prompt(51, 32);
  Collector c;
  ASSERT_TRUE((*engine)->Submit(Scoring(prompt, 16), c.Callback()).ok());
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.result().prompt_logprobs.size(), 16u);
  EngineRequest gen;
  gen.prompt_tokens = prompt;
  gen.stop.max_tokens = 1;
  EXPECT_EQ((*engine)->Submit(gen, c.Callback()).status().field(), "prompt");
}

TEST_F(EnginePromptLogprobsTest, BadParametersNameTheirField) {
  auto engine = NewEngine();
  Collector c;
  EXPECT_EQ(engine->Submit(Scoring(Prompt(1, 5), 0), c.Callback()).status().field(),
            "prompt_logprobs");
  EXPECT_EQ(engine->Submit(Scoring(Prompt(1, 5), 6), c.Callback()).status().field(),
            "prompt_logprobs");
  EXPECT_EQ(engine->Submit(Scoring(Prompt(1, 5), 1, 21), c.Callback()).status().field(),
            "top_logprobs");
  EngineRequest r = Scoring(Prompt(1, 5), 1);
  r.n = 2;
  EXPECT_EQ(engine->Submit(r, c.Callback()).status().field(), "n");
  r.n = 1;
  r.prompt_logprobs.reset();
  EXPECT_EQ(engine->Submit(r, c.Callback()).status().field(), "max_tokens");
  // from == n_prompt scores nothing and is allowed.
  ASSERT_TRUE(engine->Submit(Scoring(Prompt(1, 5), 5), c.Callback()).ok());
  ASSERT_TRUE(c.Wait());
  EXPECT_TRUE(c.result().prompt_logprobs.empty());
}

}  // namespace
}  // namespace arle::runtime
