// Internal to arle_kernels: RmsNorm's argument checks, shared by RmsNorm and the matmuls that
// fuse it into their input pass (matmul.h's InputRmsNorm).
#pragma once

#include "arle/core/tensor.h"
#include "arle/kernels/kernel_args.h"

namespace arle::kernels {

// Checks RmsNorm's REQUIRES (rmsnorm.h) and fills its arguments.
RmsNormParams CheckedRmsNormParams(const core::Tensor& x, const core::Tensor& w, float eps,
                                   core::Tensor& y);

}  // namespace arle::kernels
