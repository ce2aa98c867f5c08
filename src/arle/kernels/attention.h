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

// Training attention: n_seq equal-length sequences laid out back to back (sequence s is rows
// s * seq_len .. s * seq_len + seq_len - 1, at positions 0 .. seq_len - 1), each causal over its
// own rows, grouped-query as Attention (head h reads kv head h / (n_head / n_head_kv)).
struct CausalAttentionArgs {
  const core::Tensor* q = nullptr;  // f32 [n_seq * seq_len, n_head, head_dim]
  const core::Tensor* k = nullptr;  // f32 [n_seq * seq_len, n_head_kv, head_dim]
  const core::Tensor* v = nullptr;  // f32 [n_seq * seq_len, n_head_kv, head_dim]
  int64_t n_seq = 0, seq_len = 0;
  float scale = 0;
  core::Tensor* out = nullptr;  // f32, q's shape; must not alias q/k/v
  core::Tensor* lse = nullptr;  // f32 [n_seq * seq_len, n_head]: log-sum-exp of each row's scaled
                                // scores, saved for the backward
};
// out as Attention computes it: on the cpu backend bit for bit Attention's out for each sequence
// with positions 0 .. seq_len - 1 (the same online softmax); the ref backend uses a two-pass
// softmax (equal to f32 rounding). Each (row, head) is computed alone, so the bits do not depend on
// the thread count. CPU backends only.
void CausalAttention(const Context& ctx, const CausalAttentionArgs& args);

// Backward of CausalAttention, FlashAttention-2 style: from the saved lse, p_ij = exp(scale q_i.k_j
// - lse_i) is recomputed, and with D_i = dout_i . out_i, ds_ij = p_ij (dout_i . v_j - D_i):
//   dq_i = scale sum_j ds_ij k_j,  dk_j = scale sum_(h in group, i >= j) ds_ij q_i,
//   dv_j = sum_(h in group, i >= j) p_ij dout_i.
// Deterministic: one worker computes all of a (sequence, kv head) pair, summing in a fixed order
// (head of the group, then query, then key, ascending), so the bits do not depend on the thread
// count. Parallel over the n_seq * n_head_kv pairs. CPU backends only.
struct CausalAttentionBackwardArgs {
  const core::Tensor* q = nullptr;
  const core::Tensor* k = nullptr;
  const core::Tensor* v = nullptr;
  const core::Tensor* out = nullptr;   // CausalAttention's out and lse for these q, k, v
  const core::Tensor* lse = nullptr;
  const core::Tensor* dout = nullptr;  // f32, q's shape
  int64_t n_seq = 0, seq_len = 0;
  float scale = 0;
  core::Tensor* dq = nullptr;  // overwritten; q/k/v shapes; must not alias any input or each other
  core::Tensor* dk = nullptr;
  core::Tensor* dv = nullptr;
};
void CausalAttentionBackward(const Context& ctx, const CausalAttentionBackwardArgs& args);

}  // namespace arle::kernels
