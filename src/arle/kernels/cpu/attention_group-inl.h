// Causal attention of a group of queries on the current Highway target, shared by contiguous
// (ops_cpu.cc) and paged (paged_attention_cpu.cc) attention so the two stay bit-identical: they
// differ only in where K/V row j lives (`row_offset(j)`).
//
// Per query: score_j = dot(q, k_j) * scale (one vector accumulator over the head dimension,
// SumOfLanes, fma tail), softmax in scalar f32 (std::exp), out = sum_j p_j * v_j accumulated over
// j in ascending order. Keys, output lanes and queries are processed several at a time (for
// independent FMA chains and for K/V rows reused from L1), but every score and every output lane
// sees exactly the same operations in the same order as a one-query, one-key-at-a-time loop, so
// the result never depends on the grouping, the batch or the context length around it.
//
// Highway "-inl" header: included once per target from a file using foreach_target.h.

#if defined(ARLE_KERNELS_CPU_ATTENTION_GROUP_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ARLE_KERNELS_CPU_ATTENTION_GROUP_INL_H_
#undef ARLE_KERNELS_CPU_ATTENTION_GROUP_INL_H_
#else
#define ARLE_KERNELS_CPU_ATTENTION_GROUP_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "hwy/highway.h"
// After highway.h:
#include "arle/kernels/cpu/widen-inl.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
namespace attention_detail {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Adds the scalar tail q[i] * k[i], i in [from, n), to the vector part `s` of dot(q, k). std::fma
// keeps the tails' rounding independent of how the compiler contracts each call site.
template <typename T>
HWY_INLINE float DotTail(const float* q, const T* k, int64_t from, int64_t n, float s) {
  for (int64_t i = from; i < n; ++i) s = std::fma(q[i], WidenAt(k, i), s);
  return s;
}

// scores[j] = dot(q, k_j) * scale for keys j in [j0, j1).
template <typename T, typename RowOffset>
HWY_INLINE void Scores(const float* q, const T* k, int64_t hd, float scale, int64_t j0, int64_t j1,
                       const RowOffset& row_offset, float* scores) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t full = hd - hd % lanes;
  int64_t j = j0;
  // Four keys at a time: four independent accumulators, each the single-key computation.
  for (; j + 4 <= j1; j += 4) {
    const T* k0 = k + row_offset(j);
    const T* k1 = k + row_offset(j + 1);
    const T* k2 = k + row_offset(j + 2);
    const T* k3 = k + row_offset(j + 3);
    VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    for (int64_t i = 0; i < full; i += lanes) {
      const VF qv = hn::LoadU(df, q + i);
      a0 = hn::MulAdd(qv, WidenLoad(df, k0 + i), a0);
      a1 = hn::MulAdd(qv, WidenLoad(df, k1 + i), a1);
      a2 = hn::MulAdd(qv, WidenLoad(df, k2 + i), a2);
      a3 = hn::MulAdd(qv, WidenLoad(df, k3 + i), a3);
    }
    scores[j] = DotTail(q, k0, full, hd, hn::GetLane(hn::SumOfLanes(df, a0))) * scale;
    scores[j + 1] = DotTail(q, k1, full, hd, hn::GetLane(hn::SumOfLanes(df, a1))) * scale;
    scores[j + 2] = DotTail(q, k2, full, hd, hn::GetLane(hn::SumOfLanes(df, a2))) * scale;
    scores[j + 3] = DotTail(q, k3, full, hd, hn::GetLane(hn::SumOfLanes(df, a3))) * scale;
  }
  for (; j < j1; ++j) {
    const T* kj = k + row_offset(j);
    VF a = hn::Zero(df);
    for (int64_t i = 0; i < full; i += lanes) a = hn::MulAdd(hn::LoadU(df, q + i), WidenLoad(df, kj + i), a);
    scores[j] = DotTail(q, kj, full, hd, hn::GetLane(hn::SumOfLanes(df, a))) * scale;
  }
}

// out[d] (+)= sum_{j in [j0, j1)} p[j] * v_j[d], j ascending, for d in [0, hd); starts from zero
// when `first`, else continues the partial sums already in `out` (an f32 store and reload is
// exact, so splitting the keys into ranges never changes a bit).
template <typename T, typename RowOffset>
HWY_INLINE void WeightedSum(const float* p, const T* v, int64_t hd, int64_t j0, int64_t j1,
                            const RowOffset& row_offset, bool first, float* out) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto start = [&](int64_t d) { return first ? hn::Zero(df) : hn::LoadU(df, out + d); };
  int64_t d = 0;
  // Four output vectors per pass over the keys: four independent FMA chains.
  for (; d + 4 * lanes <= hd; d += 4 * lanes) {
    VF o0 = start(d), o1 = start(d + lanes), o2 = start(d + 2 * lanes), o3 = start(d + 3 * lanes);
    for (int64_t j = j0; j < j1; ++j) {
      const VF pj = hn::Set(df, p[j]);
      const T* vj = v + row_offset(j) + d;
      o0 = hn::MulAdd(pj, WidenLoad(df, vj), o0);
      o1 = hn::MulAdd(pj, WidenLoad(df, vj + lanes), o1);
      o2 = hn::MulAdd(pj, WidenLoad(df, vj + 2 * lanes), o2);
      o3 = hn::MulAdd(pj, WidenLoad(df, vj + 3 * lanes), o3);
    }
    hn::StoreU(o0, df, out + d);
    hn::StoreU(o1, df, out + d + lanes);
    hn::StoreU(o2, df, out + d + 2 * lanes);
    hn::StoreU(o3, df, out + d + 3 * lanes);
  }
  for (; d + lanes <= hd; d += lanes) {
    VF o = start(d);
    for (int64_t j = j0; j < j1; ++j) {
      o = hn::MulAdd(hn::Set(df, p[j]), WidenLoad(df, v + row_offset(j) + d), o);
    }
    hn::StoreU(o, df, out + d);
  }
  for (; d < hd; ++d) {
    float o = first ? 0.0f : out[d];
    for (int64_t j = j0; j < j1; ++j) o = std::fma(p[j], WidenAt(v + row_offset(j), d), o);
    out[d] = o;
  }
}

// Keys per block: a block's K (or V) rows stay in L1 while every query of the group uses them.
inline constexpr int64_t kKeyBlock = 16;

}  // namespace attention_detail

// Up to this many queries share one pass over their K/V rows.
inline constexpr int64_t kMaxGroupQueries = 8;

// One query of a group: it attends over keys [0, n_seen) and writes head_dim floats to `out`.
struct GroupQuery {
  const float* q;
  int64_t n_seen;
  float* out;
};

// Attention of `m` (<= kMaxGroupQueries) queries that read the same K/V rows (one sequence, one
// KV head): k and v point at the row-0 element of this KV head, row j starts row_offset(j)
// elements further. The keys are walked in blocks that every query uses while they are in L1, so
// the rows are read from memory once per group instead of once per query. `scores` has room for
// m * score_stride floats, score_stride >= every n_seen (scratch).
template <typename T, typename RowOffset>
HWY_INLINE void AttendGroup(const GroupQuery* queries, int64_t m, const T* k, const T* v,
                            int64_t hd, float scale, const RowOffset& row_offset, float* scores,
                            int64_t score_stride) {
  using attention_detail::kKeyBlock;
  int64_t max_seen = 0;
  for (int64_t i = 0; i < m; ++i) max_seen = std::max(max_seen, queries[i].n_seen);
  for (int64_t j0 = 0; j0 < max_seen; j0 += kKeyBlock) {
    for (int64_t i = 0; i < m; ++i) {
      const int64_t j1 = std::min(j0 + kKeyBlock, queries[i].n_seen);
      if (j1 <= j0) continue;
      attention_detail::Scores(queries[i].q, k, hd, scale, j0, j1, row_offset,
                            scores + i * score_stride);
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    float* p = scores + i * score_stride;
    const int64_t n = queries[i].n_seen;
    float max_score = -INFINITY;
    for (int64_t j = 0; j < n; ++j) max_score = p[j] > max_score ? p[j] : max_score;
    float sum = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      p[j] = std::exp(p[j] - max_score);
      sum += p[j];
    }
    for (int64_t j = 0; j < n; ++j) p[j] /= sum;
  }
  for (int64_t j0 = 0; j0 < max_seen; j0 += kKeyBlock) {
    for (int64_t i = 0; i < m; ++i) {
      const int64_t j1 = std::min(j0 + kKeyBlock, queries[i].n_seen);
      if (j1 <= j0) continue;
      attention_detail::WeightedSum(scores + i * score_stride, v, hd, j0, j1, row_offset,
                                 /*first=*/j0 == 0, queries[i].out);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#endif  // ARLE_KERNELS_CPU_ATTENTION_GROUP_INL_H_ toggle
