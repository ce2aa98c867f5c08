// The forward as blocks over explicit activations: the kept-per-layer mode (what a backward reads)
// gives the serving forward's logits bit for bit, keeps every layer's tensors apart and the
// layer inputs intact; and owned, writable weights serve the same forward as mapped ones.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "arle/kernels/attention.h"
#include "arle/models/llama/llama_model.h"
#include "tests/models/sequence_runner.h"
#include "tests/models/tiny_model.h"
#include "tests/models/tiny_variants.h"

namespace arle::models::llama {
namespace {

using models::testing::BuildTiny;
using models::testing::kPrompt;
using models::testing::SequenceRunner;
using models::testing::TinyConfig;
using models::testing::TinyModelWeights;

// The whole prompt through RunLayers with kept activations, attention over this step's own keys
// (contiguous: the prompt is the whole sequence), then the LM head over every row.
std::vector<float> KeptForward(LlamaModel& m, Activations& act) {
  const LlamaConfig& c = m.config();
  const int64_t n = static_cast<int64_t>(kPrompt.size());
  EXPECT_TRUE(act.Reserve(n).ok());
  std::vector<int32_t> positions(n);
  std::iota(positions.begin(), positions.end(), 0);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  auto attend = [&](int64_t, const core::Tensor& q3, const core::Tensor& k3,
                    const core::Tensor& v3, core::Tensor& att3) {
    kernels::Attention(*m.context(), {.q = &q3, .k = &k3, .v = &v3, .positions = positions,
                                      .scale = scale, .out = &att3});
  };
  m.RunLayers(kPrompt, positions, attend, act);
  std::vector<int64_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  std::vector<float> logits;
  m.Logits(act, act.layer(c.n_layer - 1).out, rows, &logits);
  return logits;
}

TEST(ActivationsTest, KeptActivationsGiveTheServingLogitsAndKeepEveryLayer) {
  for (const Architecture arch : {Architecture::kQwen3, Architecture::kLlama}) {
    SCOPED_TRACE(std::string(ArchitectureName(arch)));
    const LlamaConfig c = TinyConfig(arch);
    auto model = BuildTiny(c, TinyModelWeights(c, core::DType::kBF16, 31));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    SequenceRunner runner(**model, 64);
    std::vector<float> served;
    ASSERT_TRUE(runner.Forward(kPrompt, &served, /*all_logits=*/true).ok());

    Activations act(Activations::Mode::kKeepAll, c);
    const std::vector<float> kept = KeptForward(**model, act);
    ASSERT_EQ(kept.size(), served.size());
    EXPECT_EQ(0, std::memcmp(kept.data(), served.data(), kept.size() * 4));

    // Every layer's tensors are its own; layer l + 1 reads layer l's output, and what a backward
    // needs survives: the embedding (layer 0's x), q before RoPE, gate before SwiGLU.
    for (int64_t l = 0; l + 1 < c.n_layer; ++l) {
      EXPECT_EQ(act.layer(l + 1).x.data(), act.layer(l).out.data());
      EXPECT_NE(act.layer(l + 1).attn_norm.data(), act.layer(l).attn_norm.data());
    }
    EXPECT_EQ(act.layer(0).x.data(), act.embd().data());
    const LayerActivations& a = act.layer(0);
    EXPECT_NE(a.q.data(), a.q_rope.data());
    EXPECT_NE(a.gate.data(), a.swiglu.data());
    EXPECT_NE(0, std::memcmp(a.q.data(), a.q_rope.data(), a.q.nbytes()));
    // x + attn_out = ffn_inp, element by element: the residual input was not overwritten.
    const float* x = a.x.data_as<float>();
    const float* o = a.attn_out.data_as<float>();
    const float* f = a.ffn_inp.data_as<float>();
    for (int64_t i = 0; i < a.x.numel(); ++i) ASSERT_EQ(x[i] + o[i], f[i]) << i;
  }
}

TEST(ActivationsTest, OwnedWritableWeightsServeTheSameForward) {
  const LlamaConfig c = TinyConfig(Architecture::kQwen3);
  auto mapped = BuildTiny(c, TinyModelWeights(c, core::DType::kF32, 32));
  ASSERT_TRUE(mapped.ok());
  EXPECT_FALSE((*mapped)->weights().writable);
  auto owned_weights = OwnedF32Copy((*mapped)->weights());
  ASSERT_TRUE(owned_weights.ok()) << owned_weights.status().ToString();
  EXPECT_TRUE(owned_weights->writable);
  EXPECT_NE(owned_weights->embed.data(), (*mapped)->weights().embed.data());
  core::Tensor first_q = owned_weights->layers[0].wq;  // a view into the owned copy
  auto owned = LlamaModel::FromWeights(c, std::move(owned_weights).value());
  ASSERT_TRUE(owned.ok()) << owned.status().ToString();

  std::vector<float> a, b;
  SequenceRunner ra(**mapped, 64), rb(**owned, 64);
  ASSERT_TRUE(ra.Forward(kPrompt, &a, true).ok());
  ASSERT_TRUE(rb.Forward(kPrompt, &b, true).ok());
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));

  // An update written into the owned weights is what the next forward uses.
  first_q.data_as<float>()[0] += 1.0f;
  SequenceRunner rc(**owned, 64);
  std::vector<float> changed;
  ASSERT_TRUE(rc.Forward(kPrompt, &changed, true).ok());
  EXPECT_NE(0, std::memcmp(a.data(), changed.data(), a.size() * 4));
}

}  // namespace
}  // namespace arle::models::llama
