// Causal grouped-query attention of a batch of query tokens over one sequence's KV cache.
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/tensor.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/backend.h"

namespace arle::kernels {

// out[t, h, :] = sum_j softmax_j(scale * q[t, h, :] . k[j, h / group, :]) * v[j, h / group, :] over
// cache rows j = 0 .. positions[t] (inclusive), group = n_head / n_head_kv. Softmax in f32.
// q: f32 [n_tok, n_head, head_dim]; k, v: f32 [n_ctx, n_head_kv, head_dim] (rows past the
// largest position are never read); positions: [n_tok], 0 <= positions[t] < n_ctx;
// out: f32 [n_tok, n_head, head_dim], must not alias q/k/v. Each (t, h) is computed alone, so the
// result does not depend on the other tokens of the batch or on the pool size.
void Attention(const core::Tensor& q, const core::Tensor& k, const core::Tensor& v,
               std::span<const int32_t> positions, float scale, core::Tensor& out,
               core::ThreadPool& pool, Backend backend = Backend::kDefault);

}  // namespace arle::kernels
