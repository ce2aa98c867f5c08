// Tests for Status, StatusOr and the RETURN/ASSIGN macros.
#include "arle/core/status.h"

#include <gtest/gtest.h>

namespace arle::core {
namespace {

StatusOr<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgumentError("value must be positive", "pass 1 or more");
  return v;
}

StatusOr<int> Doubled(int v) {
  ARLE_ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

Status Check(int v) {
  ARLE_RETURN_IF_ERROR(ParsePositive(v).status());
  return OkStatus();
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(OkStatus().ok());
  EXPECT_EQ(OkStatus().ToString(), "ok");
  Status s = DataLossError("truncated header").WithContext("model.gguf");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.ToString(), "data_loss: model.gguf: truncated header");
  EXPECT_EQ(s.WithHint("re-download it").ToString(),
            "data_loss: model.gguf: truncated header (hint: re-download it)");
}

TEST(StatusTest, FieldSurvivesContextAndHint) {
  EXPECT_EQ(OkStatus().WithField("top_p").field(), "");
  Status s = InvalidArgumentError("top_p must be in (0, 1], got 2").WithField("top_p");
  EXPECT_EQ(s.field(), "top_p");
  EXPECT_EQ(s.WithContext("request 3").WithHint("lower it").field(), "top_p");
  EXPECT_EQ(s.WithContext("request 3").message(), "request 3: top_p must be in (0, 1], got 2");
  EXPECT_EQ(s.ToString(), "invalid_argument: top_p must be in (0, 1], got 2");
  EXPECT_EQ(InvalidArgumentError("x").field(), "");
}

TEST(StatusTest, StatusOrPropagates) {
  EXPECT_EQ(*Doubled(4), 8);
  StatusOr<int> bad = Doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().hint(), "pass 1 or more");
  EXPECT_TRUE(Check(3).ok());
  EXPECT_FALSE(Check(0).ok());
}

TEST(StatusDeathTest, ValueOfErrorAborts) {
  StatusOr<int> bad = ParsePositive(0);
  EXPECT_DEATH((void)bad.value(), "StatusOr has no value");
}

TEST(CheckDeathTest, CheckPrintsValues) {
  int a = 3, b = 4;
  EXPECT_DEATH(ARLE_CHECK_EQ(a, b) << "extra", "a == b.*3 vs 4.*extra");
}

}  // namespace
}  // namespace arle::core
