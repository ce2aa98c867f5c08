// Aligned host buffers.
#include "arle/core/buffer.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace arle::core {
namespace {

void* AlignedAlloc(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t rounded = (nbytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
  if (rounded < nbytes) return nullptr;
  void* p = std::aligned_alloc(kBufferAlignment, rounded);
  if (p != nullptr) std::memset(p, 0, rounded);
  return p;
}

}  // namespace

Buffer::Buffer(size_t nbytes) : data_(AlignedAlloc(nbytes)), size_(nbytes) {
  ARLE_CHECK(nbytes == 0 || data_ != nullptr) << "out of memory allocating " << nbytes << " bytes";
}

StatusOr<Buffer> Buffer::TryAllocate(size_t nbytes) {
  Buffer b;
  b.data_ = AlignedAlloc(nbytes);
  if (nbytes != 0 && b.data_ == nullptr) {
    return ResourceExhaustedError("cannot allocate " + std::to_string(nbytes) + " bytes");
  }
  b.size_ = nbytes;
  return b;
}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Buffer::~Buffer() { std::free(data_); }

Tensor Buffer::AsTensor(DType dtype, std::span<const int64_t> shape) {
  Tensor t(data_, dtype, shape);
  ARLE_CHECK_LE(t.nbytes(), static_cast<int64_t>(size_)) << t.ToString() << " does not fit";
  return t;
}

Buffer Buffer::Clone() const {
  Buffer copy(size_);
  if (size_) std::memcpy(copy.data_, data_, size_);
  return copy;
}

}  // namespace arle::core
