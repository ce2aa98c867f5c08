// Highway SIMD kernels with runtime dispatch to the best target the CPU supports (or the target
// forced by hwy::SetSupportedTargetsForTest). Same contracts as ref/ref_kernels.h; every output
// element is reduced in an order fixed by the target alone (vector accumulator over lanes,
// SumOfLanes, then a scalar tail), independent of batch size, tiling and thread count.
#pragma once

#include <cstdint>

#include "arle/kernels/kernel_args.h"

namespace arle::kernels::cpu {

// Output columns [o_begin, o_end) of every token.
void MatMulRows(const MatMulParams& args, int64_t o_begin, int64_t o_end);
// Rows [begin, end).
void RmsNormRows(const RmsNormParams& args, int64_t begin, int64_t end);
// Attention work items [begin, end) of [0, n_tok * n_head), in ItemAt's order.
void AttentionRows(const AttentionParams& args, int64_t begin, int64_t end);
// Work item `item` of attention: head-group-major, so consecutive items (the query heads of one
// KV head, token after token) read the same K/V rows while they are still in cache. Any order
// gives the same bits; this one is only faster.
struct AttentionItem {
  int64_t t, h, kvh;
};
inline AttentionItem ItemAt(int64_t item, int64_t n_tok, int64_t n_head, int64_t group) {
  const int64_t per_kv_head = n_tok * group;
  const int64_t kvh = item / per_kv_head;
  const int64_t r = item % per_kv_head;
  return {r / group, kvh * group + r % group, kvh};
}

// kernels::ReadAll on the current target.
float ReadAll(const float* p, int64_t n);

// Name of the Highway target the dispatcher currently picks ("AVX2", ...).
const char* ChosenTargetName();

}  // namespace arle::kernels::cpu

namespace arle::kernels::cpu {

// Work items [begin, end) of paged attention (ItemAt's order): the same operations as
// AttentionRows on the same target, rows found through the block table and 16-bit rows widened
// exactly to f32 as they are loaded (bit-identical to AttentionRows over the widened rows).
void PagedAttentionRows(const PagedAttentionParams& args, int64_t begin, int64_t end);

}  // namespace arle::kernels::cpu

#include "arle/kernels/ref/backward_linear_ref.h"  // the parameter blocks

namespace arle::kernels::cpu {

// The linear backward kernels (contracts in ref/backward_linear_ref.h). GemmBlock: each element
// one FMA chain over k ascending (the columns past the last whole vector: multiply then add);
// ColumnSums and EmbeddingBackwardColumns: the same bits as their ref twins.
// B is read in place when packed_b is null (it must then be row-major, p.b_col == 1), else from
// PackGemmB's panels of the whole of B (the scalar tail reads p.b).
void GemmBlock(const GemmParams<float>& p, const float* packed_b, int64_t m_begin, int64_t m_end,
               int64_t n_begin, int64_t n_end);
// B's columns [n_begin, n_end) that GemmBlock computes with vectors (those below the last whole
// vector of p.n), all k, into micro-panels of GemmPanelWidth() columns (the last may be
// narrower): the panel of columns [j, j + w) at dst + j * p.k, row-major with rows w apart.
// n_begin is a multiple of GemmPanelWidth(); dst holds p.k * p.n floats.
void PackGemmB(const GemmParams<float>& p, int64_t n_begin, int64_t n_end, float* dst);
int64_t GemmPanelWidth();
// The calling thread's buffer of at least `floats` floats for PackGemmB, cache-line aligned,
// grown as needed and kept (its pages are not faulted in again per product). Valid until the
// thread's next call.
float* GemmPackedBBuffer(int64_t floats);
void ColumnSums(const float* a, int64_t a_row, int64_t n_rows, bool accumulate, float* sum,
                int64_t begin, int64_t end);
void EmbeddingBackwardColumns(const EmbeddingBackwardParams<float>& p, int64_t c_begin,
                              int64_t c_end);
// Rows [begin, end); exp by Highway's vector Exp (a few ulp), so within tolerance of the ref.
void CrossEntropyRows(const CrossEntropyParams<float>& p, int64_t begin, int64_t end);

}  // namespace arle::kernels::cpu

#include "arle/kernels/backward_layer_args.h"

namespace arle::kernels::cpu {

// The layer backward kernels and training attention on the current target (contracts in
// ref/backward_layer_ref.h; results within rounding of the reference, and independent of how the
// dispatcher splits the range).
void RmsNormInvRows(const RmsNormBackwardParams<float>& p, int64_t begin, int64_t end);
void RmsNormBackwardDw(const RmsNormBackwardParams<float>& p, int64_t begin, int64_t end);
void RmsNormBackwardDxRows(const RmsNormBackwardParams<float>& p, int64_t begin, int64_t end);
void RopeBackwardRows(const RopeBackwardParams<float>& p, int64_t begin, int64_t end);
void SwiGluBackwardRange(const SwiGluBackwardParams<float>& p, int64_t begin, int64_t end);
// Forward items [begin, end) of [0, n_seq * n_head_kv * seq_len * (n_head / n_head_kv)) in
// (sequence, kv head, query row, head of the group) order: out and lse of one (row, head) each,
// bit for bit AttentionRows' out for that query over its sequence's rows.
void CausalAttentionItems(const CausalAttentionParams<float>& p, int64_t begin, int64_t end);
// Backward units [begin, end) of [0, n_seq * n_head_kv), as ref::CausalAttentionBackwardUnits.
void CausalAttentionBackwardUnits(const CausalAttentionParams<float>& p, int64_t begin,
                                  int64_t end);

}  // namespace arle::kernels::cpu
