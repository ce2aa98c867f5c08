// CUDA backend, first kernels: device memory, RMSNorm and the f32 x {f32,bf16,f16}^T matmul, the
// same contracts as kernels/ref (one output element = one reduction in a fixed order per element).
// Reached through the ops' dispatch (kernels::RmsNorm / MatMul on a Context::Cuda()).
// Plain C++ header: callers never include CUDA headers. Built only by the `cuda` preset when nvcc
// is found (target arle_kernels_cuda); the CPU build never needs it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "arle/core/dtype.h"
#include "arle/core/status.h"

namespace arle::kernels::cuda {

// Number of usable CUDA devices (0 when there is no driver or no device).
int DeviceCount();

// Registers cudaMalloc / cudaFree / cudaMemcpy as core's device memory for Device::kCuda, so
// core::Buffer::TryAllocate(n, Device::kCuda) and core::CopyBytes work (kernels::Context::Cuda()
// calls it). Idempotent.
void RegisterCudaMemory();

// y[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w, f32, for r < n_rows. Device pointers.
// Launched on `stream` (a cudaStream_t; null = the default stream), asynchronously.
core::Status RmsNorm(const float* x, const float* w, float eps, int64_t n_rows, int64_t n, float* y,
                     void* stream = nullptr);

// y[t, o] = sum_i x[t, i] * W[o, i] (+ bias[o]) with W in f32/bf16/f16, accumulation in f32 in
// index order. x [n_tok, n_in] f32, y [n_tok, n_out] f32, bias may be null. Device pointers.
core::Status MatMul(const float* x, const void* w, core::DType w_dtype, const float* bias,
                    int64_t n_tok, int64_t n_in, int64_t n_out, float* y, void* stream = nullptr);

// Waits for the kernels launched so far; returns the first asynchronous error.
core::Status Synchronize();

}  // namespace arle::kernels::cuda
