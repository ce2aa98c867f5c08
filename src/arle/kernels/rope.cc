// RoPE table construction and rotation (scalar; threaded over tokens).
#include "arle/kernels/rope.h"

#include <cmath>
#include <cstring>

#include "arle/kernels/dispatch.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels {

void RopeTable(const Context& ctx, const RopeTableArgs& a) {
  ARLE_CHECK(a.cos != nullptr && a.sin != nullptr) << "RopeTable: null tensor";
  const std::span<const int32_t> positions = a.positions;
  const std::span<const float> inv_freq = a.inv_freq;
  const float attention_scaling = a.attention_scaling;
  core::Tensor &cos = *a.cos, &sin = *a.sin;
  CheckOnDevice(ctx, cos, "RopeTable");
  CheckOnDevice(ctx, sin, "RopeTable");
  if (!ctx.is_cpu()) NoKernelFor("RopeTable", ctx);
  const int64_t n_tok = static_cast<int64_t>(positions.size());
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  for (const core::Tensor* t :
       {static_cast<const core::Tensor*>(&cos), static_cast<const core::Tensor*>(&sin)}) {
    ARLE_CHECK(t->rank() == 2 && t->dtype() == core::DType::kF32 && t->is_contiguous() &&
               t->dim(0) == n_tok && t->dim(1) == half)
        << "RopeTable: " << t->ToString() << " for " << n_tok << " tokens, " << half << " freqs";
  }
  float* c = cos.data_as<float>();
  float* s = sin.data_as<float>();
  for (int64_t t = 0; t < n_tok; ++t) {
    const float pos = static_cast<float>(positions[t]);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = inv_freq[i] * pos;  // f32 product, as torch's f32 matmul of 1 term
      c[t * half + i] =
          static_cast<float>(std::cos(static_cast<double>(angle))) * attention_scaling;
      s[t * half + i] =
          static_cast<float>(std::sin(static_cast<double>(angle))) * attention_scaling;
    }
  }
}

void ApplyRope(const Context& ctx, const ApplyRopeArgs& a) {
  ARLE_CHECK(a.x != nullptr && a.cos != nullptr && a.sin != nullptr && a.out != nullptr)
      << "ApplyRope: null tensor";
  const core::Tensor &x = *a.x, &cos = *a.cos, &sin = *a.sin;
  ARLE_CHECK(a.out->dtype() == x.dtype() && a.out->is_contiguous() && a.out->rank() == 3 &&
             a.out->dim(0) == x.dim(0) && a.out->dim(1) == x.dim(1) && a.out->dim(2) == x.dim(2))
      << "ApplyRope out: " << a.out->ToString() << " for x " << x.ToString();
  for (const core::Tensor* t : {a.x, a.cos, a.sin, static_cast<const core::Tensor*>(a.out)}) {
    CheckOnDevice(ctx, *t, "ApplyRope");
  }
  if (!ctx.is_cpu()) NoKernelFor("ApplyRope", ctx);
  ARLE_CHECK(x.rank() == 3 && x.dtype() == core::DType::kF32 && x.is_contiguous() &&
             x.dim(2) % 2 == 0)
      << "ApplyRope x: " << x.ToString();
  const int64_t n_tok = x.dim(0), n_head = x.dim(1), head_dim = x.dim(2);
  for (const core::Tensor* t :
       {static_cast<const core::Tensor*>(&cos), static_cast<const core::Tensor*>(&sin)}) {
    ARLE_CHECK(t->rank() == 2 && t->dtype() == core::DType::kF32 && t->is_contiguous() &&
               t->dim(0) == n_tok && t->dim(1) == head_dim / 2)
        << "ApplyRope table " << t->ToString() << " for x " << x.ToString();
  }
  const float* c = cos.data_as<float>();
  const float* s = sin.data_as<float>();
  // Rotated in place in out (a copy of x first when they differ, so x survives for a backward).
  if (a.out->data() != x.data()) std::memcpy(a.out->data(), x.data(), x.nbytes());
  float* data = a.out->data_as<float>();
  ctx.pool().ParallelFor(
      n_tok, /*work_per_item=*/x.numel() / (n_tok > 0 ? n_tok : 1) * 4,
      [&](int64_t begin, int64_t end) { ref::RopeRows(c, s, data, n_head, head_dim, begin, end); });
}

}  // namespace arle::kernels
