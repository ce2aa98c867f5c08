// SwiGLU and its backward, residual add, row gather, copy and argmax.
#include "arle/kernels/elementwise.h"

#include <cmath>
#include <cstring>

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/ref/backward_layer_ref.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels {

void SwiGlu(const Context& ctx, const SwiGluArgs& a) {
  ARLE_CHECK(a.gate != nullptr && a.up != nullptr && a.out != nullptr) << "SwiGlu: null tensor";
  const core::Tensor& gate = *a.gate;
  for (const core::Tensor* t : {a.gate, a.up, static_cast<const core::Tensor*>(a.out)}) {
    ARLE_CHECK(t->dtype() == core::DType::kF32 && t->is_contiguous() && t->numel() == gate.numel())
        << "SwiGlu: " << t->ToString() << " vs gate " << gate.ToString();
    CheckOnDevice(ctx, *t, "SwiGlu");
  }
  if (!ctx.is_cpu()) NoKernelFor("SwiGlu", ctx);
  const float* g = gate.data_as<float>();
  const float* u = a.up->data_as<float>();
  float* o = a.out->data_as<float>();
  // One scalar loop serves both CPU backends: it is exact f32 arithmetic, vectorized by the
  // compiler the same way whichever backend asked.
  ctx.pool().ParallelFor(gate.numel(), /*work_per_item=*/8, [&](int64_t begin, int64_t end) {
    ref::SwiGluRange(g, u, o, begin, end);
  });
}

void SwiGluBackward(const Context& ctx, const SwiGluBackwardArgs& a) {
  ARLE_CHECK(a.gate != nullptr && a.up != nullptr && a.dswiglu != nullptr && a.dgate != nullptr &&
             a.dup != nullptr)
      << "SwiGluBackward: null tensor";
  const core::Tensor& gate = *a.gate;
  for (const core::Tensor* t : {a.gate, a.up, a.dswiglu, static_cast<const core::Tensor*>(a.dgate),
                                static_cast<const core::Tensor*>(a.dup)}) {
    ARLE_CHECK(t->dtype() == core::DType::kF32 && t->is_contiguous() && t->numel() == gate.numel())
        << "SwiGluBackward: " << t->ToString() << " vs gate " << gate.ToString();
    CheckOnDevice(ctx, *t, "SwiGluBackward");
  }
  ARLE_CHECK(gate.numel() == 0 || a.dgate->data() != a.dup->data())
      << "SwiGluBackward: dgate aliases dup";
  if (!ctx.is_cpu()) NoKernelFor("SwiGluBackward", ctx);
  SwiGluBackwardParams<float> p;
  p.gate = gate.data_as<float>();
  p.up = a.up->data_as<float>();
  p.dswiglu = a.dswiglu->data_as<float>();
  p.dgate = a.dgate->data_as<float>();
  p.dup = a.dup->data_as<float>();
  const bool use_ref = ctx.backend() == Backend::kRef;
  ctx.pool().ParallelFor(gate.numel(), /*work_per_item=*/16, [&](int64_t begin, int64_t end) {
    use_ref ? ref::SwiGluBackwardRange(p, begin, end) : cpu::SwiGluBackwardRange(p, begin, end);
  });
}

void Add(const Context& ctx, const AddArgs& args) {
  ARLE_CHECK(args.a != nullptr && args.b != nullptr && args.out != nullptr) << "Add: null tensor";
  const core::Tensor& a = *args.a;
  for (const core::Tensor* t : {args.a, args.b, static_cast<const core::Tensor*>(args.out)}) {
    ARLE_CHECK(t->dtype() == core::DType::kF32 && t->is_contiguous() && t->numel() == a.numel())
        << "Add: " << t->ToString() << " vs " << a.ToString();
    CheckOnDevice(ctx, *t, "Add");
  }
  if (!ctx.is_cpu()) NoKernelFor("Add", ctx);
  const float* pa = a.data_as<float>();
  const float* pb = args.b->data_as<float>();
  float* po = args.out->data_as<float>();
  const int64_t n = a.numel();
  for (int64_t i = 0; i < n; ++i) po[i] = pa[i] + pb[i];
}

void GatherRows(const Context& ctx, const GatherRowsArgs& a) {
  ARLE_CHECK(a.x != nullptr && a.out != nullptr) << "GatherRows: null tensor";
  const core::Tensor &x = *a.x, &out = *a.out;
  ARLE_CHECK(x.rank() == 2 && x.dtype() == core::DType::kF32 && x.is_contiguous())
      << "GatherRows x: " << x.ToString();
  const int64_t n_rows = static_cast<int64_t>(a.rows.size()), width = x.dim(1);
  ARLE_CHECK(out.rank() == 2 && out.dtype() == core::DType::kF32 && out.is_contiguous() &&
             out.dim(0) == n_rows && out.dim(1) == width)
      << "GatherRows out: " << out.ToString() << " for " << n_rows << " rows of " << x.ToString();
  const char* x0 = static_cast<const char*>(x.data());
  const char* o0 = static_cast<const char*>(out.data());
  ARLE_CHECK(n_rows == 0 || o0 >= x0 + x.nbytes() || x0 >= o0 + out.nbytes())
      << "GatherRows: out overlaps x";
  CheckOnDevice(ctx, x, "GatherRows");
  CheckOnDevice(ctx, out, "GatherRows");
  if (!ctx.is_cpu()) NoKernelFor("GatherRows", ctx);
  for (int64_t r = 0; r < n_rows; ++r) {
    ARLE_CHECK(a.rows[r] >= 0 && a.rows[r] < x.dim(0))
        << "GatherRows: row " << a.rows[r] << " of " << x.dim(0);
    std::memcpy(out.data_as<float>() + r * width, x.data_as<float>() + a.rows[r] * width,
                static_cast<size_t>(width) * sizeof(float));
  }
}

void Copy(const Context& ctx, const CopyArgs& a) {
  ARLE_CHECK(a.src != nullptr && a.dst != nullptr) << "Copy: null tensor";
  const core::Tensor &src = *a.src, &dst = *a.dst;
  ARLE_CHECK(src.is_contiguous() && dst.is_contiguous() && src.nbytes() == dst.nbytes())
      << "Copy: " << src.ToString() << " -> " << dst.ToString();
  const char* s0 = static_cast<const char*>(src.data());
  const char* d0 = static_cast<const char*>(dst.data());
  ARLE_CHECK(src.nbytes() == 0 || d0 >= s0 + src.nbytes() || s0 >= d0 + dst.nbytes())
      << "Copy: overlapping tensors";
  CheckOnDevice(ctx, src, "Copy");
  CheckOnDevice(ctx, dst, "Copy");
  if (!ctx.is_cpu()) NoKernelFor("Copy", ctx);
  if (src.nbytes() > 0) std::memcpy(dst.data(), src.data(), static_cast<size_t>(src.nbytes()));
}

int64_t ArgMax(std::span<const float> values) {
  ARLE_CHECK(!values.empty()) << "ArgMax of an empty span";
  int64_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    // Comparisons with NaN are false, so a NaN never replaces a number; a number replaces a NaN.
    if (values[i] > values[best] || (std::isnan(values[best]) && !std::isnan(values[i]))) best = i;
  }
  return best;
}

}  // namespace arle::kernels
