// Buffer: an owning, 64-byte-aligned block of host or device memory. Move-only; copies are explicit
// (Clone, CopyBytes). Host memory comes from calloc, so a large buffer (the paged KV cache) costs
// RAM only for the pages actually written: the C library maps fresh zero pages for it instead of
// clearing them. Device memory comes from the allocator its backend registered (kernels/cuda).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "arle/core/status.h"
#include "arle/core/tensor.h"

namespace arle::core {

inline constexpr size_t kBufferAlignment = 64;

// How a backend allocates, frees and copies its device's memory. core never links a device
// runtime: the backend registers this once (kernels::Context::Cuda() does for CUDA).
struct DeviceMemory {
  void* (*allocate)(size_t nbytes) = nullptr;  // zeroed; null when memory is short
  void (*release)(void* p) = nullptr;
  // Copies n bytes; either side may be host memory. Returns false on a device error.
  bool (*copy)(void* dst, Device dst_device, const void* src, Device src_device,
               size_t n) = nullptr;
};
// Registers `device`'s memory functions (kCuda only; the host needs none). Thread-safe.
void RegisterDeviceMemory(Device device, const DeviceMemory& memory);

class Buffer {
 public:
  Buffer() = default;
  // Allocates `nbytes` zero-initialized bytes; aborts if the allocation fails (use TryAllocate for
  // sizes that come from user input).
  explicit Buffer(size_t nbytes);
  // Returns ResourceExhausted instead of aborting when memory is short. For a device: its zeroed
  // memory, FailedPrecondition when no backend registered the device.
  static StatusOr<Buffer> TryAllocate(size_t nbytes, Device device = Device::kCpu);

  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t size() const { return size_; }
  Device device() const { return device_; }
  template <typename T>
  T* as() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* as() const {
    return static_cast<const T*>(data_);
  }
  // A contiguous tensor view over the start of this buffer, on its device. REQUIRES: it fits.
  Tensor AsTensor(DType dtype, std::span<const int64_t> shape);
  Tensor AsTensor(DType dtype, std::initializer_list<int64_t> shape) {
    return AsTensor(dtype, std::span<const int64_t>(shape.begin(), shape.size()));
  }
  // A host copy. REQUIRES: a host buffer (device buffers copy with CopyBytes).
  Buffer Clone() const;

 private:
  void* data_ = nullptr;   // aligned start
  void* alloc_ = nullptr;  // what calloc or the device allocator returned (freed)
  size_t size_ = 0;
  Device device_ = Device::kCpu;
};

// Copies src's bytes into dst, across devices when they differ (host <-> CUDA). REQUIRES (checked):
// both contiguous with equal byte sizes. Errors: FailedPrecondition for an unregistered device,
// Internal for a device error.
Status CopyBytes(const Tensor& src, Tensor& dst);

}  // namespace arle::core
