// SentencePiece-style BPE: stories260K's tok512 through the llama2c importer's tokenizer.json and
// through FromSentencePiece, against llama2.c's own `encode` (tests/reference/tokenizer_reference.py),
// and a small hand-built tokenizer.json exercising ▁, byte fallback, Prepend/Replace and Strip.
#include <cstring>

#include "arle/io/llama2c.h"
#include "arle/tokenizer/incremental_decoder.h"
#include "arle/tokenizer/tokenizer.h"
#include "test_util.h"

namespace arle::tokenizer {
namespace {

using testing::Printable;

const std::string kSpace = "\xE2\x96\x81";  // ▁

std::vector<io::Llama2cToken> Tok512Tokens() {
  std::string bytes = testing::ReadOrDie(testing::SourcePath("assets/models/stories260K/tok512.bin"));
  auto tokens = io::ParseLlama2cTokenizer(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 512,
      "tok512.bin");
  EXPECT_TRUE(tokens.ok()) << tokens.status().ToString();
  return tokens.ok() ? *tokens : std::vector<io::Llama2cToken>();
}

std::unique_ptr<Tokenizer> Tok512FromImporterJson() {
  auto json = io::Llama2cTokenizerJson(Tok512Tokens());
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  if (!json.ok()) return nullptr;
  auto tok = Tokenizer::FromJson(*json, "tok512 tokenizer.json");
  EXPECT_TRUE(tok.ok()) << tok.status().ToString();
  return tok.ok() ? std::move(*tok) : nullptr;
}

std::unique_ptr<Tokenizer> Tok512FromScores() {
  SentencePieceVocab vocab;
  for (const auto& t : Tok512Tokens()) {
    std::string piece;
    for (char c : t.piece) {
      if (c == ' ') piece += kSpace;
      else piece += c;
    }
    vocab.pieces.push_back(piece);
    vocab.scores.push_back(t.score);
  }
  vocab.pieces[0] = "<unk>";
  vocab.pieces[1] = "<s>";
  vocab.pieces[2] = "</s>";
  vocab.unk_id = 0;
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  auto tok = Tokenizer::FromSentencePiece(vocab, "tok512.bin");
  EXPECT_TRUE(tok.ok()) << tok.status().ToString();
  return tok.ok() ? std::move(*tok) : nullptr;
}

void ExpectLlama2cCases(const Tokenizer& tok) {
  auto cases = testing::ReadGoldenCases(testing::DataPath("tokenizer/tok512_cases.json"));
  ASSERT_GE(cases.size(), 8u);
  for (const auto& c : cases) {
    auto ids = tok.Encode(c.text);
    EXPECT_EQ(ids, c.ids) << "text: \"" << Printable(c.text) << "\"";
    EXPECT_EQ(tok.Decode(ids, /*skip_special=*/true), c.text) << Printable(c.text);
  }
}

TEST(Tok512, ImporterTokenizerJsonMatchesLlama2cEncode) {
  auto tok = Tok512FromImporterJson();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_TRUE(tok->adds_bos());
  ExpectLlama2cCases(*tok);
}

TEST(Tok512, SentencePieceScoresMatchLlama2cEncode) {
  auto tok = Tok512FromScores();
  ASSERT_NE(tok, nullptr);
  ExpectLlama2cCases(*tok);
}

TEST(Tok512, ByteFallbackForCharactersOutsideTheVocabulary) {
  auto tok = Tok512FromScores();
  ASSERT_NE(tok, nullptr);
  const std::string text = "日本";  // no CJK pieces in a 512-token vocabulary
  auto ids = tok->Encode(text, {.add_special_tokens = false});
  // "▁" then the six UTF-8 bytes as <0xNN> tokens.
  ASSERT_EQ(ids.size(), 7u);
  EXPECT_EQ(tok->IdToToken(ids[1]), "<0xE6>");
  EXPECT_EQ(tok->Decode(ids), text);
  IncrementalDecoder dec(*tok);
  std::string streamed;
  for (int32_t id : ids) {
    std::string piece = dec.Push(id);
    if (!piece.empty()) EXPECT_TRUE(piece == "日" || piece == "本") << piece;
    streamed += piece;
  }
  streamed += dec.Flush();
  EXPECT_EQ(streamed, text);
}

// A small Llama-2 style tokenizer.json. Merge ranks follow the scores given to
// FromSentencePiece below, so both paths must agree.
constexpr const char* kSmallSpm = R"({
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true, "lstrip": false, "rstrip": false, "normalized": false},
    {"id": 1, "content": "<s>", "special": true, "lstrip": false, "rstrip": false, "normalized": false},
    {"id": 2, "content": "</s>", "special": true, "lstrip": false, "rstrip": false, "normalized": false}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "▁"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "fuse_unk": true,
    "byte_fallback": true, "ignore_merges": false,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xC3>": 3, "<0xA9>": 4, "<0x0A>": 5,
      "▁": 6, "h": 7, "e": 8, "l": 9, "o": 10, "w": 11, "r": 12, "d": 13,
      "▁h": 14, "ll": 15, "▁w": 16, "or": 17, "▁he": 18, "▁hell": 19, "▁hello": 20, "▁wor": 21,
      "▁world": 22, "ld": 23},
    "merges": ["▁ h", "l l", "▁ w", "o r", "▁h e", "▁he ll", "▁hell o", "▁w or", "l d", "▁wor ld"]}
})";

TEST(SmallSentencePiece, RanksAndScoresAgree) {
  auto from_json = Tokenizer::FromJson(kSmallSpm, "small.json");
  ASSERT_TRUE(from_json.ok()) << from_json.status().ToString();
  const Tokenizer& a = **from_json;
  // The same vocabulary where each merged piece scores by its merge rank.
  SentencePieceVocab vocab;
  vocab.pieces.resize(24);
  vocab.scores.assign(24, 0.0f);
  for (int id = 0; id < 24; ++id) vocab.pieces[id] = std::string(a.IdToToken(id));
  const char* merged[] = {"▁h", "ll", "▁w", "or", "▁he", "▁hell", "▁hello", "▁wor", "ld", "▁world"};
  for (int rank = 0; rank < 10; ++rank) vocab.scores[*a.TokenToId(merged[rank])] = -static_cast<float>(rank);
  vocab.unk_id = 0;
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  auto from_scores = Tokenizer::FromSentencePiece(vocab, "small scores");
  ASSERT_TRUE(from_scores.ok()) << from_scores.status().ToString();
  for (std::string text : {"hello world", "hello  world\nhello", "héllo wörld", " lead", "old", "dr"}) {
    EXPECT_EQ(a.Encode(text), (*from_scores)->Encode(text)) << text;
  }
}

TEST(SmallSentencePiece, StructureOfEncodings) {
  auto tok = Tokenizer::FromJson(kSmallSpm, "small.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const Tokenizer& t = **tok;
  // BOS from the TemplateProcessing post-processor; whole words merge to single pieces.
  auto ids = t.Encode("hello world");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(t.IdToToken(ids[1]), kSpace + "hello");
  EXPECT_EQ(t.IdToToken(ids[2]), kSpace + "world");
  // As Hugging Face: Strip only removes a space at the very start of the fused text.
  EXPECT_EQ(t.Decode(ids), "<s> hello world");
  EXPECT_EQ(t.Decode(ids, true), "hello world");
  // é is not in the vocabulary: byte fallback to <0xC3><0xA9>.
  ids = t.Encode("é", {.add_special_tokens = false});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(t.IdToToken(ids[1]), "<0xC3>");
  EXPECT_EQ(t.IdToToken(ids[2]), "<0xA9>");
  EXPECT_EQ(t.Decode(ids), "é");
  // Unknown characters without byte tokens: fused <unk>.
  ids = t.Encode("zz", {.add_special_tokens = false});
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[1], 0);
  // The leading-space strip applies to the first token only.
  for (std::string text : {"hello world", "world hello", " hello", "hello\nworld"}) {
    EXPECT_EQ(t.Decode(t.Encode(text), true), text) << text;
  }
}

}  // namespace
}  // namespace arle::tokenizer
