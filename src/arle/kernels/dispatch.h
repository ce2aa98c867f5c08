// Internal to arle_kernels: helpers the ops' dispatchers share.
#pragma once

#include "arle/core/check.h"
#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

// Aborts: the op has no kernel on ctx's backend yet. A bug in the caller, which must not route a
// model there (models refuse to load on a backend that lacks one of their ops).
[[noreturn]] inline void NoKernelFor(const char* op, const Context& ctx) {
  ARLE_CHECK(false) << op << " has no " << BackendName(ctx.backend()) << " kernel";
  __builtin_unreachable();
}

// Checks that a tensor an op reads or writes lives where ctx's backend computes.
inline void CheckOnDevice(const Context& ctx, const core::Tensor& t, const char* op) {
  const core::Device want = ctx.is_cpu() ? core::Device::kCpu : core::Device::kCuda;
  ARLE_CHECK(t.empty() || t.device() == want)
      << op << ": " << t.ToString() << " is not in " << BackendName(ctx.backend()) << " memory";
}

}  // namespace arle::kernels

#include "arle/kernels/kernel_args.h"

namespace arle::kernels {

// The CUDA kernels over the same checked parameters as ref/ and cpu/ (device pointers), launched
// asynchronously on ctx's stream (kernels/cuda/cuda_ops.h). They abort on a launch error, and on
// parameters the CUDA kernels do not take yet (block-format weights, 16-bit biases).
void CudaRmsNorm(const Context& ctx, const RmsNormParams& p);
void CudaMatMul(const Context& ctx, const MatMulParams& p);

}  // namespace arle::kernels
