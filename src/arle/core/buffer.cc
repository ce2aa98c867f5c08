// Aligned host buffers, device buffers through the registered allocator, and copies between them.
#include "arle/core/buffer.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

namespace arle::core {
namespace {

// Zeroed memory aligned to kBufferAlignment: calloc (which skips clearing fresh pages from the
// kernel, so untouched pages of a big buffer are never committed) plus up to one alignment of slack.
// Returns the aligned pointer and sets *alloc to the pointer to free.
void* AlignedZeroAlloc(size_t nbytes, void** alloc) {
  *alloc = nullptr;
  if (nbytes == 0) return nullptr;
  const size_t padded = nbytes + kBufferAlignment;
  if (padded < nbytes) return nullptr;
  void* p = std::calloc(1, padded);
  if (p == nullptr) return nullptr;
  *alloc = p;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<void*>((addr + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment);
}

std::mutex& DeviceMutex() {
  static std::mutex mu;
  return mu;
}

DeviceMemory& CudaMemory() {
  static DeviceMemory memory;
  return memory;
}

DeviceMemory RegisteredMemory(Device device) {
  if (device != Device::kCuda) return {};
  std::lock_guard<std::mutex> lock(DeviceMutex());
  return CudaMemory();
}

}  // namespace

void RegisterDeviceMemory(Device device, const DeviceMemory& memory) {
  ARLE_CHECK(device == Device::kCuda) << "only device memory is registered";
  std::lock_guard<std::mutex> lock(DeviceMutex());
  CudaMemory() = memory;
}

Buffer::Buffer(size_t nbytes) : size_(nbytes) {
  // In the body: alloc_'s default member initializer would run after data_'s initializer.
  data_ = AlignedZeroAlloc(nbytes, &alloc_);
  ARLE_CHECK(nbytes == 0 || data_ != nullptr) << "out of memory allocating " << nbytes << " bytes";
}

StatusOr<Buffer> Buffer::TryAllocate(size_t nbytes, Device device) {
  Buffer b;
  if (device != Device::kCpu) {
    const DeviceMemory memory = RegisteredMemory(device);
    if (memory.allocate == nullptr) {
      return FailedPreconditionError("no backend registered device memory",
                                     "create the backend's kernels::Context first");
    }
    b.device_ = device;
    b.size_ = nbytes;
    if (nbytes == 0) return b;
    b.data_ = b.alloc_ = memory.allocate(nbytes);
    if (b.data_ == nullptr) {
      return ResourceExhaustedError("cannot allocate " + std::to_string(nbytes) +
                                    " bytes of device memory");
    }
    return b;
  }
  b.data_ = AlignedZeroAlloc(nbytes, &b.alloc_);
  if (nbytes != 0 && b.data_ == nullptr) {
    return ResourceExhaustedError("cannot allocate " + std::to_string(nbytes) + " bytes");
  }
  b.size_ = nbytes;
  return b;
}

namespace {

void Release(void* alloc, Device device) {
  if (alloc == nullptr) return;
  if (device == Device::kCpu) {
    std::free(alloc);
  } else {
    RegisteredMemory(device).release(alloc);
  }
}

}  // namespace

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      alloc_(std::exchange(other.alloc_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      device_(std::exchange(other.device_, Device::kCpu)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Release(alloc_, device_);
    data_ = std::exchange(other.data_, nullptr);
    alloc_ = std::exchange(other.alloc_, nullptr);
    size_ = std::exchange(other.size_, 0);
    device_ = std::exchange(other.device_, Device::kCpu);
  }
  return *this;
}

Buffer::~Buffer() { Release(alloc_, device_); }

Tensor Buffer::AsTensor(DType dtype, std::span<const int64_t> shape) {
  Tensor t(data_, dtype, shape, device_);
  ARLE_CHECK_LE(t.nbytes(), static_cast<int64_t>(size_)) << t.ToString() << " does not fit";
  return t;
}

Buffer Buffer::Clone() const {
  ARLE_CHECK(device_ == Device::kCpu) << "Clone of a device buffer (use CopyBytes)";
  Buffer copy(size_);
  if (size_) std::memcpy(copy.data_, data_, size_);
  return copy;
}

Status CopyBytes(const Tensor& src, Tensor& dst) {
  ARLE_CHECK(src.is_contiguous() && dst.is_contiguous() && src.nbytes() == dst.nbytes())
      << "CopyBytes: " << src.ToString() << " -> " << dst.ToString();
  const size_t n = static_cast<size_t>(src.nbytes());
  if (n == 0) return OkStatus();
  if (src.device() == Device::kCpu && dst.device() == Device::kCpu) {
    std::memmove(dst.data(), src.data(), n);
    return OkStatus();
  }
  const Device device = src.device() != Device::kCpu ? src.device() : dst.device();
  const DeviceMemory memory = RegisteredMemory(device);
  if (memory.copy == nullptr) return FailedPreconditionError("no backend registered device memory");
  if (!memory.copy(dst.data(), dst.device(), src.data(), src.device(), n)) {
    return InternalError("device copy of " + std::to_string(n) + " bytes failed");
  }
  return OkStatus();
}

}  // namespace arle::core
