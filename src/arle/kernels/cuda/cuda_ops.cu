// CUDA kernels: simple, exact-order implementations (one thread per output element), the baseline
// the tuned kernels of the CUDA issue will be tested against.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "arle/core/buffer.h"

#include "arle/kernels/cuda/cuda_ops.h"

namespace arle::kernels::cuda {
namespace {

core::Status FromCuda(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return core::OkStatus();
  return core::FailedPreconditionError(std::string("CUDA ") + what + ": " +
                                       cudaGetErrorString(err));
}

__global__ void RmsNormKernel(const float* x, const float* w, float eps, int64_t n_rows, int64_t n,
                              float* y) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n_rows) return;
  const float* xr = x + r * n;
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum = __fadd_rn(sum, __fmul_rn(xr[i], xr[i]));
  const float scale = 1.0f / sqrtf(sum / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[r * n + i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

template <typename W>
__device__ float ToFloat(W v);
template <>
__device__ float ToFloat<float>(float v) { return v; }
template <>
__device__ float ToFloat<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ float ToFloat<__half>(__half v) { return __half2float(v); }

template <typename W>
__global__ void MatMulKernel(const float* x, const W* w, const float* bias, int64_t n_tok,
                             int64_t n_in, int64_t n_out, float* y) {
  const int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t t = blockIdx.y;
  if (o >= n_out || t >= n_tok) return;
  const float* xt = x + t * n_in;
  const W* wo = w + o * n_in;
  float acc = 0.0f;
  for (int64_t i = 0; i < n_in; ++i) acc = __fadd_rn(acc, __fmul_rn(xt[i], ToFloat(wo[i])));
  if (bias != nullptr) acc = __fadd_rn(acc, bias[o]);
  y[t * n_out + o] = acc;
}

}  // namespace

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

namespace {

void* CudaAllocate(size_t nbytes) {
  void* data = nullptr;
  if (cudaMalloc(&data, nbytes) != cudaSuccess) return nullptr;
  if (cudaMemset(data, 0, nbytes) != cudaSuccess) {
    cudaFree(data);
    return nullptr;
  }
  return data;
}

void CudaRelease(void* p) { cudaFree(p); }

bool CudaCopy(void* dst, core::Device dst_device, const void* src, core::Device src_device,
              size_t n) {
  const bool from_device = src_device == core::Device::kCuda;
  const bool to_device = dst_device == core::Device::kCuda;
  const cudaMemcpyKind kind = from_device ? (to_device ? cudaMemcpyDeviceToDevice
                                                       : cudaMemcpyDeviceToHost)
                                          : (to_device ? cudaMemcpyHostToDevice
                                                       : cudaMemcpyHostToHost);
  return cudaMemcpy(dst, src, n, kind) == cudaSuccess;
}

}  // namespace

void RegisterCudaMemory() {
  core::RegisterDeviceMemory(core::Device::kCuda, {&CudaAllocate, &CudaRelease, &CudaCopy});
}

core::Status RmsNorm(const float* x, const float* w, float eps, int64_t n_rows, int64_t n,
                     float* y, void* stream) {
  if (n_rows <= 0 || n <= 0) return core::OkStatus();
  const int threads = 128;
  const int blocks = static_cast<int>((n_rows + threads - 1) / threads);
  RmsNormKernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(x, w, eps, n_rows, n, y);
  return FromCuda(cudaGetLastError(), "RmsNorm launch");
}

core::Status MatMul(const float* x, const void* w, core::DType w_dtype, const float* bias,
                    int64_t n_tok, int64_t n_in, int64_t n_out, float* y, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (n_tok <= 0 || n_out <= 0) return core::OkStatus();
  if (n_tok > 65535) return core::InvalidArgumentError("MatMul: at most 65535 tokens per launch");
  const int threads = 128;
  const dim3 grid(static_cast<unsigned>((n_out + threads - 1) / threads), static_cast<unsigned>(n_tok));
  switch (w_dtype) {
    case core::DType::kF32:
      MatMulKernel<<<grid, threads, 0, st>>>(x, static_cast<const float*>(w), bias, n_tok, n_in, n_out, y);
      break;
    case core::DType::kBF16:
      MatMulKernel<<<grid, threads, 0, st>>>(x, static_cast<const __nv_bfloat16*>(w), bias, n_tok, n_in,
                                      n_out, y);
      break;
    case core::DType::kF16:
      MatMulKernel<<<grid, threads, 0, st>>>(x, static_cast<const __half*>(w), bias, n_tok, n_in, n_out, y);
      break;
    default:
      return core::UnimplementedError(std::string("CUDA MatMul: weight dtype ") +
                                      std::string(core::DTypeName(w_dtype)));
  }
  return FromCuda(cudaGetLastError(), "MatMul launch");
}

core::Status Synchronize() { return FromCuda(cudaDeviceSynchronize(), "synchronize"); }

}  // namespace arle::kernels::cuda
