// Highway ReadAll: four vector accumulators so the loads, not the adds, set the pace.
#include "arle/kernels/cpu/cpu_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "arle/kernels/cpu/bandwidth_cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

float ReadAll(const float* p, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    a0 = hn::Add(a0, hn::LoadU(df, p + i));
    a1 = hn::Add(a1, hn::LoadU(df, p + i + lanes));
    a2 = hn::Add(a2, hn::LoadU(df, p + i + 2 * lanes));
    a3 = hn::Add(a3, hn::LoadU(df, p + i + 3 * lanes));
  }
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) s += p[i];
  return s;
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(ReadAll);

float ReadAll(const float* p, int64_t n) { return HWY_DYNAMIC_DISPATCH(ReadAll)(p, n); }

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
