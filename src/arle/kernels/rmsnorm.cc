// RmsNorm validation and dispatch, threaded over rows.
#include "arle/kernels/rmsnorm.h"

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
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

}  // namespace arle::kernels
