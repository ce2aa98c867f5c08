// Tests of the llama family's llama2.c import: stories260K against an independent HF conversion,
// tok512's tokenizer.json against a Python port of llama2.c's encode, the q/k permutation and
// layout on a synthetic checkpoint, and corrupt/truncated inputs.
#include "arle/models/llama/llama2c_import.h"

#include <gtest/gtest.h>

#include "tests/common/llama2c_files.h"
#include "tests/common/temp_dir.h"
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/io/compressed.h"
#include "arle/io/safetensors.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::models::llama {
namespace {

namespace fs = std::filesystem;
using io::ReadMaybeGzipFile;
using io::SafetensorsEntry;
using io::SafetensorsFile;
using test::Bytes;
using test::kStoriesBin;
using test::kTokBin;
using test::ReadFileOrFail;
using test::SyntheticLlama2c;
using test::TempDir;
using test::WriteBytes;

const std::string kDataDir = std::string(ARLE_TEST_DATA_DIR) + "/io";

// --- the real stories260K ---------------------------------------------------------------------

TEST(Llama2cImportTest, Stories260KMatchesIndependentHfConversion) {
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
  auto config = LoadHfConfig(out.path());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto fixture_config = ParseHfConfig(ReadFileOrFail(kDataDir + "/stories260K_hf_config.json"),
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
  auto tok_config = nlohmann::json::parse(ReadFileOrFail(out.File("tokenizer_config.json")));
  EXPECT_EQ(tok_config["bos_token"], "<s>");
  EXPECT_EQ(tok_config["eos_token"], "</s>");
}

TEST(Llama2cImportTest, Tok512TokenizerJsonShape) {
  TempDir out;
  ASSERT_TRUE(ConvertLlama2c(kStoriesBin, kTokBin, out.path()).ok());
  auto doc = nlohmann::json::parse(ReadFileOrFail(out.File("tokenizer.json")));
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

// Expected ids come from tests/reference/llama2c_reference.py (a port of llama2.c's encode).
TEST(Llama2cImportTest, Tok512EncodesLikeLlama2c) {
  TempDir out;
  ASSERT_TRUE(ConvertLlama2c(kStoriesBin, kTokBin, out.path()).ok());
  auto tok = tokenizer::Tokenizer::FromFile(out.File("tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto cases = nlohmann::json::parse(ReadFileOrFail(kDataDir + "/tok512_cases.json"));
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

// --- synthetic checkpoints: layout, permutation, unshared classifier ---------------------------

TEST(Llama2cImportTest, PermutesQkRowsToRotateHalfAndWritesUnsharedHead) {
  SyntheticLlama2c s;
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

  auto config = LoadHfConfig(dir.File("out"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_EQ(config->n_head_kv, 1);
  EXPECT_EQ(config->n_ff, ff);
}

// --- bad input ---------------------------------------------------------------------------------

void ExpectErrorNaming(const core::Status& st, const std::string& file) {
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(file), std::string::npos) << st.ToString();
}

TEST(Llama2cImportTest, EveryHeaderTruncationIsACleanError) {
  TempDir dir;
  const std::string model = ReadFileOrFail(kStoriesBin);
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

TEST(Llama2cImportTest, BadTokenizersAreCleanErrors) {
  const std::string tok = ReadFileOrFail(kTokBin);
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
  SyntheticLlama2c s;
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
}  // namespace arle::models::llama
