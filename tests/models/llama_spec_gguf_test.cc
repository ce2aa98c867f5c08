// Tests for the llama spec's GGUF side (llama_spec_gguf.cc): LlamaConfig -> GGUF -> LlamaConfig
// round trips for the real Qwen3-0.6B config and a Llama 3.2-style config (llama3 rope scaling
// stored as rope_freqs.weight), linear and yarn rope keys, the key types gguf-py writes, and the
// errors for unsupported or incomplete files.
#include "arle/models/llama/llama_spec.h"

#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/io/compressed.h"
#include "arle/io/gguf.h"

namespace arle::models::llama {
namespace {

using io::GgufFile;
using io::GgufTensorInfo;
using io::GgufType;
using io::GgufWriter;
using io::ReadMaybeGzipFile;

using ::arle::test::TempDir;

// Writes `config` the way a model exporter does (config keys, tokenizer ids, marker tensors) and
// reads it back.
struct Written {
  GgufFile file;
  LlamaConfig config;
};

Written WriteAndRead(const LlamaConfig& config, const TempDir& dir, const std::string& name,
                     const std::vector<std::string>& marker_tensors) {
  GgufWriter w;
  AddConfigToGguf(config, &w, name);
  if (config.bos_token_id >= 0) {
    w.AddU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(config.bos_token_id));
  }
  const char* kEosKeys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                            "tokenizer.ggml.eom_token_id"};
  for (size_t i = 0; i < config.eos_token_ids.size() && i < 3; ++i) {
    w.AddU32(kEosKeys[i], static_cast<uint32_t>(config.eos_token_ids[i]));
  }
  static float zeros[256] = {};
  for (const std::string& t : marker_tensors) {
    w.AddTensor(t, core::Tensor(zeros, core::DType::kF32, {config.head_dim}));
  }
  const std::string path = dir.File(name + ".gguf");
  const core::Status st = w.Write(path);
  ARLE_CHECK(st.ok()) << st.ToString();
  auto file = GgufFile::Open(path);
  ARLE_CHECK(file.ok()) << file.status().ToString();
  auto back = ConfigFromGguf(*file);
  ARLE_CHECK(back.ok()) << back.status().ToString();
  return {*file, *back};
}

void ExpectSameConfig(const LlamaConfig& a, const LlamaConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.hf_architecture, b.hf_architecture);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_layer, b.n_layer);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.n_head_kv, b.n_head_kv);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.n_ff, b.n_ff);
  EXPECT_EQ(a.n_ctx_train, b.n_ctx_train);
  // GGUF stores both as f32 (gguf-py add_layer_norm_rms_eps / add_rope_freq_base).
  EXPECT_EQ(static_cast<float>(a.norm_eps), static_cast<float>(b.norm_eps));
  EXPECT_EQ(static_cast<float>(a.rope_theta), static_cast<float>(b.rope_theta));
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.qk_norm, b.qk_norm);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
}

TEST(GgufConfig, Qwen3RoundTrip) {
  const std::string path = std::string(ARLE_TEST_DATA_DIR) + "/io/Qwen3-0.6B.config.json";
  auto text = core::ReadFile(path);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto config = ParseHfConfig(*text, path);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(config->qk_norm);
  ASSERT_TRUE(config->tie_word_embeddings);
  TempDir dir;
  // Tied embeddings: no output.weight; qk_norm: blk.0.attn_q_norm.weight.
  Written w = WriteAndRead(*config, dir, "Qwen3-0.6B",
                           {"blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight"});
  ExpectSameConfig(*config, w.config);
  EXPECT_EQ(w.config.rope_scaling.type, RopeScaling::Type::kNone);

  // The keys and value types convert_hf_to_gguf.py writes (gguf-py add_* methods).
  const GgufFile& g = w.file;
  EXPECT_EQ(*g.GetString("general.architecture"), "qwen3");
  EXPECT_EQ(*g.GetString("general.name"), "Qwen3-0.6B");
  EXPECT_EQ(*g.GetInt("general.file_type"), 32);  // LlamaFileType.MOSTLY_BF16
  for (const char* key : {"qwen3.context_length", "qwen3.embedding_length", "qwen3.block_count",
                          "qwen3.feed_forward_length", "qwen3.attention.head_count",
                          "qwen3.attention.head_count_kv", "qwen3.attention.key_length",
                          "qwen3.attention.value_length", "qwen3.vocab_size"}) {
    ASSERT_NE(g.Find(key), nullptr) << key;
    EXPECT_EQ(g.Find(key)->type, GgufType::kU32) << key;
  }
  EXPECT_EQ(g.Find("qwen3.rope.freq_base")->type, GgufType::kF32);
  EXPECT_EQ(g.Find("qwen3.attention.layer_norm_rms_epsilon")->type, GgufType::kF32);
  EXPECT_EQ(*g.GetInt("qwen3.context_length"), 40960);
  EXPECT_EQ(*g.GetInt("qwen3.attention.key_length"), 128);
  // No tokenizer keys come from AddConfigToGguf itself.
  GgufWriter only_config;
  AddConfigToGguf(*config, &only_config);
  const std::string bare = dir.File("bare.gguf");
  ASSERT_TRUE(only_config.Write(bare).ok());
  auto bare_file = GgufFile::Open(bare);
  ASSERT_TRUE(bare_file.ok());
  for (const auto& [key, value] : bare_file->metadata()) {
    EXPECT_NE(key.rfind("tokenizer.", 0), 0u) << key;
  }
}

TEST(GgufConfig, LlamaWithLlama3RopeRoundTrip) {
  // Llama-3.2-1B's config.json (meta-llama/Llama-3.2-1B).
  const std::string json = R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": false,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64,
    "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
    "max_position_embeddings": 131072, "mlp_bias": false, "num_attention_heads": 32,
    "num_hidden_layers": 16, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "vocab_size": 128256})";
  auto config = ParseHfConfig(json, "llama-3.2-1b/config.json");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->rope_scaling.type, RopeScaling::Type::kLlama3);
  TempDir dir;
  Written w = WriteAndRead(*config, dir, "Llama-3.2-1B", {"blk.0.attn_norm.weight"});
  ExpectSameConfig(*config, w.config);
  EXPECT_FALSE(w.config.qk_norm);

  // llama3 scaling is the tensor rope_freqs.weight, with no rope.scaling.* keys (llama.cpp).
  const GgufTensorInfo* freqs = w.file.FindTensor("rope_freqs.weight");
  ASSERT_NE(freqs, nullptr);
  EXPECT_EQ(freqs->dtype, core::DType::kF32);
  EXPECT_EQ(freqs->shape, std::vector<int64_t>{32});
  EXPECT_EQ(w.file.Find("llama.rope.scaling.type"), nullptr);
  EXPECT_EQ(*w.file.GetInt("llama.rope.dimension_count"), 64);
  const std::vector<float> expected = Llama3RopeFreqFactors(*config);
  ASSERT_EQ(expected.size(), 32u);
  EXPECT_EQ(w.config.rope_scaling.freq_factors, expected);
  EXPECT_EQ(w.config.rope_scaling.factor, 32.0);
  // The short-wavelength pairs are left alone and the long ones divided by the full factor.
  EXPECT_EQ(expected.front(), 1.0f);
  EXPECT_EQ(expected.back(), 32.0f);
  for (size_t i = 1; i < expected.size(); ++i) EXPECT_GE(expected[i], expected[i - 1]) << i;
  // Llama 3's published low/high/original parameters are recovered from the tensor.
  EXPECT_EQ(w.config.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(w.config.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(w.config.rope_scaling.original_max_position_embeddings, 8192);
}

TEST(GgufConfig, LinearAndYarnKeys) {
  const std::string path = std::string(ARLE_TEST_DATA_DIR) + "/io/Qwen3-0.6B.config.json";
  auto text = core::ReadFile(path);
  ASSERT_TRUE(text.ok());
  auto config = ParseHfConfig(*text, path);
  ASSERT_TRUE(config.ok());
  TempDir dir;

  LlamaConfig linear = *config;
  linear.rope_scaling.type = RopeScaling::Type::kLinear;
  linear.rope_scaling.factor = 2.0;
  Written l = WriteAndRead(linear, dir, "linear", {"blk.0.attn_q_norm.weight"});
  EXPECT_EQ(*l.file.GetString("qwen3.rope.scaling.type"), "linear");
  EXPECT_EQ(l.config.rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_EQ(l.config.rope_scaling.factor, 2.0);

  // Qwen3's documented YaRN setting: factor 4 over 32768 original positions.
  LlamaConfig yarn = *config;
  yarn.rope_scaling.type = RopeScaling::Type::kYarn;
  yarn.rope_scaling.factor = 4.0;
  yarn.rope_scaling.original_max_position_embeddings = 32768;
  Written y = WriteAndRead(yarn, dir, "yarn", {"blk.0.attn_q_norm.weight"});
  EXPECT_EQ(*y.file.GetString("qwen3.rope.scaling.type"), "yarn");
  EXPECT_EQ(*y.file.GetInt("qwen3.rope.scaling.original_context_length"), 32768);
  EXPECT_EQ(y.config.rope_scaling.type, RopeScaling::Type::kYarn);
  EXPECT_EQ(y.config.rope_scaling.factor, 4.0);
  EXPECT_EQ(y.config.rope_scaling.original_max_position_embeddings, 32768);
  EXPECT_EQ(y.config.rope_scaling.beta_fast, 32.0);
  EXPECT_EQ(y.config.rope_scaling.beta_slow, 1.0);
}

TEST(GgufConfig, VocabFromTokensAndUntiedOutput) {
  TempDir dir;
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddU32("llama.embedding_length", 64);
  w.AddU32("llama.block_count", 2);
  w.AddU32("llama.feed_forward_length", 128);
  w.AddU32("llama.context_length", 256);
  w.AddU32("llama.attention.head_count", 4);
  w.AddF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b"});
  static float zeros[5 * 64] = {};
  w.AddTensor("output.weight", core::Tensor(zeros, core::DType::kF32, {5, 64}));
  w.AddTensor("blk.0.attn_q.bias", core::Tensor(zeros, core::DType::kF32, {64}));
  const std::string path = dir.File("small.gguf");
  ASSERT_TRUE(w.Write(path).ok());
  auto g = GgufFile::Open(path);
  ASSERT_TRUE(g.ok());
  auto c = ConfigFromGguf(*g);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->n_vocab, 5);
  EXPECT_EQ(c->n_head_kv, 4);   // defaults to head_count
  EXPECT_EQ(c->head_dim, 16);   // embedding_length / head_count
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_EQ(c->bos_token_id, -1);
  EXPECT_TRUE(c->eos_token_ids.empty());
  EXPECT_EQ(c->torch_dtype, core::DType::kF32);
}

TEST(GgufConfig, Errors) {
  // A real llama.cpp file of an architecture arle does not run.
  const std::string gpt2 = std::string(ARLE_TEST_DATA_DIR) + "/tokenizer/ggml-vocab-gpt-2.gguf.gz";
  auto bytes = ReadMaybeGzipFile(gpt2);
  ASSERT_TRUE(bytes.ok());
  auto g = GgufFile::Parse({reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()}, gpt2);
  ASSERT_TRUE(g.ok());
  auto c = ConfigFromGguf(*g);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), core::StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("gpt2"), std::string::npos) << c.status().ToString();
  EXPECT_NE(c.status().message().find(gpt2), std::string::npos) << c.status().ToString();

  // A required key missing: named in the error together with the file.
  TempDir dir;
  GgufWriter w;
  w.AddString("general.architecture", "qwen3");
  w.AddU32("qwen3.embedding_length", 64);
  w.AddU32("qwen3.feed_forward_length", 128);
  w.AddU32("qwen3.context_length", 256);
  w.AddU32("qwen3.attention.head_count", 4);
  w.AddF32("qwen3.attention.layer_norm_rms_epsilon", 1e-6f);
  w.AddU32("qwen3.vocab_size", 10);
  const std::string path = dir.File("missing.gguf");
  ASSERT_TRUE(w.Write(path).ok());
  auto m = GgufFile::Open(path);
  ASSERT_TRUE(m.ok());
  auto mc = ConfigFromGguf(*m);
  ASSERT_FALSE(mc.ok());
  EXPECT_NE(mc.status().message().find("qwen3.block_count"), std::string::npos)
      << mc.status().ToString();
  EXPECT_NE(mc.status().message().find(path), std::string::npos) << mc.status().ToString();
}

}  // namespace
}  // namespace arle::models::llama
