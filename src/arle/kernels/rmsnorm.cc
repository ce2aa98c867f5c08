// RmsNorm validation and dispatch, threaded over rows.
#include "arle/kernels/rmsnorm.h"

#include <algorithm>
#include <vector>

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/ref/backward_layer_ref.h"
#include "arle/kernels/ref/ref_kernels.h"
#include "arle/kernels/rmsnorm_args.h"

namespace arle::kernels {

RmsNormParams CheckedRmsNormParams(const core::Tensor& x, const core::Tensor& w, float eps,
                                   core::Tensor& y) {
  ARLE_CHECK(x.rank() >= 1 && x.dtype() == core::DType::kF32 && x.is_contiguous())
      << "RmsNorm x: " << x.ToString();
  ARLE_CHECK(w.rank() == 1 && w.dim(0) == x.dim(-1) && w.is_contiguous() &&
             (w.dtype() == core::DType::kF32 || w.dtype() == core::DType::kF16 ||
              w.dtype() == core::DType::kBF16))
      << "RmsNorm w: " << w.ToString() << " for x " << x.ToString();
  ARLE_CHECK(y.dtype() == core::DType::kF32 && y.is_contiguous() && y.numel() == x.numel())
      << "RmsNorm y: " << y.ToString() << " for x " << x.ToString();
  RmsNormParams args;
  args.x = x.data_as<float>();
  args.w = w.data();
  args.w_dtype = w.dtype();
  args.y = y.data_as<float>();
  args.n = x.dim(-1);
  args.n_rows = args.n == 0 ? 0 : x.numel() / args.n;
  args.eps = eps;
  return args;
}

void RmsNorm(const Context& ctx, const RmsNormArgs& a) {
  ARLE_CHECK(a.x != nullptr && a.w != nullptr && a.y != nullptr) << "RmsNorm: null tensor";
  const RmsNormParams p = CheckedRmsNormParams(*a.x, *a.w, a.eps, *a.y);
  for (const core::Tensor* t : {a.x, a.w, static_cast<const core::Tensor*>(a.y)}) {
    CheckOnDevice(ctx, *t, "RmsNorm");
  }
  switch (ctx.backend()) {
    case Backend::kRef:
    case Backend::kCpu: {
      const bool use_ref = ctx.backend() == Backend::kRef;
      ctx.pool().ParallelFor(p.n_rows, /*work_per_item=*/2 * p.n, [&](int64_t begin, int64_t end) {
        if (use_ref) {
          ref::RmsNormRows(p, begin, end);
        } else {
          cpu::RmsNormRows(p, begin, end);
        }
      });
      return;
    }
    case Backend::kCuda:
      CudaRmsNorm(ctx, p);
      return;
  }
}

void RmsNormBackward(const Context& ctx, const RmsNormBackwardArgs& a) {
  ARLE_CHECK(a.x != nullptr && a.w != nullptr && a.dy != nullptr && a.dx != nullptr)
      << "RmsNormBackward: null tensor";
  const core::Tensor &x = *a.x, &w = *a.w, &dy = *a.dy;
  core::Tensor& dx = *a.dx;
  ARLE_CHECK(x.rank() >= 1 && x.dtype() == core::DType::kF32 && x.is_contiguous())
      << "RmsNormBackward x: " << x.ToString();
  const int64_t n = x.dim(-1);
  std::vector<const core::Tensor*> vectors = {&w};
  if (a.dw != nullptr) vectors.push_back(a.dw);
  for (const core::Tensor* t : vectors) {
    ARLE_CHECK(t->rank() == 1 && t->dim(0) == n && t->dtype() == core::DType::kF32 &&
               t->is_contiguous())
        << "RmsNormBackward w/dw: " << t->ToString() << " for x " << x.ToString();
  }
  for (const core::Tensor* t : {&dy, static_cast<const core::Tensor*>(&dx)}) {
    ARLE_CHECK(t->dtype() == core::DType::kF32 && t->is_contiguous() && std::ranges::equal(t->shape(), x.shape()))
        << "RmsNormBackward dy/dx: " << t->ToString() << " for x " << x.ToString();
  }
  ARLE_CHECK(dx.data() != x.data() && (a.dw == nullptr || a.dw->data() != w.data()))
      << "RmsNormBackward: bad aliasing";
  for (const core::Tensor* t : {&x, &w, &dy, static_cast<const core::Tensor*>(&dx)}) {
    CheckOnDevice(ctx, *t, "RmsNormBackward");
  }
  if (a.dw != nullptr) CheckOnDevice(ctx, *a.dw, "RmsNormBackward");
  if (!ctx.is_cpu()) NoKernelFor("RmsNormBackward", ctx);
  RmsNormBackwardParams<float> p;
  p.x = x.data_as<float>();
  p.w = w.data_as<float>();
  p.dy = dy.data_as<float>();
  p.dx = dx.data_as<float>();
  p.dw = a.dw != nullptr ? a.dw->data_as<float>() : nullptr;
  p.accumulate_dx = a.accumulate_dx;
  p.n = n;
  p.n_rows = n == 0 ? 0 : x.numel() / n;
  p.eps = a.eps;
  if (p.n_rows == 0) return;
  p.inv = reinterpret_cast<float*>(
      ctx.scratch().Get(0, static_cast<size_t>(p.n_rows) * sizeof(float)));
  const bool use_ref = ctx.backend() == Backend::kRef;
  core::ThreadPool& pool = ctx.pool();
  pool.ParallelFor(p.n_rows, /*work_per_item=*/p.n, [&](int64_t begin, int64_t end) {
    use_ref ? ref::RmsNormInvRows(p, begin, end) : cpu::RmsNormInvRows(p, begin, end);
  });
  // dw before dx: dx may overwrite dy. Columns in chunks of 16 (a cache line).
  constexpr int64_t kCols = 16;
  if (p.dw != nullptr) pool.ParallelFor((n + kCols - 1) / kCols, /*work_per_item=*/2 * kCols * p.n_rows,
                   [&](int64_t begin, int64_t end) {
                     const int64_t c0 = begin * kCols, c1 = std::min(n, end * kCols);
                     use_ref ? ref::RmsNormBackwardDw(p, c0, c1) : cpu::RmsNormBackwardDw(p, c0, c1);
                   });
  pool.ParallelFor(p.n_rows, /*work_per_item=*/4 * p.n, [&](int64_t begin, int64_t end) {
    use_ref ? ref::RmsNormBackwardDxRows(p, begin, end) : cpu::RmsNormBackwardDxRows(p, begin, end);
  });
}

}  // namespace arle::kernels
