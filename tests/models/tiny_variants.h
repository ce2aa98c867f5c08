// The tiny model variants shared by the model tests, and a helper running a prompt as one batch.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include <gtest/gtest.h>

#include "tests/models/sequence_runner.h"
#include "tiny_model.h"

namespace arle::models::testing {

struct Variant {
  const char* name;
  llama::Architecture arch;
  core::DType dtype;
  bool biases;
};

inline const Variant kVariants[] = {
    {"qwen3_f32", llama::Architecture::kQwen3, core::DType::kF32, false},
    {"qwen3_bf16", llama::Architecture::kQwen3, core::DType::kBF16, false},
    {"llama_f16_bias", llama::Architecture::kLlama, core::DType::kF16, true},
};

inline llama::LlamaConfig VariantConfig(const Variant& v) {
  llama::LlamaConfig c = TinyConfig(v.arch);
  c.attention_bias = v.biases;
  c.mlp_bias = v.biases;
  if (v.arch == llama::Architecture::kLlama) {
    c.rope_scaling.type = llama::RopeScaling::Type::kLlama3;
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.original_max_position_embeddings = 32;
  }
  return c;
}

inline const std::vector<int32_t> kPrompt = {1, 5, 96, 0, 42, 42, 7, 13, 60, 2, 88};

inline std::vector<float> RunAll(Model& model, std::span<const int32_t> tokens) {
  SequenceRunner cache(model, 64);
  std::vector<float> logits;
  EXPECT_TRUE(cache.Forward(tokens, &logits, /*all_logits=*/true).ok());
  EXPECT_EQ(cache.n_past(), static_cast<int64_t>(tokens.size()));
  return logits;
}

// The determinism contract on a tiny model: for 1 and 2 threads and both kernel backends, the
// prompt as one batch, token by token, and in chunks of `chunk` tokens gives bit-identical logits
// at every position, and the thread count never changes a bit (the SIMD runs are compared across
// thread counts; the reference twins round differently, so they are checked only against
// themselves).
inline void ExpectDeterminismContract(const llama::LlamaConfig& c, std::shared_ptr<TinyWeights> w,
                                      size_t chunk) {
  std::vector<float> reference;
  for (const int threads : {1, 2}) {
    for (const bool use_ref : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "threads=" << threads << " ref=" << use_ref);
      LoadOptions opts;
      opts.n_threads = threads;
      opts.backend = use_ref ? kernels::Backend::kRef : kernels::Backend::kCpu;
      auto model = BuildTiny(c, w, opts);
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      const std::vector<float> batched = RunAll(**model, kPrompt);
      SequenceRunner cache(**model, kPrompt.size());
      std::vector<float> logits;
      for (size_t i = 0; i < kPrompt.size(); ++i) {
        ASSERT_TRUE(cache.Forward(std::span(kPrompt).subspan(i, 1), &logits).ok());
        ASSERT_EQ(logits.size(), static_cast<size_t>(c.n_vocab));
        ASSERT_EQ(0, std::memcmp(logits.data(), batched.data() + i * c.n_vocab, c.n_vocab * 4))
            << "position " << i;
      }
      // Chunks, last-token logits only.
      SequenceRunner chunked(**model, kPrompt.size());
      for (size_t begin = 0; begin < kPrompt.size(); begin += chunk) {
        const size_t len = std::min(chunk, kPrompt.size() - begin);
        ASSERT_TRUE(
            chunked.Forward(std::span(kPrompt).subspan(begin, len), &logits).ok());
        ASSERT_EQ(0, std::memcmp(logits.data(), batched.data() + (begin + len - 1) * c.n_vocab,
                                 c.n_vocab * 4))
            << "chunk at " << begin;
      }
      if (!use_ref) {
        if (reference.empty()) reference = batched;
        ASSERT_EQ(0, std::memcmp(reference.data(), batched.data(), batched.size() * 4));
      }
    }
  }
}

}  // namespace arle::models::testing
