// Tests for arle_convert: llama-quantize's file types and per-tensor choices, 16-bit norms and
// biases quantize writes in F32, llama.cpp's tensor names, the tokenizers `model init` ships (from
// the repository's asset files, as the binary compiles them in), and `model init` writing the same
// values as safetensors and as GGUF.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "arle/convert/gguf_export.h"
#include "arle/convert/model_init.h"
#include "arle/convert/quantize.h"
#include "arle/convert/tokenizer_files.h"
#include "arle/core/file_util.h"
#include "arle/core/half.h"
#include "arle/io/gguf.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/io/safetensors.h"
#include "arle/models/llama/llama_weights.h"
#include "tests/common/temp_dir.h"

namespace arle::convert {
namespace {

std::vector<uint8_t> ReadBytes(const std::string& rel) {
  auto text = core::ReadFile(std::string(ARLE_SOURCE_DIR) + "/" + rel);
  ARLE_CHECK(text.ok()) << text.status().ToString();
  return std::vector<uint8_t>(text->begin(), text->end());
}

// The asset files behind apps/arle/embedded_assets, read from the repository.
struct RepoTokenizerAssets {
  std::vector<uint8_t> qwen3_json_gz = ReadBytes("assets/tokenizers/qwen3/tokenizer.json.gz");
  std::vector<uint8_t> qwen3_config = ReadBytes("assets/tokenizers/qwen3/tokenizer_config.json");
  std::vector<uint8_t> tok512 = ReadBytes("assets/models/stories260K/tok512.bin");
  TokenizerAssets Get() const { return {qwen3_json_gz, qwen3_config, tok512, 512}; }
};

TEST(QuantFileTypes, NamesAndIdsRoundTrip) {
  for (const char* name : {"q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"}) {
    auto type = ParseQuantFileType(name);
    ASSERT_TRUE(type.has_value()) << name;
    EXPECT_EQ(QuantFileTypeName(*type), name);
  }
  EXPECT_EQ(ParseQuantFileType("Q4_K_M"), QuantFileType::kQ4_K_M);
  EXPECT_FALSE(ParseQuantFileType("q4_k_s").has_value());
  // llama.cpp's LLAMA_FTYPE_MOSTLY_* values.
  EXPECT_EQ(GgufFileTypeId(QuantFileType::kQ8_0), 7u);
  EXPECT_EQ(GgufFileTypeId(QuantFileType::kQ4_K_M), 15u);
}

TEST(QuantFileTypes, ChoosesLikeLlamaQuantize) {
  const std::vector<int64_t> matrix = {512, 256};
  // The output matrix takes Q6_K, except in Q8_0 files; without one, token_embd plays its part.
  EXPECT_EQ(ChooseQuantType(QuantFileType::kQ4_0, "output.weight", matrix, 16, true),
            core::DType::kQ6_K);
  EXPECT_EQ(ChooseQuantType(QuantFileType::kQ8_0, "output.weight", matrix, 16, true),
            core::DType::kQ8_0);
  EXPECT_EQ(ChooseQuantType(QuantFileType::kQ4_0, "token_embd.weight", matrix, 16, false),
            core::DType::kQ6_K);
  EXPECT_EQ(ChooseQuantType(QuantFileType::kQ4_0, "token_embd.weight", matrix, 16, true),
            core::DType::kQ4_0);
  // _M mixtures: attn_v and ffn_down of use_more_bits layers (first and last eighth, every third
  // between) take Q6_K.
  EXPECT_EQ(ChooseQuantType(QuantFileType::kQ4_K_M, "blk.0.attn_v.weight", matrix, 16, true),
            core::DType::kQ6_K);
  EXPECT_EQ(ChooseQuantType(QuantFileType::kQ4_K_M, "blk.3.attn_v.weight", matrix, 16, true),
            core::DType::kQ4_K);
  EXPECT_EQ(ChooseQuantType(QuantFileType::kQ4_K_M, "blk.4.ffn_down.weight", matrix, 16, true),
            core::DType::kQ6_K);
  EXPECT_EQ(ChooseQuantType(QuantFileType::kQ4_K_M, "blk.15.attn_q.weight", matrix, 16, true),
            core::DType::kQ4_K);
  // Rows that are not whole K blocks fall back to Q8_0; not even Q8_0 blocks: kept.
  const std::vector<int64_t> narrow = {512, 96};
  EXPECT_EQ(ChooseQuantType(QuantFileType::kQ4_K_M, "blk.1.attn_q.weight", narrow, 16, true),
            core::DType::kQ8_0);
  const std::vector<int64_t> odd = {512, 40};
  EXPECT_FALSE(
      ChooseQuantType(QuantFileType::kQ4_0, "blk.1.attn_q.weight", odd, 16, true).has_value());
  // Not quantized at any shape: norms ("_norm.weight") and tensors not named ".weight".
  EXPECT_FALSE(ChooseQuantType(QuantFileType::kQ4_K_M, "blk.0.conv_norm.weight", matrix, 16, true));
  EXPECT_FALSE(ChooseQuantType(QuantFileType::kQ4_K_M, "blk.0.attn_q.bias", matrix, 16, true));
}

// A GGUF file written the old way, with norms and biases in bf16/f16: the quantized output holds
// them in F32 (llama.cpp's converter rule; llama.cpp's forward rejects 16-bit norms) with the same
// values, and the summary counts the bytes written.
TEST(Quantize, SixteenBitNormsAndBiasesBecomeF32) {
  test::TempDir dir;
  constexpr int64_t n = 64;
  std::vector<float> values(n);
  std::vector<uint16_t> norm(n), bias(n), matrix(n * n);
  for (int64_t i = 0; i < n; ++i) {
    values[i] = 1.0f + static_cast<float>(i) / 64.0f;  // exact in bf16 and f16
    norm[i] = core::F32ToBF16(values[i]);
    bias[i] = core::F32ToF16(values[i]);
  }
  for (int64_t i = 0; i < n * n; ++i) matrix[i] = core::F32ToBF16(static_cast<float>(i % 7) - 3);
  io::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddU32("llama.block_count", 1);
  w.AddTensor("blk.0.attn_norm.weight", core::Tensor(norm.data(), core::DType::kBF16, {n}));
  w.AddTensor("blk.0.attn_q.bias", core::Tensor(bias.data(), core::DType::kF16, {n}));
  w.AddTensor("blk.0.attn_q.weight", core::Tensor(matrix.data(), core::DType::kBF16, {n, n}));
  const std::string in = dir.File("in.gguf"), out = dir.File("out.gguf");
  ASSERT_TRUE(w.Write(in).ok());

  auto summary = QuantizeGguf(in, out, QuantFileType::kQ8_0, 1);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->n_quantized, 1);
  EXPECT_EQ(summary->n_kept, 2);
  EXPECT_EQ(summary->bytes_out, 2 * n * 4 + n * (n / 32) * 34);

  auto g = io::GgufFile::Open(out);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  for (const char* name : {"blk.0.attn_norm.weight", "blk.0.attn_q.bias"}) {
    auto t = g->GetTensor(name);
    ASSERT_TRUE(t.ok()) << name;
    ASSERT_EQ(t->ToString(), "f32[64]") << name;
    EXPECT_EQ(std::memcmp(t->data(), values.data(), n * sizeof(float)), 0) << name;
  }
  EXPECT_EQ(g->GetTensor("blk.0.attn_q.weight")->dtype(), core::DType::kQ8_0);
}

TEST(GgufExport, TensorNames) {
  EXPECT_EQ(*GgufTensorName("model.layers.3.mlp.up_proj.weight"), "blk.3.ffn_up.weight");
  EXPECT_EQ(*GgufTensorName("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(*GgufTensorName("lm_head.weight"), "output.weight");
  EXPECT_FALSE(GgufTensorName("model.layers.0.unknown.weight").ok());
}

TEST(TokenizerFiles, PerArchitecture) {
  const RepoTokenizerAssets repo;
  auto qwen3 = TokenizerFilesForArch("qwen3", repo.Get());
  ASSERT_TRUE(qwen3.ok()) << qwen3.status().ToString();
  EXPECT_EQ(qwen3->vocab_size, 151669);  // 151,643 BPE pieces + 26 added tokens
  EXPECT_EQ(qwen3->gguf_model, "gpt2");
  EXPECT_NE(qwen3->tokenizer_config_json.find("chat_template"), std::string::npos);

  auto llama = TokenizerFilesForArch("llama", repo.Get());
  ASSERT_TRUE(llama.ok()) << llama.status().ToString();
  EXPECT_EQ(llama->vocab_size, 512);
  EXPECT_EQ(llama->gguf_model, "llama");
  EXPECT_EQ(llama->scores.size(), 512u);

  auto other = TokenizerFilesForArch("gpt2", repo.Get());
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), core::StatusCode::kInvalidArgument);

  TokenizerAssets damaged = repo.Get();
  damaged.llama2c_vocab_size = 600;  // more tokens than the file holds
  EXPECT_FALSE(TokenizerFilesForArch("llama", damaged).ok());
}

TEST(TokenizerFiles, CountTokenizerTokens) {
  const std::string json =
      R"({"model": {"vocab": {"a": 0, "b": 5}}, "added_tokens": [{"id": 7, "content": "x"}]})";
  EXPECT_EQ(*CountTokenizerTokens(json, "t"), 8);  // the largest id + 1
  for (const char* bad : {"[]", R"({"model": {}})", R"({"model": {"vocab": {"a": "0"}}})",
                          R"({"model": {"vocab": {}}, "added_tokens": [{"id": 1}]})"}) {
    auto n = CountTokenizerTokens(bad, "bad.json");
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_NE(n.status().message().find("bad.json"), std::string::npos) << bad;
  }
}

// `model init` seeds each tensor from (seed, name): the safetensors and GGUF files of one seed
// hold the same values, the llama Q/K rows in llama.cpp's permuted order (undone at load).
TEST(ModelInit, SameValuesInSafetensorsAndGguf) {
  const RepoTokenizerAssets repo;
  test::TempDir dir;
  ModelInitOptions options;
  options.arch = "llama";
  options.preset = "tiny";
  options.config_overrides = R"({"tie_word_embeddings": false})";  // lm_head too
  options.dtype = "f32";
  options.seed = 7;
  options.out = dir.Path("hf");
  auto hf = InitModel(options, repo.Get());
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();
  options.format = "gguf";
  options.out = dir.Path("m.gguf");
  auto gguf_path = InitModel(options, repo.Get());
  ASSERT_TRUE(gguf_path.ok()) << gguf_path.status().ToString();
  EXPECT_EQ(*gguf_path, dir.Path("m.gguf"));

  auto config = models::llama::LoadHfConfig(*hf);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto st = io::SafetensorsModel::Open(*hf);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  auto gguf = io::GgufFile::Open(*gguf_path);
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  const std::vector<WeightSpec> specs = HfWeightSpecs(*config);
  ASSERT_EQ(specs.size(), gguf->tensors().size());
  int n_permuted = 0;
  for (const WeightSpec& spec : specs) {
    auto a = st->GetTensor(spec.name);
    auto b = gguf->GetTensor(*GgufTensorName(spec.name));
    ASSERT_TRUE(a.ok() && b.ok()) << spec.name;
    ASSERT_EQ(a->nbytes(), b->nbytes()) << spec.name;
    const bool q = spec.name.find("q_proj") != std::string::npos;
    const bool k = spec.name.find("k_proj") != std::string::npos;
    if (q || k) {
      EXPECT_NE(std::memcmp(a->data(), b->data(), a->nbytes()), 0) << spec.name;
      const core::Buffer hf_order =
          models::llama::UnpermuteLlamaQk(*b, q ? config->n_head : config->n_head_kv);
      EXPECT_EQ(std::memcmp(a->data(), hf_order.data(), a->nbytes()), 0) << spec.name;
      ++n_permuted;
    } else {
      EXPECT_EQ(std::memcmp(a->data(), b->data(), a->nbytes()), 0) << spec.name;
    }
  }
  EXPECT_EQ(n_permuted, 2 * config->n_layer);

  options.format = "onnx";
  EXPECT_FALSE(InitModel(options, repo.Get()).ok());
}

}  // namespace
}  // namespace arle::convert
