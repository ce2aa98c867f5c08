// Perplexity chunking and statistics with hand-computed expectations: llama-perplexity's chunks
// (BOS replacement, second half scored, remainder dropped, the 2 * ctx minimum), Hugging Face's
// sliding windows, the NLL of a logits row, perplexity and its standard error, and the KL
// divergence statistics (percentiles as llama-perplexity interpolates them).
#include "arle/eval/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

namespace arle::eval {
namespace {

std::vector<int32_t> Iota(int n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 100);
  return v;
}

TEST(LlamaPerplexityChunks, CutsConsecutiveChunksAndScoresTheirSecondHalf) {
  // 37 tokens, ctx 8: 4 chunks (the last 5 tokens dropped), each scoring positions 5..7.
  const std::vector<int32_t> tokens = Iota(37);
  auto w = LlamaPerplexityChunks(tokens, 8, -1, std::nullopt);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->size(), 4u);
  for (size_t c = 0; c < 4; ++c) {
    EXPECT_EQ((*w)[c].tokens,
              std::vector<int32_t>(tokens.begin() + 8 * c, tokens.begin() + 8 * c + 8));
    EXPECT_EQ((*w)[c].score_from, 5);  // logits of positions 4..6 predict tokens 5..7
  }
  // With BOS the first token of every chunk becomes BOS; --chunks caps the count.
  w = LlamaPerplexityChunks(tokens, 8, 2, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->size(), 2u);
  EXPECT_EQ((*w)[1].tokens, (std::vector<int32_t>{1, 109, 110, 111, 112, 113, 114, 115}));
  // An odd context: first = 9 / 2 = 4, so tokens 5..8 are scored.
  w = LlamaPerplexityChunks(Iota(20), 9, -1, std::nullopt);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)[0].score_from, 5);
  EXPECT_EQ((*w)[0].tokens.size() - (*w)[0].score_from, 4u);
}

TEST(LlamaPerplexityChunks, NeedsTwiceTheContext) {
  auto w = LlamaPerplexityChunks(Iota(15), 8, -1, std::nullopt);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("15 tokens"), std::string::npos);
  EXPECT_NE(w.status().message().find("at least 16"), std::string::npos);
  EXPECT_TRUE(LlamaPerplexityChunks(Iota(16), 8, -1, std::nullopt).ok());
  EXPECT_FALSE(LlamaPerplexityChunks(Iota(100), 3, -1, std::nullopt).ok());
}

TEST(SlidingWindows, ScoreEveryTokenOnceWithOverlappingContext) {
  // 10 tokens, windows of 4 every 2: [0,4) scores 1..3, [2,6) scores 4..5, [4,8) 6..7,
  // [6,10) 8..9.
  auto w = SlidingWindows(Iota(10), 4, 2, -1);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->size(), 4u);
  const int64_t want_from[] = {1, 2, 2, 2};
  int64_t scored = 0;
  for (size_t i = 0; i < w->size(); ++i) {
    EXPECT_EQ((*w)[i].tokens.front(), 100 + 2 * static_cast<int32_t>(i));
    EXPECT_EQ((*w)[i].tokens.size(), 4u);
    EXPECT_EQ((*w)[i].score_from, want_from[i]) << i;
    scored += static_cast<int64_t>((*w)[i].tokens.size()) - (*w)[i].score_from;
  }
  EXPECT_EQ(scored, 9);
  // A stride equal to the window: no overlap, the last window short.
  w = SlidingWindows(Iota(10), 4, 4, -1);
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->size(), 3u);
  EXPECT_EQ((*w)[2].tokens.size(), 2u);
  // A disjoint window's first token has no context inside it and is not scored (as in the
  // transformers recipe, whose labels shift by one).
  EXPECT_EQ((*w)[2].score_from, 1);
  EXPECT_FALSE(SlidingWindows(Iota(10), 4, 5, -1).ok());
  EXPECT_FALSE(SlidingWindows(Iota(10), 4, 0, -1).ok());
  EXPECT_FALSE(SlidingWindows(Iota(1), 4, 2, -1).ok());
}

TEST(ScoreToken, IsTheNegativeLogSoftmax) {
  // Logits {0, ln 2, ln 3, ln 2}: probabilities 1/8, 2/8, 3/8, 2/8.
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), std::log(2.0f)};
  const TokenScore s = ScoreToken(logits, 1);
  EXPECT_NEAR(s.nll, std::log(4.0), 1e-6);
  EXPECT_EQ(s.argmax, 2);
  EXPECT_NEAR(ScoreToken(logits, 0).nll, std::log(8.0), 1e-6);
  // Ties: the lowest id, as argmax in llama-perplexity.
  EXPECT_EQ(ScoreToken(std::vector<float>{1, 3, 3}, 0).argmax, 1);
}

TEST(NllStats, PerplexityAndItsStandardError) {
  NllStats s;
  for (double v : {1.0, 2.0, 3.0, 2.0}) s.Add(v);
  EXPECT_DOUBLE_EQ(s.mean(), 2.0);
  EXPECT_DOUBLE_EQ(s.perplexity(), std::exp(2.0));
  // mean(nll^2) = 18/4 = 4.5; variance term (4.5 - 4) / 3.
  EXPECT_DOUBLE_EQ(s.perplexity_stderr(), std::exp(2.0) * std::sqrt(0.5 / 3.0));
  NllStats one;
  one.Add(5);
  EXPECT_EQ(one.perplexity_stderr(), 0.0);
}

TEST(KldStats, DivergenceAgreementAndPercentiles) {
  // The same distribution: 0; a shifted one: sum p log(p/q) by hand.
  const std::vector<float> p = {0.0f, std::log(3.0f)};  // 1/4, 3/4
  const std::vector<float> q = {0.0f, 0.0f};            // 1/2, 1/2
  EXPECT_NEAR(CompareDistributions(p, p, 1).kld, 0.0, 1e-12);
  const KldToken t = CompareDistributions(p, q, 1);
  EXPECT_NEAR(t.kld, 0.25 * std::log(0.5) + 0.75 * std::log(1.5), 1e-7);
  EXPECT_FALSE(t.same_top);
  EXPECT_NEAR(t.nll_base, -std::log(0.75), 1e-7);
  EXPECT_NEAR(t.nll, std::log(2.0), 1e-7);
  EXPECT_NEAR(t.p_diff, 0.5 - 0.75, 1e-7);

  KldStats stats;
  for (int i = 0; i < 11; ++i) {
    KldToken k;
    k.kld = i;  // 0 .. 10
    k.same_top = i % 2 == 0;
    stats.Add(k);
  }
  const KldSummary s = stats.Summary();
  EXPECT_EQ(s.count, 11);
  EXPECT_DOUBLE_EQ(s.kld_mean, 5.0);
  EXPECT_DOUBLE_EQ(s.kld_median, 5.0);
  EXPECT_DOUBLE_EQ(s.kld_p90, 9.0);    // 0.9 * 10
  EXPECT_NEAR(s.kld_p99, 9.9, 1e-12);  // between 9 and 10
  EXPECT_DOUBLE_EQ(s.kld_max, 10.0);
  EXPECT_DOUBLE_EQ(s.same_top, 6.0 / 11.0);
  EXPECT_NEAR(s.same_top_stderr, std::sqrt(6.0 / 11 * 5.0 / 11 / 10), 1e-12);
}

}  // namespace
}  // namespace arle::eval
