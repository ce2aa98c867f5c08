// Tests of the llama2.c importer: stories260K against an independent HF conversion, tok512's
// tokenizer.json against a Python port of llama2.c's encode, and corrupt/truncated inputs.
#include "arle/io/llama2c.h"

#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/io/compressed.h"
#include "arle/io/hf_config.h"
#include "arle/io/safetensors.h"
#ifdef ARLE_TEST_HAVE_TOKENIZER
#include "arle/tokenizer/tokenizer.h"
#endif

namespace arle::io {
namespace {

namespace fs = std::filesystem;

const std::string kStoriesBin = std::string(ARLE_SOURCE_DIR) + "/assets/models/stories260K/stories260K.bin";
const std::string kTokBin = std::string(ARLE_SOURCE_DIR) + "/assets/models/stories260K/tok512.bin";
const std::string kDataDir = std::string(ARLE_TEST_DATA_DIR) + "/io";

using ::arle::test::TempDir;

std::string ReadOrDie(const std::string& path) {
  auto data = core::ReadFile(path);
  EXPECT_TRUE(data.ok()) << data.status().ToString();
  return data.ok() ? *data : std::string();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

void AppendI32(std::string* s, int32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }
void AppendF32(std::string* s, float v) { s->append(reinterpret_cast<const char*>(&v), 4); }

// A synthetic llama2.c checkpoint: dim 8, hidden 12, 2 layers, 2 heads (head_dim 4), 1 kv head,
// vocab 16, seq_len 4; value i of the file's float array is i * 0.001 so every weight is unique.
struct Synthetic {
  int32_t dim = 8, hidden = 12, layers = 2, heads = 2, kv_heads = 1, vocab = 16, seq_len = 4;
  bool shared = true;

  int64_t NumFloats() const {
    const int64_t hd = dim / heads, q = heads * hd, kv = kv_heads * hd;
    return int64_t{vocab} * dim + layers * (2 * dim + dim * q + 2 * dim * kv + q * dim +
                                            3 * int64_t{dim} * hidden) +
           dim + seq_len * hd + (shared ? 0 : int64_t{vocab} * dim);
  }
  std::string Model() const {
    std::string s;
    for (int32_t v : {dim, hidden, layers, heads, kv_heads, shared ? vocab : -vocab, seq_len}) {
      AppendI32(&s, v);
    }
    for (int64_t i = 0; i < NumFloats(); ++i) AppendF32(&s, static_cast<float>(i) * 0.001f);
    return s;
  }
  std::string Tokenizer() const {
    std::string s;
    AppendI32(&s, 8);
    const char* pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", " a", "ab",
                            " ab", "c", " c", "bc", "abc", "d", "\xc3\xa9", "x"};
    for (int i = 0; i < vocab; ++i) {
      AppendF32(&s, i < 3 ? 0.0f : -static_cast<float>(i));
      AppendI32(&s, static_cast<int32_t>(std::strlen(pieces[i])));
      s += pieces[i];
    }
    return s;
  }
};

// --- the real stories260K ---------------------------------------------------------------------

TEST(Llama2cTest, Stories260KMatchesIndependentHfConversion) {
  TempDir out;
  core::Status st = ConvertLlama2c(kStoriesBin, kTokBin, out.path());
  ASSERT_TRUE(st.ok()) << st.ToString();

  auto got = SafetensorsFile::Open(out.File("model.safetensors"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto fixture_bytes = ReadMaybeGzipFile(kDataDir + "/stories260K_hf.safetensors.gz");
  ASSERT_TRUE(fixture_bytes.ok()) << fixture_bytes.status().ToString();
  auto want = SafetensorsFile::Parse(Bytes(*fixture_bytes), "stories260K_hf.safetensors");
  ASSERT_TRUE(want.ok()) << want.status().ToString();

  std::set<std::string> got_names, want_names;
  for (const auto& e : got->entries()) got_names.insert(e.name);
  for (const auto& e : want->entries()) want_names.insert(e.name);
  EXPECT_EQ(got_names, want_names);
  EXPECT_EQ(want_names.size(), 1u + 5 * 9 + 1);  // embed, 5 layers x 9, norm (tied head)
  for (const auto& w : want->entries()) {
    const SafetensorsEntry* g = got->Find(w.name);
    ASSERT_NE(g, nullptr) << w.name;
    EXPECT_EQ(g->dtype, w.dtype) << w.name;
    EXPECT_EQ(g->shape, w.shape) << w.name;
    ASSERT_EQ(g->nbytes, w.nbytes) << w.name;
    auto gt = got->GetTensor(w.name);
    auto wt = want->GetTensor(w.name);
    ASSERT_TRUE(gt.ok() && wt.ok()) << w.name;
    EXPECT_EQ(std::memcmp(gt->data(), wt->data(), w.nbytes), 0) << w.name << " differs";
  }

  // config.json: the fields the fixture's config has.
  auto config = LoadHfModelConfig(out.path());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto fixture_config = ParseHfConfig(ReadOrDie(kDataDir + "/stories260K_hf_config.json"),
                                      "stories260K_hf_config.json");
  ASSERT_TRUE(fixture_config.ok()) << fixture_config.status().ToString();
  EXPECT_EQ(config->hf_architecture, "LlamaForCausalLM");
  EXPECT_EQ(config->n_vocab, fixture_config->n_vocab);
  EXPECT_EQ(config->n_embd, fixture_config->n_embd);
  EXPECT_EQ(config->n_layer, fixture_config->n_layer);
  EXPECT_EQ(config->n_head, fixture_config->n_head);
  EXPECT_EQ(config->n_head_kv, fixture_config->n_head_kv);
  EXPECT_EQ(config->head_dim, fixture_config->head_dim);
  EXPECT_EQ(config->n_ff, fixture_config->n_ff);
  EXPECT_EQ(config->n_ctx_train, fixture_config->n_ctx_train);
  EXPECT_DOUBLE_EQ(config->norm_eps, fixture_config->norm_eps);
  EXPECT_DOUBLE_EQ(config->rope_theta, fixture_config->rope_theta);
  EXPECT_EQ(config->tie_word_embeddings, fixture_config->tie_word_embeddings);
  EXPECT_EQ(config->bos_token_id, 1);
  EXPECT_EQ(config->eos_token_ids, std::vector<int64_t>{2});

  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(core::FileExists(out.File(f))) << f;
  }
  auto tok_config = nlohmann::json::parse(ReadOrDie(out.File("tokenizer_config.json")));
  EXPECT_EQ(tok_config["bos_token"], "<s>");
  EXPECT_EQ(tok_config["eos_token"], "</s>");
}

TEST(Llama2cTest, Tok512TokenizerJsonShape) {
  TempDir out;
  ASSERT_TRUE(ConvertLlama2c(kStoriesBin, kTokBin, out.path()).ok());
  auto doc = nlohmann::json::parse(ReadOrDie(out.File("tokenizer.json")));
  const auto& model = doc["model"];
  EXPECT_EQ(model["type"], "BPE");
  EXPECT_EQ(model["byte_fallback"], true);
  EXPECT_EQ(model["unk_token"], "<unk>");
  ASSERT_EQ(model["vocab"].size(), 512u);
  EXPECT_EQ(model["vocab"]["<unk>"], 0);
  EXPECT_EQ(model["vocab"]["<s>"], 1);
  EXPECT_EQ(model["vocab"]["</s>"], 2);
  EXPECT_EQ(model["vocab"]["<0x00>"], 3);
  EXPECT_EQ(model["vocab"]["<0xFF>"], 258);
  EXPECT_EQ(model["vocab"]["\xe2\x96\x81t"], 259);  // llama2.c's " t" is "▁t" again
  // The first merge is the best-scoring piece's: "▁t" (score -0) = "▁" + "t".
  ASSERT_GT(model["merges"].size(), 100u);
  EXPECT_EQ(model["merges"][0], "\xe2\x96\x81 t");
  EXPECT_EQ(doc["added_tokens"].size(), 3u);
  EXPECT_EQ(doc["normalizer"]["normalizers"][0]["type"], "Prepend");
  EXPECT_EQ(doc["decoder"]["decoders"][3]["type"], "Strip");
}

#ifdef ARLE_TEST_HAVE_TOKENIZER
// Expected ids come from tests/reference/llama2c_reference.py (a port of llama2.c's encode).
TEST(Llama2cTest, Tok512EncodesLikeLlama2c) {
  TempDir out;
  ASSERT_TRUE(ConvertLlama2c(kStoriesBin, kTokBin, out.path()).ok());
  auto tok = tokenizer::Tokenizer::FromFile(out.File("tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto cases = nlohmann::json::parse(ReadOrDie(kDataDir + "/tok512_cases.json"));
  ASSERT_GE(cases["cases"].size(), 15u);
  tokenizer::EncodeOptions plain;
  plain.add_special_tokens = false;
  for (const auto& c : cases["cases"]) {
    const std::string text = c["text"];
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ((*tok)->Encode(text, plain), want) << "text: " << text;
    EXPECT_EQ((*tok)->Decode(want), text) << "round trip of: " << text;
    std::vector<int32_t> with_bos = (*tok)->Encode(text);
    ASSERT_FALSE(with_bos.empty());
    EXPECT_EQ(with_bos[0], 1) << "BOS prefix for: " << text;
  }
}
#endif

// --- synthetic checkpoints: layout, permutation, unshared classifier ---------------------------

TEST(Llama2cTest, PermutesQkRowsToRotateHalfAndWritesUnsharedHead) {
  Synthetic s;
  s.shared = false;
  TempDir dir;
  WriteBytes(dir.File("m.bin"), s.Model());
  WriteBytes(dir.File("t.bin"), s.Tokenizer());
  core::Status st = ConvertLlama2c(dir.File("m.bin"), dir.File("t.bin"), dir.File("out"));
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto f = SafetensorsFile::Open(dir.File("out/model.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();

  // Float offsets of the arrays in the synthetic file (value at offset i is i * 0.001).
  const int64_t dim = 8, hd = 4, q_dim = 8, kv_dim = 4, vocab = 16, ff = 12, layers = 2;
  const int64_t embed = 0, rms_att = embed + vocab * dim, wq = rms_att + layers * dim;
  const int64_t wk = wq + layers * q_dim * dim, wv = wk + layers * kv_dim * dim;
  const int64_t wo = wv + layers * kv_dim * dim, rms_ffn = wo + layers * dim * q_dim;
  const int64_t w1 = rms_ffn + layers * dim, w2 = w1 + layers * ff * dim, w3 = w2 + layers * dim * ff;
  const int64_t rms_final = w3 + layers * ff * dim, wcls = rms_final + dim + 4 * hd;
  auto at = [](int64_t i) { return static_cast<float>(i) * 0.001f; };
  auto tensor = [&](const std::string& name) -> const float* {
    auto t = f->GetTensor(name);
    EXPECT_TRUE(t.ok()) << name;
    return t.ok() ? static_cast<const float*>(t->data()) : nullptr;
  };

  const int64_t l = 1;  // the second layer, so per-layer strides are exercised
  const float* q = tensor("model.layers.1.self_attn.q_proj.weight");
  const float* k = tensor("model.layers.1.self_attn.k_proj.weight");
  ASSERT_NE(q, nullptr);
  ASSERT_NE(k, nullptr);
  // HF row h*hd + j*hd/2 + i is llama2.c row h*hd + 2i + j.
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        for (int64_t c = 0; c < dim; ++c) {
          const int64_t src_row = h * hd + 2 * i + j, dst_row = h * hd + j * hd / 2 + i;
          EXPECT_EQ(q[dst_row * dim + c], at(wq + l * q_dim * dim + src_row * dim + c));
          if (h == 0) {
            EXPECT_EQ(k[dst_row * dim + c], at(wk + l * kv_dim * dim + src_row * dim + c));
          }
        }
      }
    }
  }
  const float* v = tensor("model.layers.1.self_attn.v_proj.weight");
  const float* o = tensor("model.layers.1.self_attn.o_proj.weight");
  const float* gate = tensor("model.layers.1.mlp.gate_proj.weight");
  const float* down = tensor("model.layers.1.mlp.down_proj.weight");
  const float* up = tensor("model.layers.1.mlp.up_proj.weight");
  const float* norm = tensor("model.norm.weight");
  const float* ffn_norm = tensor("model.layers.1.post_attention_layernorm.weight");
  const float* head = tensor("lm_head.weight");
  ASSERT_TRUE(v && o && gate && down && up && norm && ffn_norm && head);
  EXPECT_EQ(v[5], at(wv + l * kv_dim * dim + 5));
  EXPECT_EQ(o[7], at(wo + l * dim * q_dim + 7));
  EXPECT_EQ(gate[3], at(w1 + l * ff * dim + 3));
  EXPECT_EQ(down[3], at(w2 + l * dim * ff + 3));
  EXPECT_EQ(up[3], at(w3 + l * ff * dim + 3));
  EXPECT_EQ(ffn_norm[2], at(rms_ffn + l * dim + 2));
  EXPECT_EQ(norm[0], at(rms_final));
  EXPECT_EQ(head[0], at(wcls));
  EXPECT_EQ(head[vocab * dim - 1], at(wcls + vocab * dim - 1));
  auto shape = f->GetTensor("model.layers.1.mlp.down_proj.weight");
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(shape->dim(0), dim);
  EXPECT_EQ(shape->dim(1), ff);

  auto config = LoadHfModelConfig(dir.File("out"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_EQ(config->n_head_kv, 1);
  EXPECT_EQ(config->n_ff, ff);
}

TEST(Llama2cTest, MergesFollowScoreOrderWithAllSplits) {
  Synthetic s;
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

// --- bad input ---------------------------------------------------------------------------------

void ExpectErrorNaming(const core::Status& st, const std::string& file) {
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(file), std::string::npos) << st.ToString();
}

TEST(Llama2cTest, EveryHeaderTruncationIsACleanError) {
  TempDir dir;
  const std::string model = ReadOrDie(kStoriesBin);
  ASSERT_GT(model.size(), 28u);
  const std::string path = dir.File("trunc.bin");
  for (size_t n = 0; n <= 28; ++n) {
    WriteBytes(path, model.substr(0, n));
    core::Status st = ConvertLlama2c(path, kTokBin, dir.File("out"));
    ExpectErrorNaming(st, path);
    EXPECT_EQ(st.code(), core::StatusCode::kDataLoss) << n << ": " << st.ToString();
  }
  for (size_t n : {size_t{29}, model.size() / 2, model.size() - 4, model.size() - 1}) {
    WriteBytes(path, model.substr(0, n));
    core::Status st = ConvertLlama2c(path, kTokBin, dir.File("out"));
    ExpectErrorNaming(st, path);
    EXPECT_NE(st.message().find("size mismatch"), std::string::npos) << st.ToString();
  }
  WriteBytes(path, model + std::string(1, '\0'));
  ExpectErrorNaming(ConvertLlama2c(path, kTokBin, dir.File("out")), path);
  EXPECT_FALSE(fs::exists(dir.File("out/model.safetensors")));
}

TEST(Llama2cTest, BadDimsAreCleanErrors) {
  const std::string model = ReadOrDie(kStoriesBin);
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
  const std::string model = ReadOrDie(kStoriesBin);
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
  const std::string tok = ReadOrDie(kTokBin);
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

TEST(Llama2cTest, BadTokenizersAreCleanErrors) {
  const std::string tok = ReadOrDie(kTokBin);
  TempDir dir;
  const std::string path = dir.File("tok.bin");
  // Truncations: inside max_token_length, inside a score/length, inside a piece, the last byte.
  for (size_t n : {size_t{0}, size_t{3}, size_t{4}, size_t{9}, size_t{14}, tok.size() / 2,
                   tok.size() - 1}) {
    WriteBytes(path, tok.substr(0, n));
    core::Status st = ConvertLlama2c(kStoriesBin, path, dir.File("out"));
    ExpectErrorNaming(st, path);
    EXPECT_EQ(st.code(), core::StatusCode::kDataLoss) << n << ": " << st.ToString();
  }
  WriteBytes(path, tok + "xx");  // trailing bytes: more tokens than the model's vocab
  ExpectErrorNaming(ConvertLlama2c(kStoriesBin, path, dir.File("out")), path);
  std::string neg = tok;
  const int32_t bad_len = -3;
  std::memcpy(neg.data() + 8, &bad_len, 4);  // length of token 0
  ExpectErrorNaming(ConvertLlama2c(kStoriesBin, path + ".missing", dir.File("out")),
                    path + ".missing");
  WriteBytes(path, neg);
  ExpectErrorNaming(ConvertLlama2c(kStoriesBin, path, dir.File("out")), path);
  std::string big = tok;
  const int32_t big_len = 1000;
  std::memcpy(big.data() + 8, &big_len, 4);
  WriteBytes(path, big);
  ExpectErrorNaming(ConvertLlama2c(kStoriesBin, path, dir.File("out")), path);
  std::string bad_max = tok;
  const int32_t zero = 0;
  std::memcpy(bad_max.data(), &zero, 4);
  WriteBytes(path, bad_max);
  ExpectErrorNaming(ConvertLlama2c(kStoriesBin, path, dir.File("out")), path);
  // Invalid UTF-8 in a piece.
  Synthetic s;
  std::string t = s.Tokenizer();
  const size_t pos = t.find("\xc3\xa9");
  ASSERT_NE(pos, std::string::npos);
  t[pos + 1] = 'x';
  WriteBytes(dir.File("m.bin"), s.Model());
  WriteBytes(path, t);
  ExpectErrorNaming(ConvertLlama2c(dir.File("m.bin"), path, dir.File("out")), path);
  // A missing model file.
  ExpectErrorNaming(ConvertLlama2c(dir.File("nope.bin"), kTokBin, dir.File("out")),
                    dir.File("nope.bin"));
}

}  // namespace
}  // namespace arle::io
