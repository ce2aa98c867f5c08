// Aligned host buffers.
#include "arle/core/buffer.h"

#include <cstdlib>
#include <cstring>
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

}  // namespace

Buffer::Buffer(size_t nbytes) : size_(nbytes) {
  // In the body: alloc_'s default member initializer would run after data_'s initializer.
  data_ = AlignedZeroAlloc(nbytes, &alloc_);
  ARLE_CHECK(nbytes == 0 || data_ != nullptr) << "out of memory allocating " << nbytes << " bytes";
}

StatusOr<Buffer> Buffer::TryAllocate(size_t nbytes) {
  Buffer b;
  b.data_ = AlignedZeroAlloc(nbytes, &b.alloc_);
  if (nbytes != 0 && b.data_ == nullptr) {
    return ResourceExhaustedError("cannot allocate " + std::to_string(nbytes) + " bytes");
  }
  b.size_ = nbytes;
  return b;
}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      alloc_(std::exchange(other.alloc_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    std::free(alloc_);
    data_ = std::exchange(other.data_, nullptr);
    alloc_ = std::exchange(other.alloc_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Buffer::~Buffer() { std::free(alloc_); }

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
