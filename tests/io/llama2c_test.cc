// Tests of the llama2.c file formats: checkpoint headers (bad dimensions, random headers), the
// weight layout of a synthetic checkpoint, tokenizer.bin parsing under corruption, and the
// tokenizer.json / tokenizer_config.json written for a llama2.c vocabulary. The import into a
// model directory is tested with the llama family (tests/models/llama2c_import_test.cc).
#include "arle/io/llama2c.h"

#include <gtest/gtest.h>

#include "tests/common/llama2c_files.h"
#include <nlohmann/json.hpp>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace arle::io {
namespace {

using test::Bytes;
using test::kStoriesBin;
using test::kTokBin;
using test::ReadFileOrFail;
using test::SyntheticLlama2c;

TEST(Llama2cTest, MergesFollowScoreOrderWithAllSplits) {
  SyntheticLlama2c s;
  auto parsed = ParseLlama2cTokenizer(Bytes(s.Tokenizer()), s.vocab, "t.bin");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  auto json = Llama2cTokenizerJson(*parsed);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  auto doc = nlohmann::json::parse(*json);
  // Pieces (HF spelling) with scores -id: "▁a"(6) "ab"(7) "▁ab"(8: "▁"+"ab", "▁a"+"b")
  // "▁c"(10) "bc"(11) "abc"(12: "a"+"bc", "ab"+"c"). Splits of one piece are ordered by ids.
  const std::vector<std::string> want = {
      "\xe2\x96\x81 a", "a b",  "\xe2\x96\x81 ab", "\xe2\x96\x81" "a b",
      "\xe2\x96\x81 c", "b c",  "a bc",            "ab c"};
  EXPECT_EQ(doc["model"]["merges"].get<std::vector<std::string>>(), want);
}

TEST(Llama2cTest, BadDimsAreCleanErrors) {
  const std::string model = ReadFileOrFail(kStoriesBin);
  auto with = [&](int field, int32_t value) {
    std::string m = model;
    std::memcpy(m.data() + 4 * field, &value, 4);
    return m;
  };
  struct Case {
    int field;
    int32_t value;
  };
  const Case cases[] = {
      {0, 0},        {0, -64},      {1, 0},         {2, -1},         {3, 0},
      {3, 7},        {3, 64},       {4, 0},         {4, 3},          {4, 16},
      {5, 0},        {6, 0},        {6, -5},        {0, 0x7fffffff}, {1, 0x7fffffff},
      {5, INT32_MIN}, {2, 1 << 20}, {6, 1 << 20}};
  for (const Case& c : cases) {
    auto st = ParseLlama2cHeader(Bytes(with(c.field, c.value)), "bad.bin");
    EXPECT_FALSE(st.ok()) << "field " << c.field << " = " << c.value;
    EXPECT_NE(st.status().message().find("bad.bin"), std::string::npos) << st.status().ToString();
  }
  // llama2.c export version >= 1 (magic "ak42").
  std::string v1 = model;
  const uint32_t magic = 0x616b3432;
  std::memcpy(v1.data(), &magic, 4);
  auto st = ParseLlama2cHeader(Bytes(v1), "v1.bin");
  EXPECT_EQ(st.status().code(), core::StatusCode::kUnimplemented);
  // The valid header parses.
  auto ok = ParseLlama2cHeader(Bytes(model), "stories260K.bin");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->dim, 64);
  EXPECT_EQ(ok->hidden_dim, 172);
  EXPECT_EQ(ok->n_layers, 5);
  EXPECT_EQ(ok->n_heads, 8);
  EXPECT_EQ(ok->n_kv_heads, 4);
  EXPECT_EQ(ok->vocab_size, 512);
  EXPECT_EQ(ok->seq_len, 512);
  EXPECT_TRUE(ok->shared_classifier);
}

TEST(Llama2cTest, RandomHeadersNeverCrash) {
  std::mt19937 rng(1234);
  const std::string model = ReadFileOrFail(kStoriesBin);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string m = model.substr(0, 28 + (rng() % 64));
    const int field = static_cast<int>(rng() % 7);
    const int32_t value = static_cast<int32_t>(rng());
    std::memcpy(m.data() + 4 * field, &value, 4);
    auto st = ParseLlama2cHeader(Bytes(m), "fuzz.bin");
    EXPECT_FALSE(st.ok());  // never the right size
  }
}

TEST(Llama2cTest, RandomTokenizerCorruptionNeverCrashes) {
  const std::string tok = ReadFileOrFail(kTokBin);
  std::mt19937 rng(99);
  int n_ok = 0;
  for (int iter = 0; iter < 500; ++iter) {
    std::string t = tok;
    for (int k = 0; k < 4; ++k) t[rng() % t.size()] = static_cast<char>(rng());
    if (rng() % 2) t.resize(rng() % t.size());
    auto parsed = ParseLlama2cTokenizer(Bytes(t), 512, "fuzz_tok.bin");
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("fuzz_tok.bin"), std::string::npos);
      continue;
    }
    ++n_ok;  // only scores or piece bytes were hit: the JSON writer must cope (or refuse)
    auto json = Llama2cTokenizerJson(*parsed);
    if (json.ok()) EXPECT_NO_THROW((void)nlohmann::json::parse(*json));
  }
  EXPECT_GT(n_ok, 0);
}

TEST(Llama2cTest, WeightArraysFollowTheFileOrder) {
  for (bool shared : {true, false}) {
    SCOPED_TRACE(shared ? "shared classifier" : "separate wcls");
    SyntheticLlama2c s;
    s.shared = shared;
    const std::string model = s.Model();
    auto c = ParseLlama2cHeader(Bytes(model), "m.bin");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    const Llama2cWeights w = Llama2cWeightArrays(*c, Bytes(model));
    // Float offsets of the arrays in the synthetic file (value at offset i is i * 0.001).
    const int64_t dim = 8, hd = 4, q_dim = 8, kv_dim = 4, vocab = 16, ff = 12, layers = 2;
    const int64_t rms_att = vocab * dim, wq = rms_att + layers * dim;
    const int64_t wk = wq + layers * q_dim * dim, wv = wk + layers * kv_dim * dim;
    const int64_t wo = wv + layers * kv_dim * dim, rms_ffn = wo + layers * dim * q_dim;
    const int64_t w1 = rms_ffn + layers * dim, w2 = w1 + layers * ff * dim;
    const int64_t w3 = w2 + layers * dim * ff, rms_final = w3 + layers * ff * dim;
    const int64_t wcls = rms_final + dim + s.seq_len * hd;  // after freq_cis_real + imag
    const auto* base = reinterpret_cast<const float*>(model.data() + kLlama2cHeaderBytes);
    EXPECT_EQ(w.token_embedding, base);
    EXPECT_EQ(w.rms_att, base + rms_att);
    EXPECT_EQ(w.wq, base + wq);
    EXPECT_EQ(w.wk, base + wk);
    EXPECT_EQ(w.wv, base + wv);
    EXPECT_EQ(w.wo, base + wo);
    EXPECT_EQ(w.rms_ffn, base + rms_ffn);
    EXPECT_EQ(w.w1, base + w1);
    EXPECT_EQ(w.w2, base + w2);
    EXPECT_EQ(w.w3, base + w3);
    EXPECT_EQ(w.rms_final, base + rms_final);
    EXPECT_EQ(w.wcls, shared ? nullptr : base + wcls);
    EXPECT_EQ(w.rms_final[dim - 1], static_cast<float>(rms_final + dim - 1) * 0.001f);
  }
}

TEST(Llama2cTest, TokenizerConfigNamesTheSpecialTokens) {
  const auto config = nlohmann::json::parse(Llama2cTokenizerConfigJson(512));
  EXPECT_EQ(config["bos_token"], "<s>");
  EXPECT_EQ(config["eos_token"], "</s>");
  EXPECT_EQ(config["unk_token"], "<unk>");
  EXPECT_EQ(config["add_bos_token"], true);
  EXPECT_EQ(config["model_max_length"], 512);
  EXPECT_EQ(config["added_tokens_decoder"]["1"]["content"], "<s>");
}

}  // namespace
}  // namespace arle::io
