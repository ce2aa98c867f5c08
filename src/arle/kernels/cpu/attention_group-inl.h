// Causal attention of a group of queries on the current Highway target, shared by contiguous
// (ops_cpu.cc) and paged (paged_attention_cpu.cc) attention so the two stay bit-identical: they
// differ only in where K/V row j lives (`row_offset(j)`).
//
// Per query, the online softmax of kernel_args.h (kAttentionKeyStep keys per step), with the same
// steps and the same operations per step as ref/online_attention_ref.h: score_j = dot(q, k_j) *
// scale (one vector accumulator over the head dimension, SumOfLanes, fma tail); the running
// maximum, rescale factor, exponentials and running sum in scalar f32 (std::exp); the output
// rescaled and then accumulated over the step's keys in ascending order; one division at the end.
// Keys, output lanes and queries are processed several at a time (for independent FMA chains and
// for K/V rows reused from L1), but every score and every output lane sees exactly the same
// operations in the same order as a one-query, one-key-at-a-time loop, so the result never depends
// on the grouping, the batch or the context length around it.
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

#include "arle/kernels/kernel_args.h"
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

// scores[j - j0] = dot(q, k_j) * scale for keys j in [j0, j1).
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
    float* s = scores + (j - j0);
    s[0] = DotTail(q, k0, full, hd, hn::GetLane(hn::SumOfLanes(df, a0))) * scale;
    s[1] = DotTail(q, k1, full, hd, hn::GetLane(hn::SumOfLanes(df, a1))) * scale;
    s[2] = DotTail(q, k2, full, hd, hn::GetLane(hn::SumOfLanes(df, a2))) * scale;
    s[3] = DotTail(q, k3, full, hd, hn::GetLane(hn::SumOfLanes(df, a3))) * scale;
  }
  for (; j < j1; ++j) {
    const T* kj = k + row_offset(j);
    VF a = hn::Zero(df);
    for (int64_t i = 0; i < full; i += lanes) a = hn::MulAdd(hn::LoadU(df, q + i), WidenLoad(df, kj + i), a);
    scores[j - j0] = DotTail(q, kj, full, hd, hn::GetLane(hn::SumOfLanes(df, a))) * scale;
  }
}

// How a step's weighted sum starts from the output so far.
enum class Carry {
  kNone,     // first step: start from zero
  kKeep,     // the running maximum did not grow: continue from `out` as it is
  kRescale,  // continue from out * c, c = exp(old max - new max)
};

// out[d] = start(d) + sum_{j in [j0, j1)} p[j - j0] * v_j[d], j ascending, for d in [0, hd), where
// start(d) is 0, out[d] or out[d] * c as `carry` says (an f32 store and reload is exact, so
// splitting the keys into steps adds only the rescale the definition has).
template <typename T, typename RowOffset>
HWY_INLINE void WeightedSum(const float* p, const T* v, int64_t hd, int64_t j0, int64_t j1,
                            const RowOffset& row_offset, Carry carry, float c, float* out) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF cv = hn::Set(df, c);
  auto start = [&](int64_t d) {
    if (carry == Carry::kNone) return hn::Zero(df);
    const VF o = hn::LoadU(df, out + d);
    return carry == Carry::kRescale ? hn::Mul(o, cv) : o;
  };
  int64_t d = 0;
  // Four output vectors per pass over the keys: four independent FMA chains.
  for (; d + 4 * lanes <= hd; d += 4 * lanes) {
    VF o0 = start(d), o1 = start(d + lanes), o2 = start(d + 2 * lanes), o3 = start(d + 3 * lanes);
    for (int64_t j = j0; j < j1; ++j) {
      const VF pj = hn::Set(df, p[j - j0]);
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
      o = hn::MulAdd(hn::Set(df, p[j - j0]), WidenLoad(df, v + row_offset(j) + d), o);
    }
    hn::StoreU(o, df, out + d);
  }
  for (; d < hd; ++d) {
    float o = carry == Carry::kNone ? 0.0f : out[d];
    if (carry == Carry::kRescale) o *= c;
    for (int64_t j = j0; j < j1; ++j) o = std::fma(p[j - j0], WidenAt(v + row_offset(j), d), o);
    out[d] = o;
  }
}

// out[d] /= sum for d in [0, hd).
HWY_INLINE void DivideBy(float sum, int64_t hd, float* out) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF sv = hn::Set(df, sum);
  int64_t d = 0;
  for (; d + lanes <= hd; d += lanes) hn::StoreU(hn::Div(hn::LoadU(df, out + d), sv), df, out + d);
  for (; d < hd; ++d) out[d] /= sum;
}

}  // namespace attention_detail

// Up to this many queries share one pass over their K/V rows.
inline constexpr int64_t kMaxGroupQueries = 8;

// One query of a group: it attends over keys [0, n_seen) and writes head_dim floats to `out`, and
// when `lse` is not null, log(sum_j exp(score_j)) there (the training forward saves it).
struct GroupQuery {
  const float* q;
  int64_t n_seen;
  float* out;
  float* lse = nullptr;
};

// Attention of `m` (<= kMaxGroupQueries) queries that read the same K/V rows (one sequence, one
// KV head): k and v point at the row-0 element of this KV head, row j starts row_offset(j)
// elements further. Each online-softmax step's K and V rows are used by every query while they
// are in L1, so the rows are read from memory once per group instead of once per query, and no
// scratch grows with the context.
template <typename T, typename RowOffset>
HWY_INLINE void AttendGroup(const GroupQuery* queries, int64_t m, const T* k, const T* v,
                            int64_t hd, float scale, const RowOffset& row_offset) {
  using attention_detail::Carry;
  float p[kMaxGroupQueries][kAttentionKeyStep];
  float running_max[kMaxGroupQueries];
  float running_sum[kMaxGroupQueries];
  int64_t max_seen = 0;
  for (int64_t i = 0; i < m; ++i) {
    max_seen = std::max(max_seen, queries[i].n_seen);
    running_max[i] = -INFINITY;
    running_sum[i] = 0.0f;
  }
  for (int64_t j0 = 0; j0 < max_seen; j0 += kAttentionKeyStep) {
    for (int64_t i = 0; i < m; ++i) {
      const int64_t j1 = std::min(j0 + kAttentionKeyStep, queries[i].n_seen);
      if (j1 <= j0) continue;
      attention_detail::Scores(queries[i].q, k, hd, scale, j0, j1, row_offset, p[i]);
    }
    for (int64_t i = 0; i < m; ++i) {
      const int64_t j1 = std::min(j0 + kAttentionKeyStep, queries[i].n_seen);
      if (j1 <= j0) continue;
      const int64_t n = j1 - j0;
      float step_max = running_max[i];
      for (int64_t j = 0; j < n; ++j) step_max = p[i][j] > step_max ? p[i][j] : step_max;
      Carry carry = Carry::kNone;
      float c = 1.0f;
      if (j0 > 0) {
        carry = step_max != running_max[i] ? Carry::kRescale : Carry::kKeep;
        if (carry == Carry::kRescale) {
          c = std::exp(running_max[i] - step_max);
          running_sum[i] *= c;
        }
      }
      running_max[i] = step_max;
      for (int64_t j = 0; j < n; ++j) {
        p[i][j] = std::exp(p[i][j] - step_max);
        running_sum[i] += p[i][j];
      }
      attention_detail::WeightedSum(p[i], v, hd, j0, j1, row_offset, carry, c, queries[i].out);
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    attention_detail::DivideBy(running_sum[i], hd, queries[i].out);
    if (queries[i].lse != nullptr) *queries[i].lse = running_max[i] + std::log(running_sum[i]);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#endif  // ARLE_KERNELS_CPU_ATTENTION_GROUP_INL_H_ toggle
