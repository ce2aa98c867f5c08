// Highway RMSNorm and causal GQA attention over a contiguous KV cache (the per-row math lives in
// attention_group-inl.h, shared with paged attention). Softmax stays scalar (exp in f32), as in the
// reference.
#include <algorithm>
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
// After highway.h, per target:
#include "arle/kernels/cpu/attention_group-inl.h"
#include "arle/kernels/cpu/dot-inl.h"
#include "arle/kernels/cpu/widen-inl.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

template <typename WT>
void RmsNormRowsT(const RmsNormParams& a, int64_t begin, int64_t end) {
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
      hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vinv), WidenLoad(df, w + i)), df, y + i);
    }
    for (; i < a.n; ++i) y[i] = (x[i] * inv) * ref::LoadAsF32(a.w, a.w_dtype, i);
  }
}

void RmsNormRows(const RmsNormParams& a, int64_t begin, int64_t end) {
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

void AttentionRows(const AttentionParams& a, int64_t begin, int64_t end) {
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const int64_t kv_row = a.n_head_kv * hd;
  auto row_offset = [kv_row](int64_t j) { return j * kv_row; };
  GroupQuery queries[kMaxGroupQueries];
  int64_t item = begin;
  while (item < end) {
    // The run of items that share this KV head (ItemAt's order), up to kMaxGroupQueries.
    const AttentionItem first = ItemAt(item, a.n_tok, a.n_head, group);
    int64_t m = 0;
    for (; item < end && m < kMaxGroupQueries; ++item, ++m) {
      const AttentionItem it = ItemAt(item, a.n_tok, a.n_head, group);
      if (it.kvh != first.kvh) break;
      const int64_t qh = it.t * a.n_head + it.h;
      queries[m] = {a.q + qh * hd, static_cast<int64_t>(a.positions[it.t]) + 1, a.out + qh * hd};
    }
    AttendGroup(queries, m, a.k + first.kvh * hd, a.v + first.kvh * hd, hd, a.scale, row_offset);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(RmsNormRows);
HWY_EXPORT(AttentionRows);

void RmsNormRows(const RmsNormParams& args, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(RmsNormRows)(args, begin, end);
}

void AttentionRows(const AttentionParams& args, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(AttentionRows)(args, begin, end);
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
