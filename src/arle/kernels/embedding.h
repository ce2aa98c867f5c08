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

// The lookup's backward: dtable[ids[t], :] += dout[t, :] for every t (accumulates; rows no id
// names stay unchanged). Deterministic: the adds into one row happen in token order whatever the
// pool size (the work is split by columns, never by tokens), and every backend gives the same
// bits (plain f32 additions). REQUIRES (checked): dout f32 [ids.size(), n_embd] contiguous,
// dtable f32 [n_vocab, n_embd] contiguous and not aliasing dout, 0 <= ids[t] < n_vocab. CPU only.
struct EmbeddingBackwardArgs {
  const core::Tensor* dout = nullptr;  // f32 [n_tok, n_embd]
  std::span<const int32_t> ids;        // [n_tok]
  core::Tensor* dtable = nullptr;      // f32 [n_vocab, n_embd]
};
void EmbeddingBackward(const Context& ctx, const EmbeddingBackwardArgs& args);

}  // namespace arle::kernels
