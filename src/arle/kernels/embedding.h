// Embedding lookup: rows of a f32/f16/bf16 or GGUF block-format table gathered into f32
// activations.
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

// out[t, :] = f32(table[ids[t], :]). table: f32/f16/bf16 or a block format of kernels/quant.h
// (dequantized exactly as DequantizeRow) [n_vocab, n_embd] contiguous;
// out: f32 [ids.size(), n_embd]. REQUIRES (checked): 0 <= ids[t] < n_vocab — callers validate
// user-supplied ids first and report bad ones as a Status.
struct EmbeddingArgs {
  const core::Tensor* table = nullptr;
  std::span<const int32_t> ids;
  core::Tensor* out = nullptr;
};
void Embedding(const Context& ctx, const EmbeddingArgs& args);

}  // namespace arle::kernels
