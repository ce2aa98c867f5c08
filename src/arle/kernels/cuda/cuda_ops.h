// CUDA backend, first kernels: device memory, RMSNorm and the f32 x {f32,bf16,f16}^T matmul, the
// same contracts as kernels/ref (one output element = one reduction in a fixed order per element).
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

// Owning device allocation. Move-only.
class DeviceBuffer {
 public:
  static core::StatusOr<DeviceBuffer> Allocate(size_t nbytes);
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  void* data() const { return data_; }
  size_t size() const { return size_; }
  core::Status CopyFromHost(const void* src, size_t nbytes);
  core::Status CopyToHost(void* dst, size_t nbytes) const;

 private:
  DeviceBuffer(void* data, size_t size) : data_(data), size_(size) {}
  void* data_ = nullptr;
  size_t size_ = 0;
};

// y[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w, f32, for r < n_rows. Device pointers.
core::Status RmsNorm(const float* x, const float* w, float eps, int64_t n_rows, int64_t n,
                     float* y);

// y[t, o] = sum_i x[t, i] * W[o, i] (+ bias[o]) with W in f32/bf16/f16, accumulation in f32 in
// index order. x [n_tok, n_in] f32, y [n_tok, n_out] f32, bias may be null. Device pointers.
core::Status MatMul(const float* x, const void* w, core::DType w_dtype, const float* bias,
                    int64_t n_tok, int64_t n_in, int64_t n_out, float* y);

// Waits for the kernels launched so far; returns the first asynchronous error.
core::Status Synchronize();

}  // namespace arle::kernels::cuda
