// Loads of f32, bf16 or f16 data as f32 on the current Highway target: WidenLoad (one vector)
// and WidenAt (one element). Widening bf16 and f16 to f32 is exact, so computing on values
// widened as they load equals computing on a widened copy.
//
// Highway "-inl" header: included once per target from a file using foreach_target.h, after
// hwy/highway.h.

#if defined(ARLE_KERNELS_CPU_WIDEN_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ARLE_KERNELS_CPU_WIDEN_INL_H_
#undef ARLE_KERNELS_CPU_WIDEN_INL_H_
#else
#define ARLE_KERNELS_CPU_WIDEN_INL_H_
#endif

#include <cstdint>

#include "arle/core/half.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {

HWY_INLINE hwy::HWY_NAMESPACE::Vec<hwy::HWY_NAMESPACE::ScalableTag<float>> WidenLoad(
    hwy::HWY_NAMESPACE::ScalableTag<float> df, const float* p) {
  return hwy::HWY_NAMESPACE::LoadU(df, p);
}
HWY_INLINE hwy::HWY_NAMESPACE::Vec<hwy::HWY_NAMESPACE::ScalableTag<float>> WidenLoad(
    hwy::HWY_NAMESPACE::ScalableTag<float> df, const hwy::bfloat16_t* p) {
  const hwy::HWY_NAMESPACE::Rebind<hwy::bfloat16_t, decltype(df)> dbf;
  return hwy::HWY_NAMESPACE::PromoteTo(df, hwy::HWY_NAMESPACE::LoadU(dbf, p));
}
HWY_INLINE hwy::HWY_NAMESPACE::Vec<hwy::HWY_NAMESPACE::ScalableTag<float>> WidenLoad(
    hwy::HWY_NAMESPACE::ScalableTag<float> df, const hwy::float16_t* p) {
  const hwy::HWY_NAMESPACE::Rebind<hwy::float16_t, decltype(df)> dh;
  return hwy::HWY_NAMESPACE::PromoteTo(df, hwy::HWY_NAMESPACE::LoadU(dh, p));
}

HWY_INLINE float WidenAt(const float* p, int64_t i) { return p[i]; }
HWY_INLINE float WidenAt(const hwy::bfloat16_t* p, int64_t i) {
  return core::BF16ToF32(reinterpret_cast<const uint16_t*>(p)[i]);
}
HWY_INLINE float WidenAt(const hwy::float16_t* p, int64_t i) {
  return core::F16ToF32(reinterpret_cast<const uint16_t*>(p)[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#endif  // ARLE_KERNELS_CPU_WIDEN_INL_H_ toggle
