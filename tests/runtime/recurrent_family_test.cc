// A model family with recurrent layers through the unchanged engine (the per-layer state contract,
// models/state.h): the FakeHybrid family (fake_hybrid/) is registered with one line, loaded from a
// config.json by models::Load, and every request's tokens are compared with a greedy replay of its
// plain token history — alone, batched with chunked prompts, with its prefix served from the cache
// (a state snapshot restored at a block boundary), under preemption, after a cancel, and forked
// into n samples.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "arle/core/random.h"
#include "arle/kernels/elementwise.h"
#include "arle/kv/block_pool.h"
#include "arle/runtime/engine.h"
#include "engine_test_util.h"
#include "tests/common/temp_dir.h"
#include "tests/runtime/fake_hybrid/fake_hybrid_family.h"

namespace arle::runtime {
namespace {

using arle::testing::fake_hybrid::FakeHybridFamily;
using arle::testing::fake_hybrid::FakeHybridModel;
using testing::Collected;
using testing::Collector;
using testing::TestTokenizer;

constexpr int32_t kVocab = 90;
const char* const kLayers = "RAR";

// Greedy decoding of max_tokens tokens from the plain history: what the engine must produce.
std::vector<int32_t> Reference(std::vector<int32_t> history, int max_tokens) {
  std::vector<int32_t> out;
  std::vector<float> logits(kVocab);
  for (int i = 0; i < max_tokens; ++i) {
    arle::testing::fake_hybrid::NextLogits(kLayers, history, kVocab, logits.data());
    const int32_t next = static_cast<int32_t>(kernels::ArgMax(logits));
    out.push_back(next);
    history.push_back(next);
  }
  return out;
}

std::vector<int32_t> Ids(const Collected::Sample& s) {
  std::vector<int32_t> ids;
  for (const SampledToken& t : s.tokens) ids.push_back(t.id);
  return ids;
}

class RecurrentFamilyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    models::RegisterFamily(FakeHybridFamily());  // the family's one registry line
    WriteConfig(0);
  }
  void WriteConfig(int step_delay_us) {
    std::ofstream(dir_.path() + "/config.json")
        << R"({"architectures": ["FakeHybridForCausalLM"], "layers": ")" << kLayers
        << R"(", "vocab_size": 90, "max_position_embeddings": 512, "step_delay_us": )"
        << step_delay_us << "}";
  }

  std::unique_ptr<Engine> NewEngine(int64_t kv_blocks = 256, int64_t max_batch_tokens = 64,
                                    int max_seqs = 8) {
    auto model = models::Load(dir_.path());
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    EngineOptions o;
    o.kv_cache_bytes = kv_blocks * (*model)->state_spec().KvBytesPerBlock(kv::kBlockSize,
                                                                         core::DType::kF32);
    o.max_batch_tokens = max_batch_tokens;
    o.max_seqs = max_seqs;
    o.recurrent_snapshots = 8;
    auto engine = Engine::Create(std::move(model).value(), TestTokenizer(), o);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    return std::move(engine).value();
  }

  static std::vector<int32_t> Prompt(uint64_t seed, int len) {
    core::Rng rng(seed);
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>(rng.NextU64() % kVocab));
    return p;
  }

  static EngineRequest Request(std::vector<int32_t> prompt, int max_tokens) {
    EngineRequest r;
    r.prompt_tokens = std::move(prompt);
    r.sampling.temperature = 0;
    r.stop.max_tokens = max_tokens;
    r.stop.ignore_eos = true;
    return r;
  }

  // Runs the request alone and checks it against the reference; returns its result.
  Collected::Sample RunChecked(Engine& engine, const EngineRequest& r) {
    Collector c;
    EXPECT_TRUE(engine.Submit(r, c.Callback()).ok());
    EXPECT_TRUE(c.Wait());
    const Collected::Sample s = c.result().samples[0];
    EXPECT_EQ(Ids(s), Reference(r.prompt_tokens, static_cast<int>(*r.stop.max_tokens)));
    return s;
  }

  arle::test::TempDir dir_;
};

TEST_F(RecurrentFamilyTest, TheRegistryLoadsTheFamilyFromItsConfig) {
  auto model = models::Load(dir_.path());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->info().family, "fake_hybrid");
  EXPECT_TRUE((*model)->state_spec().has_recurrent());
  EXPECT_TRUE((*model)->state_spec().has_attention());
  EXPECT_EQ((*model)->state_spec().RecurrentBytesPerSlot(), 2 * 2 * 4);
  EXPECT_EQ(models::ChatFormatFor("FakeHybridForCausalLM").output_parser, "plain");
}

TEST_F(RecurrentFamilyTest, AloneAndBatchedWithChunkedPromptsMatchTheReplay) {
  auto engine = NewEngine(/*kv_blocks=*/256, /*max_batch_tokens=*/24);
  RunChecked(*engine, Request(Prompt(1, 50), 20));  // 50 tokens in chunks of at most 24
  std::vector<Collector> collectors(6);
  std::vector<EngineRequest> requests;
  for (int i = 0; i < 6; ++i) {
    requests.push_back(Request(Prompt(10 + i, 7 + 13 * i), 12 + i));
    ASSERT_TRUE(engine->Submit(requests.back(), collectors[i].Callback()).ok());
  }
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(collectors[i].Wait());
    EXPECT_EQ(Ids(collectors[i].result().samples[0]),
              Reference(requests[i].prompt_tokens, 12 + i))
        << "request " << i;
  }
}

TEST_F(RecurrentFamilyTest, APrefixHitRestoresTheSnapshotAtItsBlockBoundary) {
  auto engine = NewEngine();
  const std::vector<int32_t> shared = Prompt(3, 40);
  const Collected::Sample first = RunChecked(*engine, Request(shared, 5));
  EXPECT_EQ(first.n_cached_prompt, 0);
  // The same 40 tokens and more: the blocks of 32 tokens are cached, and the state after token 31
  // was snapshotted when the first request's prompt crossed that boundary.
  std::vector<int32_t> longer = shared;
  for (int32_t t : Prompt(4, 9)) longer.push_back(t);
  const Collected::Sample second = RunChecked(*engine, Request(longer, 8));
  EXPECT_EQ(second.n_cached_prompt, 32);
  // Its first block is cached too, but no snapshot stands at 16 tokens (the first prompt ran in one
  // chunk, snapshotted at 32): no reuse. Running it leaves one there.
  EXPECT_EQ(
      RunChecked(*engine, Request(std::vector<int32_t>(shared.begin(), shared.begin() + 17), 1))
          .n_cached_prompt,
      0);
  // A prompt that diverges inside the second block reuses the first, from that snapshot.
  std::vector<int32_t> diverging(shared.begin(), shared.begin() + 20);
  diverging.push_back((shared[20] + 1) % kVocab);
  const Collected::Sample third = RunChecked(*engine, Request(diverging, 6));
  EXPECT_EQ(third.n_cached_prompt, 16);
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.prefix_hit_tokens, 32 + 16);
}

TEST_F(RecurrentFamilyTest, PreemptedSequencesRecomputeToTheSameTokens) {
  // 10 blocks of 16 rows for four sequences growing to 64+ tokens each: some are preempted, freed
  // (slot included) and recomputed later.
  auto engine = NewEngine(/*kv_blocks=*/10, /*max_batch_tokens=*/64, /*max_seqs=*/4);
  std::vector<Collector> collectors(4);
  std::vector<EngineRequest> requests;
  for (int i = 0; i < 4; ++i) {
    requests.push_back(Request(Prompt(20 + i, 20), 44));
    ASSERT_TRUE(engine->Submit(requests.back(), collectors[i].Callback()).ok());
  }
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(collectors[i].Wait());
    EXPECT_EQ(Ids(collectors[i].result().samples[0]), Reference(requests[i].prompt_tokens, 44))
        << "request " << i;
  }
  EXPECT_GT(engine->Stats().n_preemptions, 0);
}

TEST_F(RecurrentFamilyTest, ACancelFreesTheSlotForTheNextRequests) {
  // One running sequence at a time and slots for max_seqs + 16: cancelling must return its slot,
  // or the later requests could not all run. Steps of 2 ms keep each request running until the
  // cancel lands.
  WriteConfig(2000);
  auto engine = NewEngine(/*kv_blocks=*/256, /*max_batch_tokens=*/64, /*max_seqs=*/1);
  for (int i = 0; i < 20; ++i) {
    Collector c;
    auto id = engine->Submit(Request(Prompt(40 + i, 10), 400), c.Callback());
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(c.WaitTokens(2));
    engine->Cancel(*id);
    ASSERT_TRUE(c.Wait());
    EXPECT_EQ(c.result().samples[0].finish, FinishReason::kAbort);
  }
  RunChecked(*engine, Request(Prompt(99, 12), 10));
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.n_running, 0);
  EXPECT_EQ(stats.kv_blocks_used, 0);
}

TEST_F(RecurrentFamilyTest, SamplesOfOnePromptStartFromACopyOfItsState) {
  auto engine = NewEngine();
  EngineRequest r = Request(Prompt(7, 23), 9);
  r.n = 3;
  Collector c(3);
  ASSERT_TRUE(engine->Submit(r, c.Callback()).ok());
  ASSERT_TRUE(c.Wait());
  const std::vector<int32_t> want = Reference(r.prompt_tokens, 9);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Ids(c.result().samples[i]), want) << "sample " << i;
}

}  // namespace
}  // namespace arle::runtime
