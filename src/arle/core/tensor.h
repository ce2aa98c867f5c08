// Tensor: a non-owning view of n-dimensional data (pointer, DType, shape, byte strides, device).
// Shapes are outermost-first like PyTorch: a weight [n_out, n_in] has n_in contiguous values per row.
// Block-quantized dtypes pack the innermost dimension; only whole rows can be addressed then.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

#include "arle/core/check.h"
#include "arle/core/dtype.h"

namespace arle::core {

enum class Device : uint8_t { kCpu, kCuda };

inline constexpr int kMaxTensorRank = 4;

class Tensor {
 public:
  Tensor() = default;
  // A contiguous view of `shape` at `data`. REQUIRES: rank <= kMaxTensorRank, dims >= 0, and for
  // block dtypes the innermost dim is a multiple of the block size.
  Tensor(void* data, DType dtype, std::span<const int64_t> shape, Device device = Device::kCpu);
  Tensor(void* data, DType dtype, std::initializer_list<int64_t> shape,
         Device device = Device::kCpu)
      : Tensor(data, dtype, std::span<const int64_t>(shape.begin(), shape.size()), device) {}

  void* data() const { return data_; }
  // Typed pointer. REQUIRES: sizeof(T) matches the dtype's element size and dtype is not blocked.
  template <typename T>
  T* data_as() const {
    ARLE_DCHECK(static_cast<int64_t>(sizeof(T)) == GetDTypeInfo(dtype_).block_bytes &&
                GetDTypeInfo(dtype_).block_elems == 1);
    return static_cast<T*>(data_);
  }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool empty() const { return data_ == nullptr; }
  int rank() const { return rank_; }
  // Size of dimension i; negative i counts from the end.
  int64_t dim(int i) const;
  std::span<const int64_t> shape() const { return {shape_.data(), static_cast<size_t>(rank_)}; }
  // Byte stride of dimension i (the innermost stride of a block dtype is 0: not addressable).
  int64_t stride_bytes(int i) const;
  int64_t numel() const;
  // Bytes spanned by a contiguous tensor.
  int64_t nbytes() const;
  bool is_contiguous() const;

  // The view of index `i` along dim 0 (rank - 1 dims; a rank-1 tensor gives a 1-element rank-1 view).
  Tensor Row(int64_t i) const;
  // Rows [begin, end) along dim 0.
  Tensor Slice(int64_t begin, int64_t end) const;
  // Same data with a new shape. REQUIRES: contiguous and the same numel.
  Tensor Reshape(std::span<const int64_t> shape) const;
  Tensor Reshape(std::initializer_list<int64_t> shape) const {
    return Reshape(std::span<const int64_t>(shape.begin(), shape.size()));
  }

  // "bf16[151936, 1024]"
  std::string ToString() const;

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  Device device_ = Device::kCpu;
  int rank_ = 0;
  std::array<int64_t, kMaxTensorRank> shape_{};
  std::array<int64_t, kMaxTensorRank> strides_{};  // bytes
};

}  // namespace arle::core
