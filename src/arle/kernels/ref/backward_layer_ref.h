// Reference (scalar) twins of the layer backward kernels and the training attention forward:
// plain loops with sequential sums, instantiated for float (the kRef backend) and double (the
// finite-difference tests). Each processes a range of independent work items.
#pragma once

#include <cstdint>

#include "arle/kernels/backward_layer_args.h"

namespace arle::kernels::ref {

// inv[r] = 1 / sqrt(sum_i x[r, i]^2 / n + eps) for rows [begin, end), as RmsNorm computes it.
template <typename T>
void RmsNormInvRows(const RmsNormBackwardParams<T>& p, int64_t begin, int64_t end);
// dw[i] += sum over rows r ascending of dy[r, i] * (x[r, i] * inv[r]), for columns [begin, end).
template <typename T>
void RmsNormBackwardDw(const RmsNormBackwardParams<T>& p, int64_t begin, int64_t end);
// Rows [begin, end) of dx (= or +=) inv * (g - xhat * sum_j(g_j * xhat_j) / n), with g = dy * w
// and xhat = x * inv.
template <typename T>
void RmsNormBackwardDxRows(const RmsNormBackwardParams<T>& p, int64_t begin, int64_t end);

// Tokens [begin, end): dx[i] = dy[i] c + dy[i + h] s, dx[i + h] = dy[i + h] c - dy[i] s.
template <typename T>
void RopeBackwardRows(const RopeBackwardParams<T>& p, int64_t begin, int64_t end);

// Elements [begin, end): with s = sigmoid(gate), dup = dswiglu * gate * s and
// dgate = dswiglu * up * s * (1 + gate * (1 - s)).
template <typename T>
void SwiGluBackwardRange(const SwiGluBackwardParams<T>& p, int64_t begin, int64_t end);
// sigmoid(g) without overflow: exp of -|g| only.
template <typename T>
T StableSigmoid(T g);

// Forward units [begin, end) of [0, n_seq * n_head), unit = s * n_head + h: out and lse of every
// query row of sequence s, head h (two-pass softmax: max, then sum of exponentials).
template <typename T>
void CausalAttentionUnits(const CausalAttentionParams<T>& p, int64_t begin, int64_t end);
// Backward units [begin, end) of [0, n_seq * n_head_kv), unit = s * n_head_kv + kvh: dq of the
// group's heads and dk/dv of kv head kvh in sequence s. Loops: head of the group, query i, key
// j <= i, all ascending; p = exp(scale * q.k - lse), ds = p * (dout.v - dout.out).
template <typename T>
void CausalAttentionBackwardUnits(const CausalAttentionParams<T>& p, int64_t begin, int64_t end);

}  // namespace arle::kernels::ref
