// Dot(a, b, n) on the current Highway target: one vector accumulator, SumOfLanes, then a scalar
// tail. Shared by RMSNorm's forward (ops_cpu.cc) and backward (backward_layer_cpu.cc), so the
// backward's 1/rms is bit for bit the forward's.
//
// Highway "-inl" header: included once per target from a file using foreach_target.h, after
// hwy/highway.h.

#if defined(ARLE_KERNELS_CPU_DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ARLE_KERNELS_CPU_DOT_INL_H_
#undef ARLE_KERNELS_CPU_DOT_INL_H_
#else
#define ARLE_KERNELS_CPU_DOT_INL_H_
#endif

#include <cstdint>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {

// sum_i a[i] * b[i]: one vector accumulator, SumOfLanes, then a scalar tail.
HWY_INLINE float Dot(const float* a, const float* b, int64_t n) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto acc = hn::Zero(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) acc = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc);
  float s = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#endif  // ARLE_KERNELS_CPU_DOT_INL_H_ toggle
