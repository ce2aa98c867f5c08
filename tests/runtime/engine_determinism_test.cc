// The determinism contract (DESIGN.md §3) on a tiny random Qwen3 through the real engine: for one
// request and seed, tokens and logprobs are bit-identical whether it runs alone, batched with 7
// others, with its prompt chunked, or with its prefix served from the cache — for f32 and bf16 KV.
// The engine also matches a plain loop of the model's forward step and the sampler on one
// sequence (tests/models/sequence_runner.h), which has no scheduler, sharing or chunking.
#include <cstring>
#include <memory>

#include <gtest/gtest.h>

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

struct Output {
  std::vector<SampledToken> tokens;
  int64_t n_cached_prompt = 0;
};

class EngineDeterminismTest : public ::testing::TestWithParam<core::DType> {
 protected:
  void SetUp() override {
    config_ = models::testing::TinyConfig(models::llama::Architecture::kQwen3);
    weights_ = models::testing::TinyModelWeights(config_, core::DType::kBF16, 99);
    models::LoadOptions opts;
    opts.n_threads = 2;
    auto m = models::testing::BuildTiny(config_, weights_, opts);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = std::move(*m);
  }

  std::unique_ptr<Engine> NewEngine(int64_t max_batch_tokens = 256, bool prefix_cache = true) {
    EngineOptions o;
    o.kv_dtype = GetParam();
    o.kv_cache_bytes = 256LL << 20 >> 4;  // 16 MiB: plenty for the tiny model
    o.max_batch_tokens = max_batch_tokens;
    o.max_seqs = 8;
    o.enable_prefix_cache = prefix_cache;
    auto e = Engine::Create(*model_, TestTokenizer(), o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(*e);
  }

  std::vector<int32_t> Prompt(uint64_t seed, int len) const {
    core::Rng rng(seed);
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>(rng.NextU64() % config_.n_vocab));
    return p;
  }

  EngineRequest Request(std::vector<int32_t> prompt, uint64_t seed) const {
    EngineRequest r;
    r.prompt_tokens = std::move(prompt);
    r.sampling.temperature = 0.8f;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = seed;
    r.sampling.logprobs = true;
    r.sampling.top_logprobs = 3;
    r.stop.max_tokens = 24;
    r.stop.ignore_eos = true;
    return r;
  }

  static Output Collect(Collector& c) {
    EXPECT_TRUE(c.Wait());
    Output o;
    o.tokens = c.result().samples[0].tokens;
    o.n_cached_prompt = c.result().samples[0].n_cached_prompt;
    return o;
  }

  Output RunAlone(const EngineRequest& r, int64_t max_batch_tokens = 256) {
    auto engine = NewEngine(max_batch_tokens);
    Collector c;
    EXPECT_TRUE(engine->Submit(r, c.Callback()).ok());
    return Collect(c);
  }

  models::llama::LlamaConfig config_;
  std::shared_ptr<models::testing::TinyWeights> weights_;
  std::unique_ptr<models::Model> model_;
};

void ExpectBitIdentical(const Output& a, const Output& b, const char* what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(a.tokens.size(), b.tokens.size());
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    ASSERT_EQ(a.tokens[i].id, b.tokens[i].id) << "token " << i;
    ASSERT_EQ(0, std::memcmp(&a.tokens[i].logprob, &b.tokens[i].logprob, sizeof(float)))
        << "logprob of token " << i << ": " << a.tokens[i].logprob << " vs " << b.tokens[i].logprob;
    ASSERT_EQ(a.tokens[i].top_logprobs.size(), b.tokens[i].top_logprobs.size());
    for (size_t k = 0; k < a.tokens[i].top_logprobs.size(); ++k) {
      ASSERT_EQ(a.tokens[i].top_logprobs[k].first, b.tokens[i].top_logprobs[k].first);
      ASSERT_EQ(0, std::memcmp(&a.tokens[i].top_logprobs[k].second,
                               &b.tokens[i].top_logprobs[k].second, sizeof(float)));
    }
  }
}

TEST_P(EngineDeterminismTest, AloneBatchedChunkedAndCachedAreBitIdentical) {
  const EngineRequest r = Request(Prompt(5, 41), 11);
  const Output alone = RunAlone(r);
  ASSERT_EQ(alone.tokens.size(), 24u);
  EXPECT_EQ(alone.n_cached_prompt, 0);

  {  // Batched with 7 others of different lengths, all in flight together.
    auto engine = NewEngine();
    std::vector<std::unique_ptr<Collector>> others;
    for (int i = 0; i < 7; ++i) {
      others.push_back(std::make_unique<Collector>());
      ASSERT_TRUE(engine->Submit(Request(Prompt(50 + i, 9 + 7 * i), 100 + i),
                                 others.back()->Callback())
                      .ok());
    }
    Collector c;
    ASSERT_TRUE(engine->Submit(r, c.Callback()).ok());
    ExpectBitIdentical(alone, Collect(c), "batched with 7 others");
    for (auto& o : others) ASSERT_TRUE(o->Wait());
    // The 8 requests really shared steps: far fewer steps than running them one after another.
    EXPECT_LT(engine->Stats().n_steps, 8 * 24);
  }
  // Prompt chunked into pieces of 8 tokens.
  ExpectBitIdentical(alone, RunAlone(r, /*max_batch_tokens=*/8), "chunked prefill");
  {  // Prefix from the cache: an earlier request shares the first 35 tokens (2 full blocks).
    auto engine = NewEngine();
    std::vector<int32_t> sibling(r.prompt_tokens.begin(), r.prompt_tokens.begin() + 35);
    for (int32_t t : Prompt(77, 10)) sibling.push_back(t);
    Collector first;
    ASSERT_TRUE(engine->Submit(Request(sibling, 3), first.Callback()).ok());
    ASSERT_TRUE(first.Wait());
    Collector c;
    ASSERT_TRUE(engine->Submit(r, c.Callback()).ok());
    const Output cached = Collect(c);
    EXPECT_EQ(cached.n_cached_prompt, 32);
    ExpectBitIdentical(alone, cached, "prefix from cache");
  }
}

TEST_P(EngineDeterminismTest, SamplesOfOneRequestMatchSeparateRequestsWithSeedPlusIndex) {
  EngineRequest r = Request(Prompt(6, 23), 1000);
  r.n = 3;
  auto engine = NewEngine();
  Collector c(3);
  ASSERT_TRUE(engine->Submit(r, c.Callback()).ok());
  ASSERT_TRUE(c.Wait());
  for (int i = 0; i < 3; ++i) {
    EngineRequest single = Request(r.prompt_tokens, 1000 + i);
    Output sample;
    sample.tokens = c.result().samples[i].tokens;
    ExpectBitIdentical(RunAlone(single), sample, "sample of n=3");
  }
}

// The engine against the plainest generation loop: the whole prompt in one forward step, then one
// step per token, sampling with the same parameters and seed. Any KV dtype: both store it alike.
TEST_P(EngineDeterminismTest, EngineMatchesAPlainLoopOfForwardAndSample) {
  const EngineRequest r = Request(Prompt(8, 30), 21);
  models::testing::SequenceRunner runner(*model_, 64, GetParam());
  Sampler sampler(r.sampling, /*default_seed_if_unset=*/0);
  std::vector<int32_t> context = r.prompt_tokens;
  std::vector<float> logits;
  ASSERT_TRUE(runner.Forward(context, &logits).ok());
  Output reference;
  for (int64_t i = 0; i < *r.stop.max_tokens; ++i) {
    reference.tokens.push_back(sampler.Sample(logits, context, r.prompt_tokens.size()));
    context.push_back(reference.tokens.back().id);
    ASSERT_TRUE(runner.Forward(std::span(&context.back(), 1), &logits).ok());
  }
  ExpectBitIdentical(reference, RunAlone(r), "engine vs plain loop");
}

INSTANTIATE_TEST_SUITE_P(KvDtypes, EngineDeterminismTest,
                         ::testing::Values(core::DType::kF32, core::DType::kBF16, core::DType::kF16),
                         [](const auto& info) { return std::string(core::DTypeName(info.param)); });

}  // namespace
}  // namespace arle::runtime
