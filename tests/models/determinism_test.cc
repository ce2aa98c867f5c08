// The determinism contract on tiny random models: batched prefill, token-by-token decode and
// chunked prefill give bit-identical logits at every position, for 1 and 2 threads and both
// kernel backends. (Separate binary: it runs dozens of forwards and is labelled slow.)
#include <gtest/gtest.h>

#include "arle/models/llama/llama_model.h"
#include "arle/models/registry.h"
#include "tiny_model.h"
#include "tiny_variants.h"

namespace arle::models {
namespace {

using testing::kVariants;
using testing::TinyModelWeights;
using testing::Variant;
using testing::VariantConfig;

class DeterminismTest : public ::testing::TestWithParam<Variant> {};

// The determinism contract: prefill as one batch, decode token by token, or mixed chunks give
// bit-identical logits for every position, whatever the thread count.
TEST_P(DeterminismTest, BatchedPrefillEqualsTokenByTokenDecodeBitForBit) {
  const llama::LlamaConfig c = VariantConfig(GetParam());
  testing::ExpectDeterminismContract(c, TinyModelWeights(c, GetParam().dtype, 321), /*chunk=*/4);
}

INSTANTIATE_TEST_SUITE_P(Tiny, DeterminismTest, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace arle::models
