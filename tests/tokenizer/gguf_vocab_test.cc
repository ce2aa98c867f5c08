// GGUF vocabularies: llama.cpp's GPT-2 vocab file (gzip'd fixture) through FromGguf against its
// test vectors, and clean errors for GGUF files without a usable vocabulary.
#include "arle/io/gguf.h"
#include "arle/tokenizer/incremental_decoder.h"
#include "arle/tokenizer/tokenizer.h"
#include "test_util.h"

namespace arle::tokenizer {
namespace {

TEST(GgufVocab, Gpt2VectorsFromLlamaCpp) {
  const std::string bytes = testing::ReadOrDie(testing::DataPath("tokenizer/ggml-vocab-gpt-2.gguf.gz"));
  auto gguf = io::GgufFile::Parse(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      "ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  auto tok = Tokenizer::FromGguf(*gguf);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ((*tok)->vocab_size(), 50257);
  EXPECT_EQ((*tok)->bos_id(), 50256);
  auto cases = testing::ReadLlamaCppVectors(testing::DataPath("tokenizer/ggml-vocab-gpt-2.gguf.inp"),
                                            testing::DataPath("tokenizer/ggml-vocab-gpt-2.gguf.out"));
  ASSERT_EQ(cases.size(), 46u);
  int matched = 0;
  for (const auto& c : cases) {
    auto ids = (*tok)->Encode(c.text, {.add_special_tokens = false, .parse_special = false});
    EXPECT_EQ(ids, c.ids) << "text: \"" << testing::Printable(c.text) << "\"";
    matched += ids == c.ids;
    EXPECT_EQ((*tok)->Decode(ids), c.text);
  }
  EXPECT_EQ(matched, 46);
}

TEST(GgufVocab, MissingVocabularyIsAnError) {
  io::GgufWriter writer;
  writer.AddString("general.architecture", "llama");
  const std::string path = ::testing::TempDir() + "/no_vocab.gguf";
  ASSERT_TRUE(writer.Write(path).ok());
  auto gguf = io::GgufFile::Open(path);
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  auto tok = Tokenizer::FromGguf(*gguf);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("no_vocab.gguf"), std::string::npos) << tok.status().ToString();
}

TEST(GgufVocab, UnknownModelAndPreAreUnimplemented) {
  const std::string path = ::testing::TempDir() + "/odd_vocab.gguf";
  for (auto [model, pre] : {std::pair<const char*, const char*>{"bert", "default"}, {"gpt2", "chatglm-bpe"}}) {
    io::GgufWriter writer;
    writer.AddString("tokenizer.ggml.model", model);
    writer.AddString("tokenizer.ggml.pre", pre);
    writer.AddStringArray("tokenizer.ggml.tokens", {"a", "b", "ab"});
    writer.AddStringArray("tokenizer.ggml.merges", {"a b"});
    ASSERT_TRUE(writer.Write(path).ok());
    auto gguf = io::GgufFile::Open(path);
    ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
    auto tok = Tokenizer::FromGguf(*gguf);
    ASSERT_FALSE(tok.ok()) << model << " " << pre;
    EXPECT_EQ(tok.status().code(), core::StatusCode::kUnimplemented) << tok.status().ToString();
  }
}

TEST(GgufVocab, LlamaSentencePieceVocabulary) {
  // A SentencePiece "llama" vocabulary written to GGUF must encode as FromSentencePiece does.
  SentencePieceVocab vocab;
  vocab.pieces = {"<unk>", "<s>", "</s>", "<0x0A>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab"};
  vocab.scores = {0, 0, 0, 0, -1, -2, -3, -4, -5};
  vocab.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl, TokenType::kByte,
                 TokenType::kNormal, TokenType::kNormal, TokenType::kNormal, TokenType::kNormal,
                 TokenType::kNormal};
  vocab.unk_id = 0;
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  auto direct = Tokenizer::FromSentencePiece(vocab, "direct");
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  io::GgufWriter writer;
  writer.AddString("tokenizer.ggml.model", "llama");
  writer.AddStringArray("tokenizer.ggml.tokens", vocab.pieces);
  writer.AddF32Array("tokenizer.ggml.scores", vocab.scores);
  std::vector<int32_t> types;
  for (auto t : vocab.types) types.push_back(static_cast<int32_t>(t));
  writer.AddI32Array("tokenizer.ggml.token_type", types);
  writer.AddU32("tokenizer.ggml.unknown_token_id", 0);
  writer.AddU32("tokenizer.ggml.bos_token_id", 1);
  writer.AddU32("tokenizer.ggml.eos_token_id", 2);
  const std::string path = ::testing::TempDir() + "/spm_vocab.gguf";
  ASSERT_TRUE(writer.Write(path).ok());
  auto gguf = io::GgufFile::Open(path);
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  auto tok = Tokenizer::FromGguf(*gguf);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  for (std::string text : {"ab a\nb", "a", "aab ba", "</s>ab"}) {
    EXPECT_EQ((*tok)->Encode(text), (*direct)->Encode(text)) << text;
    if (text[0] != '<') EXPECT_EQ((*tok)->Decode((*tok)->Encode(text), true), text) << text;
  }
  EXPECT_TRUE((*tok)->IsSpecial(2));
  EXPECT_EQ((*tok)->Encode("</s>", {.add_special_tokens = false}), (std::vector<int32_t>{2}));
}

}  // namespace
}  // namespace arle::tokenizer
