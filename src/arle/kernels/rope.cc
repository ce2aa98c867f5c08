// RoPE table construction, rotation (scalar) and its backward (Highway); threaded over tokens.
#include "arle/kernels/rope.h"

#include <cmath>
#include <cstring>

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/ref/backward_layer_ref.h"
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

namespace {

// Checks ApplyRope's (or its backward's) REQUIRES for input x, output out and the tables.
void CheckRopeOperands(const Context& ctx, const core::Tensor& x, const core::Tensor& cos,
                       const core::Tensor& sin, const core::Tensor& out, const char* op) {
  ARLE_CHECK(out.dtype() == x.dtype() && out.is_contiguous() && out.rank() == 3 &&
             out.dim(0) == x.dim(0) && out.dim(1) == x.dim(1) && out.dim(2) == x.dim(2))
      << op << " out: " << out.ToString() << " for x " << x.ToString();
  for (const core::Tensor* t : {&x, &cos, &sin, &out}) CheckOnDevice(ctx, *t, op);
  if (!ctx.is_cpu()) NoKernelFor(op, ctx);
  ARLE_CHECK(x.rank() == 3 && x.dtype() == core::DType::kF32 && x.is_contiguous() &&
             x.dim(2) % 2 == 0)
      << op << " x: " << x.ToString();
  for (const core::Tensor* t : {&cos, &sin}) {
    ARLE_CHECK(t->rank() == 2 && t->dtype() == core::DType::kF32 && t->is_contiguous() &&
               t->dim(0) == x.dim(0) && t->dim(1) == x.dim(2) / 2)
        << op << " table " << t->ToString() << " for x " << x.ToString();
  }
}

}  // namespace

void ApplyRope(const Context& ctx, const ApplyRopeArgs& a) {
  ARLE_CHECK(a.x != nullptr && a.cos != nullptr && a.sin != nullptr && a.out != nullptr)
      << "ApplyRope: null tensor";
  const core::Tensor &x = *a.x, &cos = *a.cos, &sin = *a.sin;
  CheckRopeOperands(ctx, x, cos, sin, *a.out, "ApplyRope");
  const int64_t n_tok = x.dim(0), n_head = x.dim(1), head_dim = x.dim(2);
  const float* c = cos.data_as<float>();
  const float* s = sin.data_as<float>();
  // Rotated in place in out (a copy of x first when they differ, so x survives for a backward).
  if (a.out->data() != x.data()) std::memcpy(a.out->data(), x.data(), x.nbytes());
  float* data = a.out->data_as<float>();
  ctx.pool().ParallelFor(
      n_tok, /*work_per_item=*/x.numel() / (n_tok > 0 ? n_tok : 1) * 4,
      [&](int64_t begin, int64_t end) { ref::RopeRows(c, s, data, n_head, head_dim, begin, end); });
}

void ApplyRopeBackward(const Context& ctx, const ApplyRopeBackwardArgs& a) {
  ARLE_CHECK(a.dy != nullptr && a.cos != nullptr && a.sin != nullptr && a.dx != nullptr)
      << "ApplyRopeBackward: null tensor";
  const core::Tensor& dy = *a.dy;
  CheckRopeOperands(ctx, dy, *a.cos, *a.sin, *a.dx, "ApplyRopeBackward");
  RopeBackwardParams<float> p;
  p.dy = dy.data_as<float>();
  p.cos = a.cos->data_as<float>();
  p.sin = a.sin->data_as<float>();
  p.dx = a.dx->data_as<float>();
  p.n_head = dy.dim(1);
  p.head_dim = dy.dim(2);
  const bool use_ref = ctx.backend() == Backend::kRef;
  ctx.pool().ParallelFor(dy.dim(0), /*work_per_item=*/4 * p.n_head * p.head_dim,
                         [&](int64_t begin, int64_t end) {
                           use_ref ? ref::RopeBackwardRows(p, begin, end)
                                   : cpu::RopeBackwardRows(p, begin, end);
                         });
}

}  // namespace arle::kernels
