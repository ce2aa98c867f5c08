// The determinism contract on tiny random models: batched prefill, token-by-token decode and
// chunked prefill give bit-identical logits at every position, for 1 and 2 threads and both
// kernel backends. (Separate binary: it runs dozens of forwards and is labelled slow.)
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "arle/models/model.h"
#include "tiny_model.h"
#include "tiny_variants.h"

namespace arle::models {
namespace {

using testing::BuildTiny;
using testing::kPrompt;
using testing::kVariants;
using testing::RunAll;
using testing::TinyModelWeights;
using testing::Variant;
using testing::VariantConfig;

class DeterminismTest : public ::testing::TestWithParam<Variant> {};

// The determinism contract: prefill as one batch, decode token by token, or mixed chunks give
// bit-identical logits for every position, whatever the thread count.
TEST_P(DeterminismTest, BatchedPrefillEqualsTokenByTokenDecodeBitForBit) {
  const io::ModelConfig c = VariantConfig(GetParam());
  auto w = TinyModelWeights(c, GetParam().dtype, 321);
  std::vector<float> reference;
  for (const int threads : {1, 2}) {
    for (const bool use_ref : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "threads=" << threads << " ref=" << use_ref);
      LoadOptions opts;
      opts.n_threads = threads;
      opts.force_reference_kernels = use_ref;
      auto model = BuildTiny(c, w, opts);
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      const std::vector<float> batched = RunAll(**model, kPrompt);
      // One token at a time.
      auto cache = (*model)->NewKvCache(kPrompt.size());
      std::vector<float> logits;
      for (size_t i = 0; i < kPrompt.size(); ++i) {
        ASSERT_TRUE((*model)->Forward(std::span(kPrompt).subspan(i, 1), *cache, &logits).ok());
        ASSERT_EQ(logits.size(), static_cast<size_t>(c.n_vocab));
        ASSERT_EQ(0, std::memcmp(logits.data(), batched.data() + i * c.n_vocab, c.n_vocab * 4))
            << "position " << i;
      }
      // Chunks of 4, 4, 3, last-token logits only.
      auto cache2 = (*model)->NewKvCache(kPrompt.size());
      for (size_t begin = 0; begin < kPrompt.size(); begin += 4) {
        const size_t len = std::min<size_t>(4, kPrompt.size() - begin);
        ASSERT_TRUE((*model)->Forward(std::span(kPrompt).subspan(begin, len), *cache2, &logits).ok());
        const size_t last = begin + len - 1;
        ASSERT_EQ(0, std::memcmp(logits.data(), batched.data() + last * c.n_vocab, c.n_vocab * 4));
      }
      if (!use_ref) {
        if (reference.empty()) {
          reference = batched;
        } else {
          ASSERT_EQ(0, std::memcmp(reference.data(), batched.data(), batched.size() * 4));
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, DeterminismTest, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace arle::models
