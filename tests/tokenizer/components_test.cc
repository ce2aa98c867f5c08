// Component coverage through the fuzz seed tokenizers (fuzz/corpus/tokenizer_json/): Split with
// String patterns and MergedWithPrevious, Metaspace pre-tokenizer/decoder, ignore_merges,
// Sequence post-processors, ByteLevel add_prefix_space, lstrip/rstrip added tokens.
#include "arle/tokenizer/incremental_decoder.h"
#include "arle/tokenizer/tokenizer.h"
#include "test_util.h"

namespace arle::tokenizer {
namespace {

std::unique_ptr<Tokenizer> Seed(const std::string& name) {
  auto tok = Tokenizer::FromFile(testing::SourcePath("fuzz/corpus/tokenizer_json/" + name));
  EXPECT_TRUE(tok.ok()) << tok.status().ToString();
  return tok.ok() ? std::move(*tok) : nullptr;
}

std::string StreamDecode(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  IncrementalDecoder dec(tok);
  std::string out;
  for (int32_t id : ids) out += dec.Push(id);
  return out + dec.Flush();
}

TEST(Components, ByteLevelSeedsRoundTrip) {
  for (const char* name : {"qwen_like.json", "llama3_like.json", "gpt2_like.json"}) {
    auto tok = Seed(name);
    ASSERT_NE(tok, nullptr) << name;
    for (std::string text : {"the cat in the hat", "你好  \n\n x", "tabs\tand 12345 digits", "über"}) {
      auto ids = tok->Encode(text, {.add_special_tokens = false});
      std::string expected = text;
      if (std::string(name) == "gpt2_like.json") expected = " " + text;  // add_prefix_space
      EXPECT_EQ(tok->Decode(ids), expected) << name << ": " << text;
      EXPECT_EQ(StreamDecode(*tok, ids), expected) << name;
    }
  }
}

TEST(Components, TemplateInSequencePostProcessorAddsBos) {
  auto tok = Seed("llama3_like.json");
  ASSERT_NE(tok, nullptr);
  auto bos = tok->TokenToId("<|begin_of_text|>");
  ASSERT_TRUE(bos.has_value());
  EXPECT_EQ(tok->bos_id(), bos);
  auto ids = tok->Encode("the");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), *bos);
  ASSERT_TRUE(tok->TokenToId("\xC4\xA0the").has_value());  // "Ġthe"
  EXPECT_EQ(tok->Encode(" the", {.add_special_tokens = false}),
            std::vector<int32_t>{*tok->TokenToId("\xC4\xA0the")});
}

TEST(Components, AddedTokenStripFlags) {
  auto tok = Seed("qwen_like.json");
  ASSERT_NE(tok, nullptr);
  const int32_t end = *tok->TokenToId("<|im_end|>");  // rstrip: true
  const int32_t think = *tok->TokenToId("<think>");   // lstrip: true, not special
  auto ids = tok->Encode("a<|im_end|>   b");
  // The spaces after <|im_end|> are absorbed: "a", <|im_end|>, "b".
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], end);
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{ids[2]}), "b");
  ids = tok->Encode("a   <think>b", {.parse_special = false});
  ASSERT_EQ(ids.size(), 3u);  // non-special tokens still match with parse_special = false
  EXPECT_EQ(ids[1], think);
  EXPECT_FALSE(tok->IsSpecial(think));
}

TEST(Components, MetaspaceAndStringSplit) {
  auto tok = Seed("metaspace.json");
  ASSERT_NE(tok, nullptr);
  // "ab,a b": Split on "," merged with the previous piece -> "ab,", "a b"; Metaspace prepends ▁
  // to the piece at offset 0 only (prepend_scheme "first") and splits before each ▁ ->
  // "▁ab,", "a", "▁b"; the vocabulary has "▁ab" but no "▁b".
  auto ids = tok->Encode("ab,a b");
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.emplace_back(tok->IdToToken(id));
  EXPECT_EQ(pieces, (std::vector<std::string>{"\xE2\x96\x81" "ab", ",", "a", "\xE2\x96\x81", "b"}));
  EXPECT_EQ(tok->Decode(ids), "ab,a b");
  EXPECT_EQ(StreamDecode(*tok, ids), "ab,a b");
}

TEST(Components, Tok512SeedMatchesLlama2c) {
  auto tok = Seed("tok512_spm.json");
  ASSERT_NE(tok, nullptr);
  for (const auto& c : testing::ReadGoldenCases(testing::DataPath("tokenizer/tok512_cases.json"))) {
    EXPECT_EQ(tok->Encode(c.text), c.ids) << c.text;
  }
}

}  // namespace
}  // namespace arle::tokenizer
