// The tiny model variants shared by the model tests, and a helper running a prompt as one batch.
#pragma once

#include <span>
#include <vector>

#include <gtest/gtest.h>

#include "tiny_model.h"

namespace arle::models::testing {

struct Variant {
  const char* name;
  io::Architecture arch;
  core::DType dtype;
  bool biases;
};

inline const Variant kVariants[] = {
    {"qwen3_f32", io::Architecture::kQwen3, core::DType::kF32, false},
    {"qwen3_bf16", io::Architecture::kQwen3, core::DType::kBF16, false},
    {"llama_f16_bias", io::Architecture::kLlama, core::DType::kF16, true},
};

inline io::ModelConfig VariantConfig(const Variant& v) {
  io::ModelConfig c = TinyConfig(v.arch);
  c.attention_bias = v.biases;
  c.mlp_bias = v.biases;
  if (v.arch == io::Architecture::kLlama) {
    c.rope_scaling.type = io::RopeScaling::Type::kLlama3;
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.original_max_position_embeddings = 32;
  }
  return c;
}

inline const std::vector<int32_t> kPrompt = {1, 5, 96, 0, 42, 42, 7, 13, 60, 2, 88};

inline std::vector<float> RunAll(Model& model, std::span<const int32_t> tokens) {
  auto cache = model.NewKvCache(64);
  std::vector<float> logits;
  EXPECT_TRUE(model.Forward(tokens, *cache, &logits, /*all_logits=*/true).ok());
  EXPECT_EQ(cache->n_tokens(), static_cast<int64_t>(tokens.size()));
  return logits;
}

}  // namespace arle::models::testing
