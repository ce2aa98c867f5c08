// Model forward on tiny random models (Qwen3 with q/k norm and untied head; Llama with GQA, tied
// head, biases and llama3 RoPE; f32/bf16/f16 weights): reference vs SIMD kernels, clean errors,
// the activation dump, and the Hugging Face directory round trip.
#include "arle/models/llama/llama_model.h"
#include "arle/models/registry.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "arle/core/file_util.h"
#include "arle/io/gguf.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/io/safetensors.h"
#include "tiny_model.h"
#include "tiny_variants.h"

namespace arle::models {
namespace {

using llama::GgufNameForHf;
using llama::LlamaModel;
using testing::BuildTiny;
using testing::SequenceRunner;
using testing::TinyConfig;
using testing::TinyModelWeights;

using testing::kPrompt;
using testing::kVariants;
using testing::RunAll;
using testing::Variant;
using testing::VariantConfig;

class ModelTest : public ::testing::TestWithParam<Variant> {};

// Tolerance between the reference and SIMD kernels. Each kernel differs from the other by at most
// 2 gamma_K of the sum of |terms| of its reductions (K <= 80 here, so < 1e-5 relative; see the
// kernel tests), and two layers of norms, attention and MLP amplify such perturbations by a
// modest factor (norm gains ~1, weights ~0.15 * sqrt(K) ~ 1). 1e-4 of the largest |logit| leaves
// ~10x headroom over honest rounding while any structural difference moves logits by O(1).
TEST_P(ModelTest, ReferenceAndSimdKernelsAgree) {
  const llama::LlamaConfig c = VariantConfig(GetParam());
  auto w = TinyModelWeights(c, GetParam().dtype, 123);
  LoadOptions ref_opts;
  ref_opts.backend = kernels::Backend::kRef;
  ref_opts.n_threads = 2;
  LoadOptions cpu_opts;
  cpu_opts.n_threads = 2;
  auto ref = BuildTiny(c, w, ref_opts);
  auto cpu = BuildTiny(c, w, cpu_opts);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  ASSERT_EQ((*ref)->backend(), kernels::Backend::kRef);
  const std::vector<float> a = RunAll(**ref, kPrompt);
  const std::vector<float> b = RunAll(**cpu, kPrompt);
  ASSERT_EQ(a.size(), kPrompt.size() * c.n_vocab);
  ASSERT_EQ(a.size(), b.size());
  double max_abs = 0;
  for (float v : a) max_abs = std::max(max_abs, std::fabs(static_cast<double>(v)));
  ASSERT_GT(max_abs, 0.5);  // the logits are not degenerate
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(std::isfinite(a[i]));
    ASSERT_NEAR(a[i], b[i], 1e-4 * max_abs) << "logit " << i;
  }
}

// Writes `w` as a Hugging Face directory (config.json + model.safetensors) with io's writers.
void WriteHfDir(const llama::LlamaConfig& c, const testing::TinyWeights& w,
                const std::string& dir) {
  ASSERT_TRUE(core::MakeDirs(dir).ok());
  ASSERT_TRUE(
      core::WriteFileAtomic(core::JoinPath(dir, "config.json"), llama::ToHfConfigJson(c)).ok());
  std::vector<io::NamedTensor> tensors;
  for (const auto& [name, t] : w.tensors) tensors.push_back({name, t});
  const core::Status s = io::WriteSafetensors(core::JoinPath(dir, "model.safetensors"), tensors,
                                              {{"format", "pt"}});
  ASSERT_TRUE(s.ok()) << s.ToString();
}

// convert_hf_to_gguf.py's LlamaModel.permute: reshape(n_head, 2, rows / n_head / 2, ...)
// .swapaxes(1, 2), i.e. GGUF row (h, j, s) = HF row (h, s, j).
core::Buffer PermuteLikeConvert(const core::Tensor& t, int64_t n_head) {
  const int64_t rows = t.dim(0), half = rows / n_head / 2, row_bytes = t.nbytes() / rows;
  core::Buffer out(t.nbytes());
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t s = 0; s < 2; ++s)
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(out.as<char>() + ((h * half + j) * 2 + s) * row_bytes,
                    static_cast<const char*>(t.data()) + ((h * 2 + s) * half + j) * row_bytes,
                    row_bytes);
  return out;
}

void WriteGguf(const llama::LlamaConfig& c, const testing::TinyWeights& w,
               const std::string& path) {
  io::GgufWriter writer;
  llama::AddConfigToGguf(c, &writer, "tiny");
  std::vector<core::Buffer> keep;
  for (const auto& [name, t] : w.tensors) {
    const std::string gguf = GgufNameForHf(name);
    ASSERT_FALSE(gguf.empty()) << name;
    const bool q = name.find("q_proj") != std::string::npos;
    const bool k = name.find("k_proj") != std::string::npos;
    if (c.arch == llama::Architecture::kLlama && (q || k)) {
      keep.push_back(PermuteLikeConvert(t, q ? c.n_head : c.n_head_kv));
      writer.AddTensor(gguf, core::Tensor(keep.back().data(), t.dtype(), t.shape()));
    } else {
      writer.AddTensor(gguf, t);
    }
  }
  const core::Status s = writer.Write(path);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

std::string TempDir(const std::string& tag) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("arle_model_test_" + tag + "_" + std::to_string(::getpid())))
                              .string();
  std::filesystem::remove_all(dir);
  return dir;
}

// The same weights through safetensors + config.json and through GGUF (llama q/k permuted as
// llama.cpp's converter does) give the logits of FromTensors bit for bit; llama3 RoPE goes through
// GGUF's rope_freqs factors, which round differently, so it gets the kernel tolerance instead.
TEST_P(ModelTest, HfDirectoryAndGgufRoundTrip) {
  const llama::LlamaConfig c = VariantConfig(GetParam());
  auto w = TinyModelWeights(c, GetParam().dtype, 77);
  auto direct = BuildTiny(c, w);
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  const std::vector<float> want = RunAll(**direct, kPrompt);
  double max_abs = 0;
  for (float v : want) max_abs = std::max(max_abs, std::fabs(static_cast<double>(v)));

  const std::string dir = TempDir(GetParam().name);
  WriteHfDir(c, *w, dir);
  auto from_dir = models::Load(dir);
  ASSERT_TRUE(from_dir.ok()) << from_dir.status().ToString();
  const std::vector<float> got_dir = RunAll(**from_dir, kPrompt);
  ASSERT_EQ(got_dir.size(), want.size());
  EXPECT_EQ(0, std::memcmp(got_dir.data(), want.data(), want.size() * 4));

  const std::string gguf = core::JoinPath(dir, "model.gguf");
  WriteGguf(c, *w, gguf);
  auto from_gguf = models::Load(gguf);
  ASSERT_TRUE(from_gguf.ok()) << from_gguf.status().ToString();
  EXPECT_EQ(dynamic_cast<LlamaModel&>(**from_gguf).config().tie_word_embeddings,
            c.tie_word_embeddings);
  const std::vector<float> got_gguf = RunAll(**from_gguf, kPrompt);
  ASSERT_EQ(got_gguf.size(), want.size());
  if (c.rope_scaling.type == llama::RopeScaling::Type::kNone) {
    EXPECT_EQ(0, std::memcmp(got_gguf.data(), want.data(), want.size() * 4));
  } else {
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got_gguf[i], want[i], 1e-4 * max_abs) << i;
  }
  std::filesystem::remove_all(dir);
}

TEST(ModelLoadTest, LlamaWithoutScalingRoundTripsThroughGgufBitForBit) {
  llama::LlamaConfig c = TinyConfig(llama::Architecture::kLlama);
  c.attention_bias = true;
  auto w = TinyModelWeights(c, core::DType::kBF16, 78);
  auto direct = BuildTiny(c, w);
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  const std::string dir = TempDir("llama_plain");
  ASSERT_TRUE(core::MakeDirs(dir).ok());
  const std::string gguf = core::JoinPath(dir, "m.gguf");
  WriteGguf(c, *w, gguf);
  auto loaded = models::Load(gguf);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const std::vector<float> a = RunAll(**direct, kPrompt), b = RunAll(**loaded, kPrompt);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
  std::filesystem::remove_all(dir);
}

TEST(ModelLoadTest, ErrorsNameThePathAndTensor) {
  auto missing = models::Load("/nonexistent/arle/model");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/arle/model"), std::string::npos);

  llama::LlamaConfig c = TinyConfig(llama::Architecture::kQwen3);
  auto w = TinyModelWeights(c, core::DType::kF32, 3);
  w->tensors.erase("model.layers.1.mlp.down_proj.weight");
  const std::string dir = TempDir("missing_tensor");
  WriteHfDir(c, *w, dir);
  auto s = models::Load(dir);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("model.layers.1.mlp.down_proj.weight"), std::string::npos)
      << s.status().ToString();
  EXPECT_NE(s.status().message().find(dir), std::string::npos) << s.status().ToString();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Tiny, ModelTest, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ModelErrorsTest, BadTokensAreStatusesAndChangeNothing) {
  const llama::LlamaConfig c = TinyConfig(llama::Architecture::kQwen3);
  auto model = BuildTiny(c, TinyModelWeights(c, core::DType::kF32, 1));
  ASSERT_TRUE(model.ok());
  SequenceRunner cache(**model, 16);
  std::vector<float> logits;
  const std::vector<int32_t> three = {1, 2, 3};
  ASSERT_TRUE(cache.Forward(three, &logits).ok());
  const std::vector<float> want = logits;
  const std::vector<int32_t> bad = {3, 97};
  auto s = cache.Forward(bad, &logits);
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("97"), std::string::npos) << s.ToString();
  const std::vector<int32_t> negative = {-1};
  EXPECT_EQ(cache.Forward(negative, &logits).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Forward({}, &logits).code(), core::StatusCode::kInvalidArgument);
  // The failed steps left the sequence's state as it was: running the same tokens in a fresh
  // sequence gives the same logits as continuing this one.
  const std::vector<int32_t> four = {4};
  ASSERT_TRUE(cache.Forward(four, &logits).ok());
  SequenceRunner fresh(**model, 16);
  std::vector<float> again;
  const std::vector<int32_t> all = {1, 2, 3, 4};
  ASSERT_TRUE(fresh.Forward(all, &again).ok());
  EXPECT_EQ(0, std::memcmp(logits.data(), again.data(), logits.size() * 4));
  EXPECT_FALSE(want.empty());
}

TEST(ModelErrorsTest, MissingOrMisshapedTensorsAreNamed) {
  llama::LlamaConfig c = TinyConfig(llama::Architecture::kQwen3);
  auto w = TinyModelWeights(c, core::DType::kBF16, 1);
  w->tensors.erase("model.layers.1.self_attn.k_norm.weight");
  auto s = BuildTiny(c, w);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("model.layers.1.self_attn.k_norm.weight"), std::string::npos)
      << s.status().ToString();

  auto w2 = TinyModelWeights(c, core::DType::kBF16, 1);
  w2->tensors["model.layers.0.mlp.up_proj.weight"] =
      w2->tensors["model.layers.0.mlp.up_proj.weight"].Reshape({c.n_embd, c.n_ff});
  s = BuildTiny(c, w2);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("model.layers.0.mlp.up_proj.weight"), std::string::npos);

  auto w3 = TinyModelWeights(c, core::DType::kF32, 1);
  core::Tensor& t = w3->tensors["model.norm.weight"];
  t = core::Tensor(t.data(), core::DType::kI32, {c.n_embd});
  s = BuildTiny(c, w3);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), core::StatusCode::kUnimplemented);

  llama::LlamaConfig bad = c;
  bad.n_head_kv = 3;
  EXPECT_FALSE(BuildTiny(bad, TinyModelWeights(c, core::DType::kF32, 1)).ok());
}

TEST(ModelDumpTest, WritesNamedActivationsAndManifest) {
  const llama::LlamaConfig c = TinyConfig(llama::Architecture::kQwen3);
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("arle_dump_test_" + std::to_string(::getpid())))
                              .string();
  std::filesystem::remove_all(dir);
  LoadOptions opts;
  opts.dump_dir = dir;
  auto model = BuildTiny(c, TinyModelWeights(c, core::DType::kF32, 5), opts);
  ASSERT_TRUE(model.ok());
  SequenceRunner cache(**model, 8);
  std::vector<float> logits;
  const std::vector<int32_t> tokens = {3, 4, 5};
  ASSERT_TRUE(cache.Forward(tokens, &logits).ok());
  auto manifest = core::ReadFile(core::JoinPath(dir, "manifest.json"));
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  for (const char* name : {"inp_embd", "blk.0.attn_norm", "blk.1.Qcur_normed", "blk.1.kqv_out",
                           "blk.1.ffn_out", "result_norm", "result_output"}) {
    EXPECT_NE(manifest->find(std::string("\"") + name + "\""), std::string::npos) << name;
  }
  // result_output holds exactly the returned logits.
  auto out = core::ReadFile(core::JoinPath(dir, "result_output.f32"));
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), logits.size() * 4);
  EXPECT_EQ(0, std::memcmp(out->data(), logits.data(), out->size()));
  auto embd = core::ReadFile(core::JoinPath(dir, "inp_embd.f32"));
  ASSERT_TRUE(embd.ok());
  EXPECT_EQ(embd->size(), static_cast<size_t>(3 * c.n_embd * 4));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace arle::models
