// Qwen3 byte-level BPE: llama.cpp's qwen2 vectors, goldens from the independent Python reference,
// special tokens, round trips on corpora, load time and concurrent encoding.
#include <chrono>
#include <ctime>
#include <thread>

#include "arle/tokenizer/tokenizer.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARLE_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARLE_TEST_SANITIZED 1
#endif
#endif

namespace arle::tokenizer {
namespace {

using testing::Printable;
using testing::Qwen3;

TEST(Qwen3Tokenizer, LoadsQuicklyWithExpectedVocabulary) {
  // CPU time rather than wall time: the test machines are often shared and oversubscribed.
  const std::clock_t start_cpu = std::clock();
  const auto start = std::chrono::steady_clock::now();
  auto tok = Tokenizer::FromFile(testing::SourcePath("assets/tokenizers/qwen3/tokenizer.json.gz"));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = static_cast<double>(std::clock() - start_cpu) / CLOCKS_PER_SEC;
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  std::printf("Qwen3 tokenizer.json.gz load: %.3f s CPU, %.3f s wall\n", cpu, wall);
#if defined(NDEBUG) && !defined(ARLE_TEST_SANITIZED)
  EXPECT_LT(cpu, 1.0);  // optimized builds only: sanitizers and -O0 are several times slower
#endif
  EXPECT_EQ((*tok)->vocab_size(), 151669);
  EXPECT_EQ((*tok)->TokenToId("<|im_start|>"), 151644);
  EXPECT_EQ((*tok)->IdToToken(151645), "<|im_end|>");
  EXPECT_EQ((*tok)->IdToToken(9707), "Hello");
  EXPECT_TRUE((*tok)->IsSpecial(151643));
  EXPECT_FALSE((*tok)->IsSpecial(9707));
  EXPECT_FALSE((*tok)->bos_id().has_value());
}

TEST(Qwen3Tokenizer, ModelDirAppliesTokenizerConfig) {
  EXPECT_EQ(Qwen3().eos_id(), Qwen3().TokenToId("<|im_end|>"));
  EXPECT_FALSE(Qwen3().adds_bos());
}

TEST(Qwen3Tokenizer, LlamaCppQwen2Vectors) {
  auto cases = testing::ReadLlamaCppVectors(testing::DataPath("tokenizer/ggml-vocab-qwen2.gguf.inp"),
                                            testing::DataPath("tokenizer/ggml-vocab-qwen2.gguf.out"));
  ASSERT_EQ(cases.size(), 46u);
  int matched = 0;
  for (const auto& c : cases) {
    auto ids = Qwen3().Encode(c.text, {.add_special_tokens = false, .parse_special = false});
    EXPECT_EQ(ids, c.ids) << "text: \"" << Printable(c.text) << "\"";
    matched += ids == c.ids;
  }
  EXPECT_EQ(matched, 46);
}

TEST(Qwen3Tokenizer, ReferenceGoldens) {
  auto cases = testing::ReadGoldenCases(testing::DataPath("tokenizer/qwen3_cases.json"));
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    auto ids = Qwen3().Encode(c.text);
    EXPECT_EQ(ids, c.ids) << "text: \"" << Printable(c.text) << "\"";
    EXPECT_EQ(Qwen3().Decode(ids), c.decoded) << "text: \"" << Printable(c.text) << "\"";
  }
}

TEST(Qwen3Tokenizer, SpecialTokensCanBeEncodedAsText) {
  const std::string text = "<|im_start|>user\nhi<|im_end|>";
  auto parsed = Qwen3().Encode(text);
  ASSERT_FALSE(parsed.empty());
  EXPECT_EQ(parsed.front(), 151644);
  EXPECT_EQ(parsed.back(), 151645);
  auto plain = Qwen3().Encode(text, {.parse_special = false});
  for (int32_t id : plain) EXPECT_FALSE(Qwen3().IsSpecial(id)) << id;
  EXPECT_GT(plain.size(), parsed.size());
  EXPECT_EQ(Qwen3().Decode(plain), text);
  EXPECT_EQ(Qwen3().Decode(parsed), text);
  EXPECT_EQ(Qwen3().Decode(parsed, /*skip_special=*/true), "user\nhi");
}

TEST(Qwen3Tokenizer, DecodeSkipsOutOfRangeIds) {
  std::vector<int32_t> ids = {9707, -1, 1 << 30, 151669, 1879};
  EXPECT_EQ(Qwen3().Decode(ids), "Hello world");
}

TEST(Qwen3Tokenizer, InvalidUtf8RoundTripsThroughByteTokens) {
  const std::string bad = "ok \xff\xfe and \xe4\xbd";
  auto ids = Qwen3().Encode(bad);
  EXPECT_FALSE(ids.empty());
  // Decode repairs the invalid bytes; each maximal ill-formed subpart becomes one U+FFFD.
  EXPECT_EQ(Qwen3().Decode(ids), "ok \xEF\xBF\xBD\xEF\xBF\xBD and \xEF\xBF\xBD");
}

class CorpusRoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(CorpusRoundTrip, DecodeOfEncodeIsIdentity) {
  std::string text = testing::ReadOrDie(testing::SourcePath(std::string("bench/data/") + GetParam()));
  ASSERT_GT(text.size(), 100000u);
  text.resize(60000);
  while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
  if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.pop_back();
  auto ids = Qwen3().Encode(text);
  EXPECT_LT(ids.size(), text.size());
  EXPECT_EQ(Qwen3().Decode(ids), text);
}

INSTANTIATE_TEST_SUITE_P(Corpora, CorpusRoundTrip,
                         ::testing::Values("tinyshakespeare_150k.txt.gz", "verne_fr_150k.txt.gz",
                                           "three_kingdoms_zh_150k.txt.gz"));

TEST(Qwen3Tokenizer, ConcurrentEncodeMatchesSerial) {
  std::string text = testing::ReadOrDie(testing::SourcePath("bench/data/verne_fr_150k.txt.gz"));
  text.resize(20000);
  auto tok = Tokenizer::FromFile(testing::SourcePath("assets/tokenizers/qwen3/tokenizer.json.gz"));
  ASSERT_TRUE(tok.ok());
  const Tokenizer& t = **tok;  // a fresh tokenizer: its cache starts empty, so threads race to fill it
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[i] = t.Encode(text); });
  }
  for (auto& th : threads) th.join();
  auto serial = Qwen3().Encode(text);
  for (const auto& r : results) EXPECT_EQ(r, serial);
}

}  // namespace
}  // namespace arle::tokenizer
