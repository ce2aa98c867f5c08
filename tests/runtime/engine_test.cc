// Engine and scheduler tests on a fake model (fake_batch_model.h): outputs equal a plain replay of
// the same sampler over the true history, whatever the batching, chunking, prefix reuse,
// preemption or forking; blocks return to the pool; capacity is never over-committed; cancel and
// shutdown end streams; bad requests are refused. Also run under TSan (build preset `tsan`).
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "arle/core/random.h"
#include "arle/runtime/engine.h"
#include "fake_batch_model.h"
#include "engine_test_util.h"

namespace arle::runtime {
namespace {

using testing::Collected;
using testing::Collector;
using testing::FakeBatchModel;
using testing::FakeLogits;
using testing::Ids;
using testing::kFakeVocab;
using testing::TestTokenizer;

std::vector<int32_t> Prompt(uint64_t seed, int len) {
  core::Rng rng(seed);
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>(rng.NextU64() % kFakeVocab));
  return p;
}

EngineRequest Request(std::vector<int32_t> prompt, int max_tokens, uint64_t seed,
                      float temperature = 0.9f) {
  EngineRequest r;
  r.prompt_tokens = std::move(prompt);
  r.sampling.temperature = temperature;
  r.sampling.top_k = 40;
  r.sampling.seed = seed;
  r.sampling.logprobs = true;
  r.stop.max_tokens = max_tokens;
  r.stop.ignore_eos = true;
  return r;
}

// What the engine must produce: the same Sampler over FakeLogits of the true history.
std::vector<int32_t> Reference(const EngineRequest& r, int sample = 0) {
  SamplingParams p = r.sampling;
  if (p.seed) p.seed = *p.seed + sample;
  Sampler sampler(p, 0);
  std::vector<int32_t> history = r.prompt_tokens;
  std::vector<int32_t> out;
  std::vector<float> logits(kFakeVocab);
  for (int64_t i = 0; i < *r.stop.max_tokens; ++i) {
    FakeLogits(history, logits.data());
    const int32_t id = sampler.Sample(logits, history, r.prompt_tokens.size()).id;
    history.push_back(id);
    out.push_back(id);
  }
  return out;
}

struct FakeEngine {
  std::shared_ptr<FakeBatchModel::Probe> probe = std::make_shared<FakeBatchModel::Probe>();
  std::unique_ptr<Engine> engine;
  explicit FakeEngine(EngineOptions o, int64_t n_ctx = 512) {
    auto e = Engine::Create(std::make_unique<FakeBatchModel>(probe, n_ctx), TestTokenizer(), o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    engine = std::move(*e);
  }
};

EngineOptions Options(int n_blocks, int max_batch_tokens = 64, int max_seqs = 8) {
  EngineOptions o;
  o.kv_cache_bytes = int64_t{n_blocks} * 1024;  // the fake model's block size is 1024 bytes
  o.max_batch_tokens = max_batch_tokens;
  o.max_seqs = max_seqs;
  return o;
}

// Waits (briefly) for the engine thread to publish its snapshot after the last event.
EngineStats SettledStats(Engine& engine) {
  EngineStats s = engine.Stats();
  for (int i = 0; i < 200 && (s.n_running != 0 || s.kv_blocks_used != 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s = engine.Stats();
  }
  return s;
}

TEST(EngineTest, SingleRequestMatchesReference) {
  FakeEngine s(Options(64));
  const EngineRequest r = Request(Prompt(1, 37), 20, 5);
  Collector c;
  ASSERT_TRUE(s.engine->Submit(r, c.Callback()).ok());
  ASSERT_TRUE(c.Wait());
  const Collected got = c.result();
  EXPECT_EQ(Ids(got.samples[0].tokens), Reference(r));
  EXPECT_EQ(got.samples[0].finish, FinishReason::kLength);
  EXPECT_EQ(got.samples[0].n_final_events, 1);
  const EngineStats st = SettledStats(*s.engine);
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(st.n_running, 0);
  EXPECT_EQ(s.probe->n_violations, 0);
}

TEST(EngineTest, ManyConcurrentRequestsMatchTheirReferencesWithChunkedPrefill) {
  // A token budget of 24 forces prompts of up to 70 tokens into chunks and mixes them with decodes.
  FakeEngine s(Options(200, /*max_batch_tokens=*/24, /*max_seqs=*/6));
  std::vector<EngineRequest> reqs;
  std::vector<std::unique_ptr<Collector>> cs;
  for (int i = 0; i < 16; ++i) {
    reqs.push_back(Request(Prompt(100 + i, 5 + 4 * i), 10 + i, 1000 + i, i % 3 == 0 ? 0.0f : 0.8f));
    cs.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(s.engine->Submit(reqs.back(), cs.back()->Callback()).ok());
  }
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(cs[i]->Wait());
    EXPECT_EQ(Ids(cs[i]->result().samples[0].tokens), Reference(reqs[i])) << "request " << i;
  }
  EXPECT_LE(s.probe->max_step_tokens, 24);
  EXPECT_EQ(s.probe->n_violations, 0);
  EXPECT_EQ(SettledStats(*s.engine).kv_blocks_used, 0);
}

TEST(EngineTest, PrefixCacheServesASharedPrefixAndKeepsOutputsExact) {
  FakeEngine s(Options(64));
  std::vector<int32_t> shared = Prompt(7, 40);
  EngineRequest a = Request(shared, 12, 3);
  Collector ca;
  ASSERT_TRUE(s.engine->Submit(a, ca.Callback()).ok());
  ASSERT_TRUE(ca.Wait());
  EXPECT_EQ(ca.result().samples[0].n_cached_prompt, 0);
  // Same 40-token start plus more: the two full blocks (32 tokens) come from the cache.
  std::vector<int32_t> longer = shared;
  for (int32_t t : Prompt(8, 9)) longer.push_back(t);
  EngineRequest b = Request(longer, 12, 4);
  Collector cb;
  ASSERT_TRUE(s.engine->Submit(b, cb.Callback()).ok());
  ASSERT_TRUE(cb.Wait());
  EXPECT_EQ(cb.result().samples[0].n_cached_prompt, 32);
  EXPECT_EQ(Ids(cb.result().samples[0].tokens), Reference(b));
  const EngineStats st = SettledStats(*s.engine);
  EXPECT_EQ(st.prefix_hit_tokens, 32);
  EXPECT_GT(st.kv_blocks_cached, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(st.computed_prompt_tokens_total, 40 + 49 - 32);
}

// UpdateWeights runs between steps while a request is generating, and no prefix computed before
// it is reused afterwards: not the finished request's cached blocks, not the blocks the running
// one held at the update, nor those it filled after it (its K/V mixes both weights).
TEST(EngineTest, WeightUpdatesForgetEveryEarlierPrefix) {
  FakeEngine s(Options(64));
  const std::vector<int32_t> done_prompt = Prompt(21, 40), running_prompt = Prompt(22, 40);
  Collector done;
  ASSERT_TRUE(s.engine->Submit(Request(done_prompt, 4, 1), done.Callback()).ok());
  ASSERT_TRUE(done.Wait());
  Collector running;
  ASSERT_TRUE(s.engine->Submit(Request(running_prompt, 60, 2), running.Callback()).ok());
  ASSERT_TRUE(running.WaitTokens(3));
  int calls = 0;
  EXPECT_TRUE(s.engine
                  ->UpdateWeights([&] {
                    ++calls;
                    return core::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(running.Wait());
  EXPECT_EQ(running.result().samples[0].tokens.size(), 60u);  // it went on to the end
  // Both prompts again, extended by what was generated: nothing comes from the cache.
  for (const auto* c : {&done, &running}) {
    std::vector<int32_t> again = c == &done ? done_prompt : running_prompt;
    for (int32_t t : Ids(const_cast<Collector*>(c)->result().samples[0].tokens)) again.push_back(t);
    Collector ca;
    ASSERT_TRUE(s.engine->Submit(Request(again, 2, 3), ca.Callback()).ok());
    ASSERT_TRUE(ca.Wait());
    EXPECT_EQ(ca.result().samples[0].n_cached_prompt, 0);
  }
  // Prefixes computed after the update are cached again as usual.
  Collector cb;
  ASSERT_TRUE(s.engine->Submit(Request(running_prompt, 2, 4), cb.Callback()).ok());
  ASSERT_TRUE(cb.Wait());
  EXPECT_EQ(cb.result().samples[0].n_cached_prompt, 32);
}

TEST(EngineTest, MultiTurnReusesTheGeneratedBlocksToo) {
  FakeEngine s(Options(64));
  EngineRequest t1 = Request(Prompt(9, 20), 30, 1, 0.0f);
  Collector c1;
  ASSERT_TRUE(s.engine->Submit(t1, c1.Callback()).ok());
  ASSERT_TRUE(c1.Wait());
  // Turn 2 = turn 1's prompt + its answer + a new message.
  std::vector<int32_t> p2 = t1.prompt_tokens;
  for (int32_t id : Ids(c1.result().samples[0].tokens)) p2.push_back(id);
  for (int32_t t : Prompt(10, 6)) p2.push_back(t);
  EngineRequest t2 = Request(p2, 5, 2, 0.0f);
  Collector c2;
  ASSERT_TRUE(s.engine->Submit(t2, c2.Callback()).ok());
  ASSERT_TRUE(c2.Wait());
  // 20 + 30 = 50 tokens were computed in turn 1 except the last sampled one: 49 -> 3 full blocks.
  EXPECT_EQ(c2.result().samples[0].n_cached_prompt, 48);
  EXPECT_EQ(Ids(c2.result().samples[0].tokens), Reference(t2));
}

TEST(EngineTest, SamplesOfOneRequestShareThePromptAndUseSeedPlusIndex) {
  FakeEngine s(Options(64));
  EngineRequest r = Request(Prompt(11, 21), 15, 42);
  r.n = 3;
  Collector c(3);
  ASSERT_TRUE(s.engine->Submit(r, c.Callback()).ok());
  ASSERT_TRUE(c.Wait());
  const Collected got = c.result();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Ids(got.samples[i].tokens), Reference(r, i)) << "sample " << i;
    EXPECT_EQ(got.samples[i].n_final_events, 1);
  }
  EXPECT_NE(Ids(got.samples[0].tokens), Ids(got.samples[1].tokens));
  // The prompt was computed once.
  EXPECT_EQ(SettledStats(*s.engine).computed_prompt_tokens_total, 21);
  EXPECT_EQ(s.probe->n_violations, 0);
}

TEST(EngineTest, PreemptionUnderMemoryPressureStillFinishesEveryRequestExactly) {
  // 14 blocks (224 tokens) for 6 sequences that each grow to 60 tokens: they cannot all fit.
  FakeEngine s(Options(14, 32, 6));
  std::vector<EngineRequest> reqs;
  std::vector<std::unique_ptr<Collector>> cs;
  for (int i = 0; i < 6; ++i) {
    reqs.push_back(Request(Prompt(200 + i, 12), 48, 7 + i));
    cs.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(s.engine->Submit(reqs.back(), cs.back()->Callback()).ok());
  }
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(cs[i]->Wait());
    EXPECT_EQ(Ids(cs[i]->result().samples[0].tokens), Reference(reqs[i])) << "request " << i;
    EXPECT_EQ(cs[i]->result().samples[0].finish, FinishReason::kLength);
  }
  const EngineStats st = SettledStats(*s.engine);
  EXPECT_GT(st.n_preemptions, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(s.probe->n_violations, 0);
}

TEST(EngineTest, CancelEndsTheStreamWithAbortAndFreesItsBlocks) {
  FakeEngine s(Options(64));
  s.probe->step_delay_us = 2000;
  Collector c;
  auto id = s.engine->Submit(Request(Prompt(12, 30), 400, 1), c.Callback());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(c.WaitTokens(3));
  s.engine->Cancel(*id);
  ASSERT_TRUE(c.Wait());
  const Collected got = c.result();
  EXPECT_EQ(got.samples[0].finish, FinishReason::kAbort);
  EXPECT_EQ(got.samples[0].n_final_events, 1);
  EXPECT_LT(got.samples[0].tokens.size(), 400u);
  EXPECT_EQ(SettledStats(*s.engine).kv_blocks_used, 0);
  s.engine->Cancel(*id);  // twice, and unknown ids: ignored
  s.engine->Cancel(987654);
}

TEST(EngineTest, DestroyingTheEngineAbortsUnfinishedRequests) {
  Collector c;
  {
    FakeEngine s(Options(64));
    s.probe->step_delay_us = 2000;
    ASSERT_TRUE(s.engine->Submit(Request(Prompt(13, 10), 400, 1), c.Callback()).ok());
    ASSERT_TRUE(c.WaitTokens(1));
  }
  ASSERT_TRUE(c.Wait(std::chrono::seconds(1)));
  EXPECT_EQ(c.result().samples[0].finish, FinishReason::kAbort);
}

TEST(EngineTest, RefusesBadRequestsWithNamedErrors) {
  FakeEngine s(Options(8), /*n_ctx=*/100);
  auto cb = [](const EngineOutput&) {};
  EngineRequest empty = Request({}, 5, 1);
  EXPECT_EQ(s.engine->Submit(empty, cb).status().code(), core::StatusCode::kInvalidArgument);
  EngineRequest bad_id = Request({1, 2, kFakeVocab}, 5, 1);
  EXPECT_NE(s.engine->Submit(bad_id, cb).status().message().find("vocabulary"), std::string::npos);
  EngineRequest too_long = Request(Prompt(1, 100), 5, 1);
  const std::string msg = s.engine->Submit(too_long, cb).status().message();
  EXPECT_NE(msg.find("100"), std::string::npos) << msg;
  EXPECT_EQ(s.engine->Submit(too_long, cb).status().field(), "prompt");
  EngineRequest bad_n = Request(Prompt(1, 5), 5, 1);
  bad_n.n = 17;
  EXPECT_NE(s.engine->Submit(bad_n, cb).status().message().find("n must be"), std::string::npos);
  EngineRequest bad_top_p = Request(Prompt(1, 5), 5, 1);
  bad_top_p.sampling.top_p = 1.5f;
  EXPECT_NE(s.engine->Submit(bad_top_p, cb).status().message().find("top_p"), std::string::npos);
  EXPECT_EQ(s.engine->Submit(bad_top_p, cb).status().field(), "top_p");
  EXPECT_EQ(s.engine->Submit(bad_n, cb).status().field(), "n");
  // 8 blocks hold 128 tokens; the context (100) is smaller, so it is the context that refuses.
  EngineRequest fits = Request(Prompt(1, 90), 5, 1);
  EXPECT_TRUE(s.engine->Submit(fits, cb).ok());
}

TEST(EngineTest, QueueFullIsResourceExhausted) {
  EngineOptions o = Options(64, 8, 1);
  o.max_queue = 3;
  FakeEngine s(o);
  s.probe->step_delay_us = 5000;
  std::vector<std::unique_ptr<Collector>> cs;
  int refused = 0;
  for (int i = 0; i < 10; ++i) {
    cs.push_back(std::make_unique<Collector>());
    auto id = s.engine->Submit(Request(Prompt(i, 8), 50, 1), cs.back()->Callback());
    if (!id.ok()) {
      EXPECT_EQ(id.status().code(), core::StatusCode::kResourceExhausted);
      ++refused;
      cs.pop_back();
    }
  }
  EXPECT_GT(refused, 0);
  for (auto& c : cs) ASSERT_TRUE(c->Wait());
}

TEST(EngineTest, ConcurrentSubmitAndCancelFromManyThreads) {
  FakeEngine s(Options(40, 32, 8));
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        Collector c;
        auto id = s.engine->Submit(Request(Prompt(t * 100 + i, 10 + i), 30, i), c.Callback());
        ASSERT_TRUE(id.ok()) << id.status().ToString();
        if (i % 3 == 0) s.engine->Cancel(*id);
        ASSERT_TRUE(c.Wait());
        ++finished;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(finished, 40);
  const EngineStats st = SettledStats(*s.engine);
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(st.n_running, 0);
  EXPECT_EQ(s.probe->n_violations, 0);
}

TEST(EngineTest, StopStringsAndTextAreDeliveredWithoutTheStopString) {
  FakeEngine s(Options(64));
  EngineRequest r = Request(Prompt(3, 10), 40, 9, 0.0f);
  const std::vector<int32_t> ref = Reference(r);
  // Pick the text of generated tokens 5..6 as a stop string: the output must end before it.
  std::string full;
  for (int32_t id : ref) full += TestTokenizer().Decode(std::vector<int32_t>{id}, true);
  const std::string stop = TestTokenizer().Decode(std::vector<int32_t>{ref[5], ref[6]}, true);
  r.stop_strings = {stop};
  Collector c;
  ASSERT_TRUE(s.engine->Submit(r, c.Callback()).ok());
  ASSERT_TRUE(c.Wait());
  const Collected got = c.result();
  EXPECT_EQ(got.samples[0].finish, FinishReason::kStop);
  EXPECT_EQ(got.samples[0].text, full.substr(0, full.find(stop)));
}

}  // namespace
}  // namespace arle::runtime

namespace arle::runtime {
namespace {

// Prompt-scoring requests among generating ones under memory pressure: a scored sequence may be
// preempted in the middle of its prompt and recomputed; its scores still come once, complete and
// equal to the log-softmax of the true history's logits.
TEST(EngineTest, PromptScoresSurvivePreemptionAndChunking) {
  FakeEngine s(Options(14, 32, 6));
  std::vector<std::unique_ptr<Collector>> gen, scored;
  std::vector<EngineRequest> scoring;
  for (int i = 0; i < 9; ++i) {
    if (i % 3 == 2) {
      EngineRequest r;
      r.prompt_tokens = Prompt(300 + i, 50);
      r.stop.max_tokens = 0;
      r.prompt_logprobs = PromptLogprobsParams{.from = 7, .top_logprobs = 2, .on_logits = {}};
      scoring.push_back(r);
      scored.push_back(std::make_unique<Collector>());
      ASSERT_TRUE(s.engine->Submit(r, scored.back()->Callback()).ok());
    } else {
      gen.push_back(std::make_unique<Collector>());
      ASSERT_TRUE(
          s.engine->Submit(Request(Prompt(200 + i, 12), 48, 7 + i), gen.back()->Callback()).ok());
    }
  }
  for (auto& c : gen) ASSERT_TRUE(c->Wait());
  std::vector<float> logits(kFakeVocab);
  for (size_t k = 0; k < scoring.size(); ++k) {
    ASSERT_TRUE(scored[k]->Wait());
    const testing::Collected got = scored[k]->result();
    EXPECT_EQ(got.n_events_with_prompt_logprobs, 1);
    const std::vector<int32_t>& p = scoring[k].prompt_tokens;
    ASSERT_EQ(got.prompt_logprobs.size(), p.size() - 7) << k;
    for (size_t i = 7; i < p.size(); ++i) {
      FakeLogits(std::span<const int32_t>(p.data(), i), logits.data());
      const SampledToken want = RawTokenLogprobs(logits, p[i], 2);
      const PromptTokenLogprob& t = got.prompt_logprobs[i - 7];
      EXPECT_EQ(t.id, p[i]);
      EXPECT_EQ(t.logprob, want.logprob) << "request " << k << " position " << i;
      EXPECT_EQ(t.top_logprobs, want.top_logprobs);
    }
  }
  const EngineStats st = SettledStats(*s.engine);
  EXPECT_GT(st.n_preemptions, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(s.probe->n_violations, 0);
}

}  // namespace
}  // namespace arle::runtime
