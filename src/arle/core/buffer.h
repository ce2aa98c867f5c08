// Buffer: an owning, 64-byte-aligned block of host memory. Move-only; copies are explicit (Clone).
// Memory comes from calloc, so a large buffer (the paged KV cache) costs RAM only for the pages
// actually written: the C library maps fresh zero pages for it instead of clearing them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "arle/core/status.h"
#include "arle/core/tensor.h"

namespace arle::core {

inline constexpr size_t kBufferAlignment = 64;

class Buffer {
 public:
  Buffer() = default;
  // Allocates `nbytes` zero-initialized bytes; aborts if the allocation fails (use TryAllocate for
  // sizes that come from user input).
  explicit Buffer(size_t nbytes);
  // Returns ResourceExhausted instead of aborting when memory is short.
  static StatusOr<Buffer> TryAllocate(size_t nbytes);

  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t size() const { return size_; }
  template <typename T>
  T* as() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* as() const {
    return static_cast<const T*>(data_);
  }
  // A contiguous tensor view over the start of this buffer. REQUIRES: it fits.
  Tensor AsTensor(DType dtype, std::span<const int64_t> shape);
  Tensor AsTensor(DType dtype, std::initializer_list<int64_t> shape) {
    return AsTensor(dtype, std::span<const int64_t>(shape.begin(), shape.size()));
  }
  Buffer Clone() const;

 private:
  void* data_ = nullptr;   // aligned start
  void* alloc_ = nullptr;  // what calloc returned (freed)
  size_t size_ = 0;
};

}  // namespace arle::core
