// Shared helpers for kernel tests: random tensors, dtype rounding, and a loop over every SIMD
// target Highway compiled that the CPU supports.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/half.h"
#include "arle/core/random.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/kernels/kernel_args.h"
#include "arle/kernels/matmul.h"
#include "hwy/targets.h"

namespace arle::kernels::testing {

// A CPU context on `pool` (the tests' pools outlive each op call).
inline Context Ctx(core::ThreadPool& pool, Backend backend = Backend::kCpu) {
  return Context::Cpu(backend, pool);
}

// A cpu context on a one-thread pool, for ops that do not split work across threads.
inline const Context& SerialCtx() {
  static core::ThreadPool pool(1);
  static const Context ctx = Context::Cpu(Backend::kCpu, pool);
  return ctx;
}

// The address of a temporary (a Slice or reshaped view) for an op's *Args; valid until the end of
// the full expression, which is the op call.
template <typename T>
std::remove_reference_t<T>* Tmp(T&& t) {
  return &t;
}

// MatMul with one output: y = x * w^T (+ bias).
inline void MatMul1(const Context& ctx, const core::Tensor& x, const core::Tensor& w,
                    const core::Tensor* bias, core::Tensor& y) {
  const MatMulOutput out{&w, bias, &y};
  MatMul(ctx, {.x = &x, .outputs = {&out, 1}});
}

// Unit roundoff of f32 (half an ulp of 1).
inline constexpr double kU = 0x1.0p-24;
// gamma_n = n u / (1 - n u): the classic bound on the relative error of an n-term f32 sum.
inline double Gamma(int64_t n) { return n * kU / (1.0 - n * kU); }

// Rescales the online softmax (kernel_args.h) can make over n_seen keys: one per step after the
// first. Each multiplies the running output and the running sum by the same rounded factor, so
// the factor's own error cancels in their ratio; the two multiplications add u each to a weight's
// relative error.
inline int64_t Rescales(int64_t n_seen) { return (n_seen - 1) / kAttentionKeyStep; }

// Runs fn once per Highway target (SSE4, AVX2, AVX3, ... as compiled and supported), with the
// dispatcher forced to it; restores the default afterwards.
inline void ForEachTarget(const std::function<void(const char* target)>& fn) {
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    fn(hwy::TargetName(target));
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A buffer of `n` values of `dtype` (f32/f16/bf16) drawn from N(0, scale^2), plus their exact
// f32 values in `as_f32` when non-null.
inline core::Buffer RandomBuffer(core::Rng& rng, core::DType dtype, int64_t n, double scale,
                                 std::vector<float>* as_f32 = nullptr) {
  core::Buffer buf(static_cast<size_t>(std::max<int64_t>(n, 1)) * core::ElementSize(dtype));
  if (as_f32) as_f32->resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(rng.Normal() * scale);
    float exact = v;
    switch (dtype) {
      case core::DType::kF32:
        buf.as<float>()[i] = v;
        break;
      case core::DType::kF16:
        buf.as<uint16_t>()[i] = core::F32ToF16(v);
        exact = core::F16ToF32(buf.as<uint16_t>()[i]);
        break;
      case core::DType::kBF16:
        buf.as<uint16_t>()[i] = core::F32ToBF16(v);
        exact = core::BF16ToF32(buf.as<uint16_t>()[i]);
        break;
      default:
        ADD_FAILURE() << "unsupported dtype";
    }
    if (as_f32) (*as_f32)[i] = exact;
  }
  return buf;
}

}  // namespace arle::kernels::testing
