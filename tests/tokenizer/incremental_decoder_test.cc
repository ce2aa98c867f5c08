// IncrementalDecoder: at every split of the id stream, pushes + flush equal Decode, and no push
// returns a partial UTF-8 character (byte-level multi-byte tokens and <0xNN> byte fallback).
#include "arle/tokenizer/incremental_decoder.h"

#include "arle/tokenizer/tokenizer.h"
#include "arle/tokenizer/unicode.h"
#include "test_util.h"

namespace arle::tokenizer {
namespace {

bool IsValidUtf8(const std::string& s) { return Utf8Lossy(s) == s && Utf8SettledPrefix(s) == s.size(); }

void CheckEverySplit(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  const std::string full = tok.Decode(ids, skip_special);
  // One stream over everything: each push is whole characters, the sum is Decode.
  {
    IncrementalDecoder dec(tok, skip_special);
    std::string streamed;
    for (int32_t id : ids) {
      std::string piece = dec.Push(id);
      EXPECT_TRUE(IsValidUtf8(piece));
      streamed += piece;
      EXPECT_TRUE(full.starts_with(streamed));
    }
    streamed += dec.Flush();
    EXPECT_EQ(streamed, full);
  }
  // Two streams split at k (Flush starts a new stream).
  for (size_t k = 0; k <= ids.size(); ++k) {
    std::span<const int32_t> all(ids);
    IncrementalDecoder dec(tok, skip_special);
    std::string first;
    for (int32_t id : all.subspan(0, k)) first += dec.Push(id);
    first += dec.Flush();
    EXPECT_EQ(first, tok.Decode(all.subspan(0, k), skip_special)) << "k=" << k;
    std::string second;
    for (int32_t id : all.subspan(k)) second += dec.Push(id);
    second += dec.Flush();
    EXPECT_EQ(second, tok.Decode(all.subspan(k), skip_special)) << "k=" << k;
  }
}

TEST(IncrementalDecoder, Qwen3MultiByteCharactersAtEverySplit) {
  const Tokenizer& tok = testing::Qwen3();
  for (const std::string text :
       {"你好，世界！", "👨‍👩‍👧‍👦 family 🏳️‍🌈", "Ünïcödé ñ", "<|im_start|>user\n東京<|im_end|>",
        "mixed中文and English"}) {
    auto ids = tok.Encode(text);
    EXPECT_EQ(tok.Decode(ids), text);
    CheckEverySplit(tok, ids, false);
    CheckEverySplit(tok, ids, true);
  }
}

TEST(IncrementalDecoder, HoldsPartialCharacters) {
  const Tokenizer& tok = testing::Qwen3();
  // The single-byte tokens of "€" (E2 82 AC) one at a time.
  std::vector<int32_t> ids;
  for (uint8_t b : {0xE2, 0x82, 0xAC}) {
    std::string ch;
    AppendCodePoint(ByteToCodePoint(b), &ch);
    auto id = tok.TokenToId(ch);
    ASSERT_TRUE(id.has_value());
    ids.push_back(*id);
  }
  IncrementalDecoder dec(tok);
  EXPECT_EQ(dec.Push(ids[0]), "");
  EXPECT_EQ(dec.Push(ids[1]), "");
  EXPECT_EQ(dec.pending_bytes(), 2u);
  EXPECT_EQ(dec.Push(ids[2]), "€");
  // An interrupted sequence is released as U+FFFD as soon as it cannot complete.
  EXPECT_EQ(dec.Push(ids[0]), "");
  EXPECT_EQ(dec.Push(*tok.TokenToId("a")), "\xEF\xBF\xBD" "a");
  // A trailing incomplete sequence is replaced at Flush.
  EXPECT_EQ(dec.Push(ids[0]), "");
  EXPECT_EQ(dec.Flush(), "\xEF\xBF\xBD");
  CheckEverySplit(tok, {ids[0], ids[1], ids[2], ids[0], ids[1], 64, ids[2]}, false);
}

TEST(IncrementalDecoder, SentencePieceByteFallbackAndLeadingSpace) {
  SentencePieceVocab vocab;
  // pieces: <unk> <s> </s> <0x00>..<0xFF> ▁ a b ▁a
  vocab.pieces = {"<unk>", "<s>", "</s>"};
  static const char* kHex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) vocab.pieces.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
  for (const char* p : {"\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a"}) vocab.pieces.push_back(p);
  vocab.scores.assign(vocab.pieces.size(), 0.0f);
  vocab.scores.back() = -1.0f;
  vocab.unk_id = 0;
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  auto tok = Tokenizer::FromSentencePiece(vocab, "tiny spm");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  for (const std::string text : {"a b", "é ab", "日本 a", " a", "😀a😀"}) {
    auto ids = (*tok)->Encode(text);
    EXPECT_EQ((*tok)->Decode(ids, true), text);
    CheckEverySplit(**tok, ids, true);
    CheckEverySplit(**tok, ids, false);
  }
  // Continue(prompt): the output decoded after a prompt is exactly Decode(prompt + output) minus
  // Decode(prompt) — the "▁" of the first output token stays a space (a fresh stream strips it),
  // whenever the prompt ends on a character boundary.
  for (const std::string text : {"a b a", "ab a", " a a", "b \xC3\xA9 a"}) {
    const std::vector<int32_t> ids = (*tok)->Encode(text);
    for (size_t k = 1; k < ids.size(); ++k) {
      std::span<const int32_t> all(ids);
      IncrementalDecoder dec(**tok, true);
      dec.Continue(all.subspan(0, k));
      std::string out;
      for (int32_t id : all.subspan(k)) out += dec.Push(id);
      out += dec.Flush();
      const std::string prompt = (*tok)->Decode(all.subspan(0, k), true);
      // A prompt ending inside a byte-fallback character has no clean split; skip it.
      if (prompt.find("\xEF\xBF\xBD") != std::string::npos) continue;
      EXPECT_EQ(prompt + out, (*tok)->Decode(ids, true)) << text << " k=" << k;
    }
  }
}

}  // namespace
}  // namespace arle::tokenizer
