// The CUDA branch of the dispatchers: forwards the checked parameters to kernels/cuda. Without the
// CUDA build no Context can name kCuda (Context::Cuda fails), so these are never reached there.
#include "arle/kernels/dispatch.h"

#ifdef ARLE_HAVE_CUDA
#include "arle/kernels/cuda/cuda_ops.h"
#endif

namespace arle::kernels {

#ifdef ARLE_HAVE_CUDA

void CudaRmsNorm(const Context& ctx, const RmsNormParams& p) {
  if (p.w_dtype != core::DType::kF32) NoKernelFor("RmsNorm with 16-bit weights", ctx);
  const core::Status s = cuda::RmsNorm(p.x, static_cast<const float*>(p.w), p.eps, p.n_rows, p.n,
                                       p.y, ctx.cuda_stream());
  ARLE_CHECK(s.ok()) << "CUDA RmsNorm: " << s.ToString();
}

void CudaMatMul(const Context& ctx, const MatMulParams& p) {
  if (p.bias != nullptr && p.bias_dtype != core::DType::kF32) {
    NoKernelFor("MatMul with a 16-bit bias", ctx);
  }
  ARLE_CHECK(p.x_stride == p.n_in && p.y_stride == p.n_out) << "CUDA MatMul: strided rows";
  const core::Status s = cuda::MatMul(p.x, p.w, p.w_dtype, static_cast<const float*>(p.bias),
                                      p.n_tok, p.n_in, p.n_out, p.y, ctx.cuda_stream());
  ARLE_CHECK(s.ok()) << "CUDA MatMul: " << s.ToString();
}

#else

void CudaRmsNorm(const Context& ctx, const RmsNormParams&) { NoKernelFor("RmsNorm", ctx); }
void CudaMatMul(const Context& ctx, const MatMulParams&) { NoKernelFor("MatMul", ctx); }

#endif

}  // namespace arle::kernels
