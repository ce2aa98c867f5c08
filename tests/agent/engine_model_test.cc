// Tests for agent/engine_model: EngineAgentModel renders the conversation with the chat setup
// (tools and template variables included) and generates through a real runtime::Engine over a
// TokenSlotModel whose next token is always "▁b", streaming the text, counting the tokens and
// cancelling when on_text says so.
#include "arle/agent/engine_model.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "arle/core/file_util.h"
#include "tests/common/temp_dir.h"
#include "tests/common/token_slot_model.h"

namespace arle::agent {
namespace {

constexpr int32_t kA = 6;  // "▁a"
constexpr int32_t kB = 7;  // "▁b": every step's most likely token

class AlwaysB final : public arle::testing::TokenSlotModel {
 public:
  int32_t n_vocab() const override { return 8; }
  int64_t n_ctx_train() const override { return 2048; }
  int64_t kv_bytes_per_block(core::DType) const override { return 1024; }

 protected:
  void NextLogits(std::span<const int32_t>, std::span<float> out) override {
    std::fill(out.begin(), out.end(), 0.0f);
    out[kB] = 10.0f;
  }
  // Slow enough for a cancellation to land long before max_tokens.
  void BeforeStep(std::span<const int32_t>, std::span<const models::StepSequence>) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
};

std::unique_ptr<tokenizer::Tokenizer> SmallTokenizer() {
  tokenizer::SentencePieceVocab vocab;
  vocab.pieces = {"<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "▁b"};
  vocab.scores = {0, 0, 0, -5, -5, -5, -1, -2};
  vocab.unk_id = 0;
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  auto tok = tokenizer::Tokenizer::FromSentencePiece(vocab, "small");
  ARLE_CHECK(tok.ok()) << tok.status().ToString();
  return std::move(tok).value();
}

class EngineModelTest : public ::testing::Test {
 protected:
  EngineModelTest() : tokenizer_(SmallTokenizer()) {
    runtime::EngineOptions options;
    options.kv_cache_bytes = 128 * 1024;  // 128 blocks of 16 tokens
    options.max_batch_tokens = 64;
    options.max_seqs = 4;
    auto engine = runtime::Engine::Create(std::make_unique<AlwaysB>(), *tokenizer_, options);
    ARLE_CHECK(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    const std::string jinja = dir_.File("chat_template.jinja");
    ARLE_CHECK(core::WriteFileAtomic(
                   jinja,
                   "{% for m in messages %}{{ m['role'] }}:{{ m['content'] }} {% endfor %}"
                   "{{ tools | length if tools is defined else 0 }}{{ suffix }}")
                   .ok());
    const io::ModelLocation location{io::ModelLocation::Kind::kHfDirectory, dir_.path(), "test"};
    auto setup = tokenizer::LoadChatSetup(location, *tokenizer_, "");
    ARLE_CHECK(setup.ok()) << setup.status().ToString();
    setup_ = std::move(setup).value();
  }

  EngineAgentModel MakeModel(int64_t max_tokens) {
    runtime::EngineRequest request;
    request.sampling.temperature = 0.0f;
    request.stop.max_tokens = max_tokens;
    request.prompt_tokens = {1, 2, 3};  // ignored: Generate encodes its prompt
    return EngineAgentModel(*engine_, setup_, "plain", request,
                            nlohmann::ordered_json{{"suffix", "!"}});
  }

  test::TempDir dir_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<runtime::Engine> engine_;
  tokenizer::ChatSetup setup_;
};

TEST_F(EngineModelTest, RendersWithToolsAndVariables) {
  EngineAgentModel model = MakeModel(4);
  EXPECT_EQ(model.ParserFamily(), "plain");
  const std::vector<AgentMessage> messages = {{.role = "system", .content = "s"},
                                              {.role = "user", .content = "u"}};
  auto prompt = model.Render(messages, R"([{"type":"function"}])");
  ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
  EXPECT_EQ(*prompt, "system:s user:u 1!");
  prompt = model.Render(messages, "");
  ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
  EXPECT_EQ(*prompt, "system:s user:u 0!");
}

TEST_F(EngineModelTest, GeneratesThroughTheEngine) {
  EngineAgentModel model = MakeModel(4);
  std::string streamed;
  auto completion = model.Generate("a a", [&](std::string_view text) {
    streamed += text;
    return true;
  });
  ASSERT_TRUE(completion.ok()) << completion.status().ToString();
  EXPECT_EQ(completion->prompt_tokens, (std::vector<int32_t>{kA, kA}));  // no BOS: the template's job
  EXPECT_EQ(completion->tokens, (std::vector<int32_t>{kB, kB, kB, kB}));
  EXPECT_EQ(completion->finish_reason, "length");
  EXPECT_EQ(streamed, " b b b b");  // a continuation: its leading space is kept
  EXPECT_GE(completion->total_seconds, completion->ttft_seconds);

  // Again: the same tokens (greedy, whatever the prefix cache holds).
  auto again = model.Generate("a a", [](std::string_view) { return true; });
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->tokens, completion->tokens);
}

TEST_F(EngineModelTest, OnTextFalseCancels) {
  EngineAgentModel model = MakeModel(1000);  // a second's worth of steps
  int pieces = 0;
  auto completion = model.Generate("a", [&](std::string_view) { return ++pieces < 2; });
  ASSERT_TRUE(completion.ok()) << completion.status().ToString();
  EXPECT_EQ(completion->finish_reason, "abort");
  EXPECT_LT(completion->tokens.size(), 1000u);
}

TEST_F(EngineModelTest, EmptyPromptIsAnError) {
  EngineAgentModel model = MakeModel(4);
  auto completion = model.Generate("", [](std::string_view) { return true; });
  ASSERT_FALSE(completion.ok());
  EXPECT_EQ(completion.status().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace arle::agent
