// Models with GGUF block weights (the matrices of llama.cpp's Q8_0 and Q4_K_M files), built from a
// tiny random model whose every matrix dimension is a whole number of 256-value super-blocks:
// - the logits stay within a stated tolerance of the same model with the dequantized f32 weights
//   (the gap is the 8-bit activation rounding of the integer dot products);
// - the determinism contract holds: one batch = token by token = chunks, for 1 and 2 threads, and
//   the thread count does not change a bit.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "arle/kernels/quant.h"
#include "arle/models/llama/llama_model.h"
#include "arle/models/registry.h"
#include "tiny_model.h"
#include "tiny_variants.h"

namespace arle::models {
namespace {

using testing::BuildTiny;
using testing::kPrompt;
using testing::RunAll;
using testing::TinyWeights;

llama::LlamaConfig QuantizableConfig() {
  llama::LlamaConfig c = testing::TinyConfig(llama::Architecture::kQwen3);
  c.n_embd = 256;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 64;
  c.n_ff = 512;
  return c;
}

// Which block format each matrix gets: Q8_0 everywhere, or Q4_K_M's mix (Q6_K for the output
// matrix and the FFN down projections of the first layer, Q4_K for the rest).
core::DType FormatFor(const std::string& name, core::DType base) {
  if (base != core::DType::kQ4_K) return base;
  if (name == "lm_head.weight" || name == "model.layers.0.mlp.down_proj.weight") {
    return core::DType::kQ6_K;
  }
  return core::DType::kQ4_K;
}

struct QuantizedPair {
  std::shared_ptr<TinyWeights> quantized, dequantized;
};

// Every matrix of `src` (f32) in a block format, and the same model with those blocks'
// dequantized values in f32; vectors (norms) stay f32 in both.
QuantizedPair Quantize(const TinyWeights& src, core::DType base) {
  QuantizedPair out{std::make_shared<TinyWeights>(), std::make_shared<TinyWeights>()};
  for (const auto& [name, t] : src.tensors) {
    std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
    const int64_t n = t.numel();
    core::Buffer f32(n * 4);
    std::memcpy(f32.data(), t.data(), n * 4);
    if (t.rank() != 2) {
      core::Buffer copy(n * 4);
      std::memcpy(copy.data(), t.data(), n * 4);
      out.quantized->tensors[name] = f32.AsTensor(core::DType::kF32, shape);
      out.quantized->buffers[name] = std::move(f32);
      out.dequantized->tensors[name] = copy.AsTensor(core::DType::kF32, shape);
      out.dequantized->buffers[name] = std::move(copy);
      continue;
    }
    const core::DType dtype = FormatFor(name, base);
    core::Buffer q(*core::DTypeBytes(dtype, n));
    kernels::QuantizeRow(dtype, f32.as<float>(), n, q.data());
    kernels::DequantizeRow(dtype, q.data(), n, f32.as<float>());
    out.quantized->tensors[name] = q.AsTensor(dtype, shape);
    out.quantized->buffers[name] = std::move(q);
    out.dequantized->tensors[name] = f32.AsTensor(core::DType::kF32, shape);
    out.dequantized->buffers[name] = std::move(f32);
  }
  return out;
}

class QuantizedModelTest : public ::testing::TestWithParam<core::DType> {};

// Tolerance: each matmul input is rounded to 8 bits per 32 (Q8_0) or 256 (K-quants) values: for
// Gaussian-like activations the step is about 6 sigma / 254, an RMS error of ~0.5 % (Q8_0) to
// ~0.7 % (K-quants) of each input. Seven quantized inputs per layer, two layers and the head,
// with random weights that amplify perturbations, put the logits' RMS deviation at a few percent
// (measured 2.2 % for Q8_0 and 2.9 % for Q4_K_M); the bound is 5 %. A wrong block decoding,
// scale or min moves the logits by their own size.
TEST_P(QuantizedModelTest, LogitsStayCloseToTheDequantizedF32Model) {
  const llama::LlamaConfig c = QuantizableConfig();
  auto f32 = testing::TinyModelWeights(c, core::DType::kF32, 42);
  const QuantizedPair pair = Quantize(*f32, GetParam());
  LoadOptions opts;
  opts.n_threads = 2;
  auto quantized = BuildTiny(c, pair.quantized, opts);
  auto dequantized = BuildTiny(c, pair.dequantized, opts);
  ASSERT_TRUE(quantized.ok()) << quantized.status().ToString();
  ASSERT_TRUE(dequantized.ok()) << dequantized.status().ToString();
  const std::vector<float> q = RunAll(**quantized, kPrompt);
  const std::vector<float> d = RunAll(**dequantized, kPrompt);
  ASSERT_EQ(q.size(), d.size());
  double diff2 = 0, ref2 = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    diff2 += (q[i] - d[i]) * static_cast<double>(q[i] - d[i]);
    ref2 += d[i] * static_cast<double>(d[i]);
  }
  const double rel_rms = std::sqrt(diff2 / ref2);
  RecordProperty("relative_rms", std::to_string(rel_rms));
  EXPECT_GT(ref2 / q.size(), 0.25);  // the logits are not degenerate
  EXPECT_LT(rel_rms, 0.05) << "relative RMS deviation of the logits";
  EXPECT_GT(rel_rms, 0.0) << "identical logits: were the activations quantized at all?";
}

TEST_P(QuantizedModelTest, BatchedEqualsTokenByTokenEqualsChunkedOnBothBackends) {
  const llama::LlamaConfig c = QuantizableConfig();
  auto f32 = testing::TinyModelWeights(c, core::DType::kF32, 43);
  testing::ExpectDeterminismContract(c, Quantize(*f32, GetParam()).quantized, /*chunk=*/5);
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantizedModelTest,
                         ::testing::Values(core::DType::kQ8_0, core::DType::kQ4_K),
                         [](const auto& info) {
                           return info.param == core::DType::kQ8_0 ? "Q8_0" : "Q4_K_M";
                         });

}  // namespace
}  // namespace arle::models
