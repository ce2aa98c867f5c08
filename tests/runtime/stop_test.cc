// StopChecker tests: EOS / stop token ids, ignore_eos, max_tokens, context length, precedence
// (vLLM check_stop: stop tokens before length) and validation messages.
#include "arle/runtime/stop.h"

#include <gtest/gtest.h>

#include <string>

namespace arle::runtime {
namespace {

StopParams Qwen3Like() {
  StopParams p;
  p.eos_token_ids = {151645, 151643};  // <|im_end|>, <|endoftext|>
  p.max_context_tokens = 40960;
  return p;
}

TEST(StopTest, FinishReasonNames) {
  EXPECT_EQ(FinishReasonName(FinishReason::kNone), "");
  EXPECT_EQ(FinishReasonName(FinishReason::kStop), "stop");
  EXPECT_EQ(FinishReasonName(FinishReason::kLength), "length");
}

TEST(StopTest, StopsOnAnyEosId) {
  for (int32_t eos : {151645, 151643}) {
    StopChecker checker(Qwen3Like(), 10);
    EXPECT_EQ(checker.Append(100), FinishReason::kNone);
    EXPECT_EQ(checker.Append(200), FinishReason::kNone);
    EXPECT_EQ(checker.Append(eos), FinishReason::kStop);
    EXPECT_EQ(checker.finish_reason(), FinishReason::kStop);
    EXPECT_EQ(checker.n_generated(), 3);
    EXPECT_EQ(checker.stop_token_id(), eos);
  }
}

TEST(StopTest, StopTokenIdsAndIgnoreEos) {
  StopParams p = Qwen3Like();
  p.stop_token_ids = {42};
  p.ignore_eos = true;
  StopChecker checker(p, 1);
  EXPECT_EQ(checker.Append(151645), FinishReason::kNone);  // EOS ignored
  EXPECT_EQ(checker.Append(7), FinishReason::kNone);
  EXPECT_FALSE(checker.stop_token_id().has_value());
  EXPECT_EQ(checker.Append(42), FinishReason::kStop);  // stop_token_ids still apply
  EXPECT_EQ(checker.stop_token_id(), 42);
}

TEST(StopTest, MaxTokensCountsTheLastToken) {
  StopParams p = Qwen3Like();
  p.max_tokens = 3;
  StopChecker checker(p, 5);
  EXPECT_EQ(checker.Append(1), FinishReason::kNone);
  EXPECT_EQ(checker.Append(2), FinishReason::kNone);
  EXPECT_EQ(checker.Append(3), FinishReason::kLength);
  EXPECT_EQ(checker.n_generated(), 3);
  EXPECT_FALSE(checker.stop_token_id().has_value());
}

TEST(StopTest, StopTokenWinsOverLengthOnTheSameToken) {
  StopParams p = Qwen3Like();
  p.max_tokens = 2;
  StopChecker checker(p, 5);
  EXPECT_EQ(checker.Append(1), FinishReason::kNone);
  EXPECT_EQ(checker.Append(151643), FinishReason::kStop);
}

TEST(StopTest, ContextLengthLimitsUnboundedGeneration) {
  StopParams p = Qwen3Like();
  p.max_context_tokens = 8;
  StopChecker checker(p, 5);  // room for 3 tokens
  EXPECT_EQ(checker.Append(1), FinishReason::kNone);
  EXPECT_EQ(checker.Append(2), FinishReason::kNone);
  EXPECT_EQ(checker.Append(3), FinishReason::kLength);
  // max_tokens larger than the room left: the context still wins.
  p.max_tokens = 100;
  StopChecker capped(p, 7);
  EXPECT_EQ(capped.Append(1), FinishReason::kLength);
}

TEST(StopTest, StopStringSeam) {
  StopChecker checker(Qwen3Like(), 3);
  EXPECT_EQ(checker.Append(1), FinishReason::kNone);
  checker.FinishWithStopString();
  EXPECT_EQ(checker.finish_reason(), FinishReason::kStop);
  EXPECT_FALSE(checker.stop_token_id().has_value());
}

TEST(StopDeathTest, AppendAfterFinishIsABug) {
  StopParams p = Qwen3Like();
  p.max_tokens = 1;
  StopChecker checker(p, 0);
  EXPECT_EQ(checker.Append(1), FinishReason::kLength);
  EXPECT_DEATH(checker.Append(2), "Append after the sequence finished");
}

TEST(StopTest, Validate) {
  EXPECT_TRUE(Qwen3Like().Validate(151936).ok());
  StopParams p = Qwen3Like();
  p.max_tokens = 0;
  core::Status s = p.Validate(151936);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("max_tokens"), std::string::npos) << s.message();
  EXPECT_EQ(s.field(), "max_tokens");

  p = Qwen3Like();
  p.stop_token_ids = {151936};
  s = p.Validate(151936);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("stop_token_ids"), std::string::npos) << s.message();
  EXPECT_EQ(s.field(), "stop_token_ids");

  p = Qwen3Like();
  s = p.Validate(1000);  // EOS ids outside a smaller vocabulary
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("eos_token_id"), std::string::npos) << s.message();
  EXPECT_EQ(s.field(), "");  // the model's configuration, not a request field

  p = Qwen3Like();
  p.max_context_tokens = 0;
  EXPECT_FALSE(p.Validate(151936).ok());
}

TEST(StopTest, CheckPromptLength) {
  StopParams p = Qwen3Like();
  p.max_context_tokens = 16;
  EXPECT_TRUE(p.CheckPromptLength(15).ok());
  const core::Status s = p.CheckPromptLength(16);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("16 tokens"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace arle::runtime
