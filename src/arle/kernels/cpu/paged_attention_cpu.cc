// Highway paged attention: ops_cpu.cc's AttentionRows, operation for operation, with each K/V row
// found through the sequence's block table. 16-bit rows are widened as they are loaded (exact).
#include <cmath>
#include <vector>

#include "arle/core/check.h"
#include "arle/core/half.h"
#include "arle/kernels/cpu/cpu_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "arle/kernels/cpu/paged_attention_cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Lanes of a cache row as f32 vectors / scalars. Widening bf16 and f16 is exact, so computing on
// the widened values as they load equals computing on a widened copy of the row.
template <typename T>
HWY_INLINE VF LoadKv(DF df, const T* p);
template <>
HWY_INLINE VF LoadKv(DF df, const float* p) {
  return hn::LoadU(df, p);
}
template <>
HWY_INLINE VF LoadKv(DF df, const hwy::bfloat16_t* p) {
  const hn::Rebind<hwy::bfloat16_t, DF> dbf;
  return hn::PromoteTo(df, hn::LoadU(dbf, p));
}
template <>
HWY_INLINE VF LoadKv(DF df, const hwy::float16_t* p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, p));
}

template <typename T>
HWY_INLINE float KvAt(const T* p, int64_t i);
template <>
HWY_INLINE float KvAt(const float* p, int64_t i) {
  return p[i];
}
template <>
HWY_INLINE float KvAt(const hwy::bfloat16_t* p, int64_t i) {
  return core::BF16ToF32(reinterpret_cast<const uint16_t*>(p)[i]);
}
template <>
HWY_INLINE float KvAt(const hwy::float16_t* p, int64_t i) {
  return core::F16ToF32(reinterpret_cast<const uint16_t*>(p)[i]);
}

// sum_i q[i] * k[i]: the reduction of ops_cpu.cc's Dot (one vector accumulator, SumOfLanes, then
// a scalar tail), so f32 rows give the same bits as contiguous attention.
template <typename T>
HWY_INLINE float DotKv(const float* q, const T* k, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF acc = hn::Zero(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) acc = hn::MulAdd(hn::LoadU(df, q + i), LoadKv(df, k + i), acc);
  float s = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) s += q[i] * KvAt(k, i);
  return s;
}

template <typename T>
void PagedAttentionRowsT(const PagedAttentionArgs& a, int64_t begin, int64_t end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const int64_t kv_row = a.n_head_kv * hd;
  const T* k_base = static_cast<const T*>(a.k);
  const T* v_base = static_cast<const T*>(a.v);
  // Grow to the longest context seen by this thread, then stay (no allocation per call).
  thread_local std::vector<float> scores;
  // Element offset of row j of the current token's sequence; the heads of a token share it.
  thread_local std::vector<int64_t> rows;
  int64_t rows_token = -1;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t t = item / a.n_head;
    const int64_t h = item % a.n_head;
    const int64_t kvh = h / group;
    const int64_t n_seen = static_cast<int64_t>(a.positions[t]) + 1;
    if (static_cast<int64_t>(scores.size()) < n_seen) {
      scores.resize(n_seen);
      rows.resize(n_seen);
    }
    if (t != rows_token) {
      const int32_t* table = a.block_tables[t];
      for (int64_t j = 0; j < n_seen; ++j) {
        const int64_t slot =
            static_cast<int64_t>(table[j / a.block_size]) * a.block_size + j % a.block_size;
        rows[j] = slot * kv_row;
      }
      rows_token = t;
    }
    const float* q = a.q + item * hd;
    const T* k = k_base + kvh * hd;
    float max_score = -INFINITY;
    for (int64_t j = 0; j < n_seen; ++j) {
      scores[j] = DotKv(q, k + rows[j], hd) * a.scale;
      if (scores[j] > max_score) max_score = scores[j];
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < n_seen; ++j) {
      scores[j] = std::exp(scores[j] - max_score);
      sum += scores[j];
    }
    for (int64_t j = 0; j < n_seen; ++j) scores[j] /= sum;
    float* out = a.out + item * hd;
    const T* v = v_base + kvh * hd;
    int64_t d = 0;
    for (; d + lanes <= hd; d += lanes) {
      VF acc = hn::Zero(df);
      for (int64_t j = 0; j < n_seen; ++j) {
        acc = hn::MulAdd(hn::Set(df, scores[j]), LoadKv(df, v + rows[j] + d), acc);
      }
      hn::StoreU(acc, df, out + d);
    }
    for (; d < hd; ++d) {
      float acc = 0.0f;
      for (int64_t j = 0; j < n_seen; ++j) acc += scores[j] * KvAt(v + rows[j], d);
      out[d] = acc;
    }
  }
}

void PagedAttentionRows(const PagedAttentionArgs& a, int64_t begin, int64_t end) {
  switch (a.kv_dtype) {
    case core::DType::kF32:
      PagedAttentionRowsT<float>(a, begin, end);
      break;
    case core::DType::kF16:
      PagedAttentionRowsT<hwy::float16_t>(a, begin, end);
      break;
    case core::DType::kBF16:
      PagedAttentionRowsT<hwy::bfloat16_t>(a, begin, end);
      break;
    default:
      ARLE_CHECK(false) << "PagedAttention: unsupported KV dtype " << core::DTypeName(a.kv_dtype);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(PagedAttentionRows);

void PagedAttentionRows(const PagedAttentionArgs& args, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(PagedAttentionRows)(args, begin, end);
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
