// Highway RMSNorm and the dot products / weighted sums of causal GQA attention. Softmax stays
// scalar (exp in f32), as in the reference.
#include <cmath>
#include <vector>

#include "arle/core/check.h"
#include "arle/core/half.h"
#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/ref/ref_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "arle/kernels/cpu/ops_cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// sum_i a[i] * b[i]: one vector accumulator, SumOfLanes, then a scalar tail.
HWY_INLINE float Dot(const float* a, const float* b, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF acc = hn::Zero(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) acc = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc);
  float s = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

template <typename WT>
HWY_INLINE VF LoadW(DF df, const WT* p);
template <>
HWY_INLINE VF LoadW(DF df, const float* p) { return hn::LoadU(df, p); }
template <>
HWY_INLINE VF LoadW(DF df, const hwy::bfloat16_t* p) {
  const hn::Rebind<hwy::bfloat16_t, DF> dbf;
  return hn::PromoteTo(df, hn::LoadU(dbf, p));
}
template <>
HWY_INLINE VF LoadW(DF df, const hwy::float16_t* p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, p));
}

template <typename WT>
void RmsNormRowsT(const RmsNormArgs& a, int64_t begin, int64_t end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const WT* w = static_cast<const WT*>(a.w);
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * a.n;
    float* y = a.y + r * a.n;
    const float ss = Dot(x, x, a.n);
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(a.n) + a.eps);
    const VF vinv = hn::Set(df, inv);
    int64_t i = 0;
    for (; i + lanes <= a.n; i += lanes) {
      hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vinv), LoadW(df, w + i)), df, y + i);
    }
    for (; i < a.n; ++i) y[i] = (x[i] * inv) * ref::LoadAsF32(a.w, a.w_dtype, i);
  }
}

void RmsNormRows(const RmsNormArgs& a, int64_t begin, int64_t end) {
  switch (a.w_dtype) {
    case core::DType::kF32:
      RmsNormRowsT<float>(a, begin, end);
      break;
    case core::DType::kF16:
      RmsNormRowsT<hwy::float16_t>(a, begin, end);
      break;
    case core::DType::kBF16:
      RmsNormRowsT<hwy::bfloat16_t>(a, begin, end);
      break;
    default:
      ARLE_CHECK(false) << "RmsNorm: unsupported weight dtype " << core::DTypeName(a.w_dtype);
  }
}

void AttentionRows(const AttentionArgs& a, int64_t begin, int64_t end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const int64_t kv_row = a.n_head_kv * hd;
  // Grows to the longest context seen by this thread, then stays (no allocation per call).
  thread_local std::vector<float> scores;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t t = item / a.n_head;
    const int64_t h = item % a.n_head;
    const int64_t kvh = h / group;
    const int64_t n_seen = static_cast<int64_t>(a.positions[t]) + 1;
    if (static_cast<int64_t>(scores.size()) < n_seen) scores.resize(n_seen);
    const float* q = a.q + item * hd;
    float max_score = -INFINITY;
    for (int64_t j = 0; j < n_seen; ++j) {
      scores[j] = Dot(q, a.k + j * kv_row + kvh * hd, hd) * a.scale;
      if (scores[j] > max_score) max_score = scores[j];
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < n_seen; ++j) {
      scores[j] = std::exp(scores[j] - max_score);
      sum += scores[j];
    }
    for (int64_t j = 0; j < n_seen; ++j) scores[j] /= sum;
    float* out = a.out + item * hd;
    const float* v = a.v + kvh * hd;
    int64_t d = 0;
    for (; d + lanes <= hd; d += lanes) {
      VF acc = hn::Zero(df);
      for (int64_t j = 0; j < n_seen; ++j) {
        acc = hn::MulAdd(hn::Set(df, scores[j]), hn::LoadU(df, v + j * kv_row + d), acc);
      }
      hn::StoreU(acc, df, out + d);
    }
    for (; d < hd; ++d) {
      float acc = 0.0f;
      for (int64_t j = 0; j < n_seen; ++j) acc += scores[j] * v[j * kv_row + d];
      out[d] = acc;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(RmsNormRows);
HWY_EXPORT(AttentionRows);

void RmsNormRows(const RmsNormArgs& args, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(RmsNormRows)(args, begin, end);
}

void AttentionRows(const AttentionArgs& args, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(AttentionRows)(args, begin, end);
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
