// MatMulBackwardInput / MatMulBackwardWeight validation and dispatch: both are one GEMM
// (ref/backward_linear_ref.h's GemmParams, threaded by gemm.h's ParallelGemm).
#include <algorithm>

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/gemm.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/ref/backward_linear_ref.h"

namespace arle::kernels {
namespace {

bool IsF32Matrix(const core::Tensor* t) {
  return t != nullptr && t->rank() == 2 && t->dtype() == core::DType::kF32 && t->is_contiguous();
}

}  // namespace

void MatMulBackwardInput(const Context& ctx, const MatMulBackwardInputArgs& a) {
  ARLE_CHECK(IsF32Matrix(a.dy) && IsF32Matrix(a.w) && IsF32Matrix(a.dx))
      << "MatMulBackwardInput: dy, w and dx must be contiguous f32 matrices";
  const core::Tensor &dy = *a.dy, &w = *a.w, &dx = *a.dx;
  ARLE_CHECK(dy.dim(1) == w.dim(0) && dx.dim(0) == dy.dim(0) && dx.dim(1) == w.dim(1))
      << "MatMulBackwardInput: dy " << dy.ToString() << " w " << w.ToString() << " dx "
      << dx.ToString();
  ARLE_CHECK(dx.empty() || (dx.data() != dy.data() && dx.data() != w.data()))
      << "MatMulBackwardInput: dx aliases an input";
  for (const core::Tensor* t : {&dy, &w, &dx}) CheckOnDevice(ctx, *t, "MatMulBackwardInput");
  if (!ctx.is_cpu()) NoKernelFor("MatMulBackwardInput", ctx);
  GemmParams<float> p;
  p.a = dy.data_as<float>();
  p.a_row = dy.dim(1);
  p.a_col = 1;
  p.b = w.data_as<float>();
  p.b_row = w.dim(1);
  p.b_col = 1;
  p.c = dx.data_as<float>();
  p.m = dx.dim(0);
  p.n = dx.dim(1);
  p.k = dy.dim(1);
  p.accumulate = a.accumulate;
  ParallelGemm(ctx, p, [](int64_t, int64_t, int64_t, int64_t) {});
}

void MatMulBackwardWeight(const Context& ctx, const MatMulBackwardWeightArgs& a) {
  ARLE_CHECK(IsF32Matrix(a.dy) && IsF32Matrix(a.x) && IsF32Matrix(a.dw))
      << "MatMulBackwardWeight: dy, x and dw must be contiguous f32 matrices";
  const core::Tensor &dy = *a.dy, &x = *a.x, &dw = *a.dw;
  ARLE_CHECK(dy.dim(0) == x.dim(0) && dw.dim(0) == dy.dim(1) && dw.dim(1) == x.dim(1))
      << "MatMulBackwardWeight: dy " << dy.ToString() << " x " << x.ToString() << " dw "
      << dw.ToString();
  ARLE_CHECK(dw.empty() || (dw.data() != dy.data() && dw.data() != x.data()))
      << "MatMulBackwardWeight: dw aliases an input";
  for (const core::Tensor* t : {&dy, &x, &dw}) CheckOnDevice(ctx, *t, "MatMulBackwardWeight");
  float* dbias = nullptr;
  if (a.dbias != nullptr) {
    const core::Tensor& db = *a.dbias;
    ARLE_CHECK(db.rank() == 1 && db.dtype() == core::DType::kF32 && db.is_contiguous() &&
               db.dim(0) == dy.dim(1))
        << "MatMulBackwardWeight dbias: " << db.ToString() << " for dy " << dy.ToString();
    ARLE_CHECK(db.empty() ||
               (db.data() != dy.data() && db.data() != x.data() && db.data() != dw.data()))
        << "MatMulBackwardWeight: dbias aliases another tensor";
    CheckOnDevice(ctx, db, "MatMulBackwardWeight");
    dbias = db.data_as<float>();
  }
  if (!ctx.is_cpu()) NoKernelFor("MatMulBackwardWeight", ctx);
  GemmParams<float> p;
  p.a = dy.data_as<float>();  // A(o, t) = dy[t, o]
  p.a_row = 1;
  p.a_col = dy.dim(1);
  p.b = x.data_as<float>();
  p.b_row = x.dim(1);
  p.b_col = 1;
  p.c = dw.data_as<float>();
  p.m = dw.dim(0);
  p.n = dw.dim(1);
  p.k = dy.dim(0);
  p.accumulate = a.accumulate;
  const bool use_ref = ctx.backend() == Backend::kRef;
  // The bias sums of a block of dw rows, by the worker that computed its first columns.
  ParallelGemm(ctx, p, [&](int64_t o_begin, int64_t o_end, int64_t n_begin, int64_t) {
    if (dbias == nullptr || n_begin != 0) return;
    if (use_ref) {
      ref::ColumnSums(p.a, p.a_col, p.k, a.accumulate, dbias, o_begin, o_end);
    } else {
      cpu::ColumnSums(p.a, p.a_col, p.k, a.accumulate, dbias, o_begin, o_end);
    }
  });
}

}  // namespace arle::kernels
