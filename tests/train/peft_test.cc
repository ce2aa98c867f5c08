// Tests for train/peft.h and LoRA checkpoints: PEFT's tensor names, shapes and adapter_config.json
// fields (as PEFT's save_pretrained writes them for a Llama model), and the merged model
// W + (alpha / r) B A, checked against a double-precision reference, exactly where the values make
// every sum exact, and by loading the merged step directory with the repo's loader.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/file_util.h"
#include "arle/runtime/model_loader.h"
#include "arle/train/checkpoint.h"
#include "arle/train/peft.h"
#include "tests/common/temp_dir.h"
#include "tests/train/tiny_model.h"

namespace arle::train {
namespace {

using testing::TinyModel;

// An owned f32 matrix.
struct Matrix {
  core::Buffer buffer;
  core::Tensor tensor;
  Matrix(int64_t rows, int64_t cols)
      : buffer(static_cast<size_t>(rows * cols) * 4),
        tensor(buffer.data(), core::DType::kF32, {rows, cols}) {}
  float* data() { return buffer.as<float>(); }
};

TEST(Peft, NamesFollowPeft) {
  EXPECT_EQ(PeftLoraName("model.layers.3.self_attn.q_proj.weight", false),
            "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(PeftLoraName("model.layers.3.mlp.down_proj.weight", true),
            "base_model.model.model.layers.3.mlp.down_proj.lora_B.weight");
}

TEST(Peft, MergeMatchesADoubleReference) {
  const int64_t n_out = 37, n_in = 53, r = 8;
  Matrix w(n_out, n_in), a(r, n_in), b(n_out, r);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t i = 0; i < n_out * n_in; ++i) w.data()[i] = normal(rng);
  for (int64_t i = 0; i < r * n_in; ++i) a.data()[i] = normal(rng);
  for (int64_t i = 0; i < n_out * r; ++i) b.data()[i] = normal(rng);
  const float scale = 16.0f / 8.0f;
  core::Buffer merged = MergeLoraWeight(w.tensor, a.tensor, b.tensor, scale);
  for (int64_t o = 0; o < n_out; ++o) {
    for (int64_t i = 0; i < n_in; ++i) {
      double delta = 0;
      for (int64_t k = 0; k < r; ++k) delta += double(b.data()[o * r + k]) * a.data()[k * n_in + i];
      const double want = w.data()[o * n_in + i] + scale * delta;
      // f32 sums of r products of N(0,1) values: error well below 1e-5 relative to their size.
      EXPECT_NEAR(merged.as<float>()[o * n_in + i], want, 1e-5 * (std::fabs(want) + 8.0));
    }
  }
}

TEST(Peft, AdapterValidation) {
  test::TempDir tmp;
  TinyModel model(tmp.Path("m"), 1);
  Matrix a(4, 64), b(64, 4), wrong(64, 3);
  LoraAdapter adapter{4, 8.0, "base", {{"model.layers.0.self_attn.q_proj.weight", a.tensor, b.tensor}}};
  EXPECT_TRUE(ValidateLoraAdapter(adapter, model.tensors).ok());
  adapter.targets[0].b = wrong.tensor;
  EXPECT_EQ(ValidateLoraAdapter(adapter, model.tensors).code(), core::StatusCode::kInvalidArgument);
  adapter.targets[0] = {"model.layers.0.self_attn.nope.weight", a.tensor, b.tensor};
  EXPECT_EQ(ValidateLoraAdapter(adapter, model.tensors).code(), core::StatusCode::kInvalidArgument);
  adapter.targets[0] = {"model.layers.0.self_attn.q_proj.weight", a.tensor, b.tensor};
  adapter.r = 0;
  EXPECT_EQ(ValidateLoraAdapter(adapter, model.tensors).code(), core::StatusCode::kInvalidArgument);
}

// A LoRA run's checkpoint: a PEFT adapter in adapter/ and the merged model in model.safetensors.
TEST(LoraCheckpoint, PeftAdapterAndMergedModel) {
  test::TempDir tmp;
  TinyModel model(tmp.Path("base"), 11);
  const int64_t r = 4;
  const double alpha = 8;  // scale 2
  // A and B hold small multiples of 1/16, so B A and its scaling are exact in f32 and the merged
  // value is W + delta rounded once, whatever the summation order: exact equality below.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> small(-8, 8);
  std::vector<Matrix> mats;
  mats.reserve(8);
  LoraAdapter adapter;
  adapter.r = r;
  adapter.alpha = alpha;
  adapter.base_model_name_or_path = "arle-tests/tiny-llama";
  for (const char* name :
       {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight",
        "model.layers.1.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"}) {
    const core::Tensor& w = model.Get(name);
    Matrix& a = mats.emplace_back(r, w.dim(1));
    Matrix& b = mats.emplace_back(w.dim(0), r);
    for (int64_t i = 0; i < a.tensor.numel(); ++i) a.data()[i] = small(rng) / 16.0f;
    for (int64_t i = 0; i < b.tensor.numel(); ++i) b.data()[i] = small(rng) / 16.0f;
    adapter.targets.push_back({name, a.tensor, b.tensor});
  }
  CheckpointContents c = model.Contents();
  c.lora = adapter;
  auto dir = SaveCheckpoint(tmp.Path("run"), 2, c);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  // Not next to config.json: transformers would then load base + adapter instead of the merge.
  EXPECT_FALSE(core::FileExists(*dir + "/adapter_config.json"));

  auto config_text = core::ReadFile(*dir + "/adapter/adapter_config.json");
  ASSERT_TRUE(config_text.ok());
  const auto config = nlohmann::json::parse(*config_text);
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["r"], 4);
  EXPECT_TRUE(config["lora_alpha"].is_number_integer());
  EXPECT_EQ(config["lora_alpha"], 8);
  EXPECT_EQ(config["lora_dropout"], 0.0);
  EXPECT_EQ(config["bias"], "none");
  EXPECT_EQ(config["fan_in_fan_out"], false);
  EXPECT_EQ(config["base_model_name_or_path"], "arle-tests/tiny-llama");
  EXPECT_EQ(config["target_modules"],
            nlohmann::json::parse(R"(["down_proj", "q_proj", "v_proj"])"));

  auto ckpt = LoadCheckpoint(tmp.Path("run"));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  ASSERT_TRUE(ckpt->adapter.has_value());
  EXPECT_EQ(ckpt->adapter_config_json, *config_text);
  ASSERT_EQ(ckpt->adapter->entries().size(), 2 * adapter.targets.size());
  const double scale = alpha / r;
  for (const LoraTarget& t : adapter.targets) {
    SCOPED_TRACE(t.weight_name);
    const std::string module = t.weight_name.substr(0, t.weight_name.size() - 7);
    auto a = ckpt->adapter->GetTensor("base_model.model." + module + ".lora_A.weight");
    auto b = ckpt->adapter->GetTensor("base_model.model." + module + ".lora_B.weight");
    ASSERT_TRUE(a.ok() && b.ok());
    const core::Tensor& w = model.Get(t.weight_name);
    EXPECT_EQ(a->ToString(), "f32[" + std::to_string(r) + ", " + std::to_string(w.dim(1)) + "]");
    EXPECT_EQ(b->ToString(), "f32[" + std::to_string(w.dim(0)) + ", " + std::to_string(r) + "]");
    EXPECT_EQ(std::memcmp(a->data(), t.a.data(), static_cast<size_t>(t.a.nbytes())), 0);
    EXPECT_EQ(std::memcmp(b->data(), t.b.data(), static_cast<size_t>(t.b.nbytes())), 0);

    auto merged = ckpt->model->GetTensor(t.weight_name);
    ASSERT_TRUE(merged.ok());
    const float* wp = w.data_as<float>();
    const float* ap = t.a.data_as<float>();
    const float* bp = t.b.data_as<float>();
    const float* mp = merged->data_as<float>();
    int64_t changed = 0;
    for (int64_t o = 0; o < w.dim(0); ++o) {
      for (int64_t i = 0; i < w.dim(1); ++i) {
        double delta = 0;
        for (int64_t k = 0; k < r; ++k) delta += double(bp[o * r + k]) * ap[k * w.dim(1) + i];
        const float want = static_cast<float>(double(wp[o * w.dim(1) + i]) + scale * delta);
        ASSERT_EQ(mp[o * w.dim(1) + i], want) << o << "," << i;
        changed += delta != 0;
      }
    }
    EXPECT_GT(changed, w.numel() / 2);
  }
  // Tensors without an adapter are stored unchanged.
  for (const io::NamedTensor& t : model.tensors) {
    if (t.name.find("k_proj") == std::string::npos && t.name.find("norm") == std::string::npos) {
      continue;
    }
    auto got = ckpt->model->GetTensor(t.name);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(std::memcmp(got->data(), t.tensor.data(), static_cast<size_t>(t.tensor.nbytes())), 0)
        << t.name;
  }
  // The merged model is a model the repo's loader serves.
  models::LoadOptions options;
  options.n_threads = 1;
  auto loaded = runtime::LoadModel(*dir, options, nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->model->info().n_layer, 2);
}

}  // namespace
}  // namespace arle::train
