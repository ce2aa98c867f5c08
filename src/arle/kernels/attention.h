// Causal grouped-query attention of a batch of query tokens over one sequence's KV cache.
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

// Causal grouped-query attention over one sequence's K/V rows stored contiguously (the paged
// kernel's twin, used to test it and by callers that hold a plain cache).
struct AttentionArgs {
  const core::Tensor* q = nullptr;     // f32 [n_tok, n_head, head_dim]
  const core::Tensor* k = nullptr;     // f32 [n_ctx, n_head_kv, head_dim]; rows past the largest
  const core::Tensor* v = nullptr;     // position are never read
  std::span<const int32_t> positions;  // [n_tok], 0 <= positions[t] < n_ctx
  float scale = 0;
  core::Tensor* out = nullptr;  // f32 [n_tok, n_head, head_dim], must not alias q/k/v
};

// out[t, h, :] = sum_j softmax_j(scale * q[t, h, :] . k[j, h / group, :]) * v[j, h / group, :] over
// rows j = 0 .. positions[t] (inclusive), group = n_head / n_head_kv. Softmax in f32. Each (t, h)
// is computed alone, so the result does not depend on the other tokens of the batch or on the
// pool size. CPU backends only.
void Attention(const Context& ctx, const AttentionArgs& args);

}  // namespace arle::kernels
