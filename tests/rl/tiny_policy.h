// The RL tests' policy: the tiny random Qwen3-shaped model (tests/models/tiny_model.h) as owned f32
// weights under an rl::Policy, with the Qwen3 test tokenizer.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "arle/models/llama/llama_weights.h"
#include "arle/rl/policy.h"
#include "tests/models/tiny_model.h"
#include "tests/runtime/engine_test_util.h"

namespace arle::rl::testing {

inline models::llama::LlamaConfig TinyPolicyConfig() {
  return models::testing::TinyConfig(models::llama::Architecture::kQwen3);
}

// `options` gets a small K/V cache unless it names one; weights from `seed`.
inline std::unique_ptr<Policy> MakeTinyPolicy(uint64_t seed, PolicyOptions options) {
  const auto config = TinyPolicyConfig();
  auto tiny = models::testing::BuildTiny(
      config, models::testing::TinyModelWeights(config, core::DType::kF32, seed));
  EXPECT_TRUE(tiny.ok()) << tiny.status().ToString();
  auto owned = models::llama::OwnedF32Copy((*tiny)->weights());
  EXPECT_TRUE(owned.ok());
  if (options.engine.kv_cache_bytes == 0) options.engine.kv_cache_bytes = 8LL << 20;
  auto p = Policy::Create(config, std::move(*owned), runtime::testing::TestTokenizer(), options);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(*p);
}

// An update that changes every weight the forward reads: each trainable value times `factor`,
// through Policy::Update (so the engine forgets its prefix cache).
inline core::Status ScaleEveryWeight(Policy& policy, float factor) {
  return policy.Update([&]() -> core::Status {
    for (const train::TrainParam& p : policy.trainer().params()) {
      float* v = p.value->data_as<float>();
      for (int64_t i = 0; i < p.value->numel(); ++i) v[i] *= factor;
    }
    return core::OkStatus();
  });
}

}  // namespace arle::rl::testing
