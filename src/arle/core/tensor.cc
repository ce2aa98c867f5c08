// Tensor view arithmetic.
#include "arle/core/tensor.h"

#include <fmt/format.h>

namespace arle::core {

Tensor::Tensor(void* data, DType dtype, std::span<const int64_t> shape, Device device)
    : data_(data), dtype_(dtype), device_(device), rank_(static_cast<int>(shape.size())) {
  ARLE_CHECK_LE(rank_, kMaxTensorRank);
  const DTypeInfo& info = GetDTypeInfo(dtype);
  for (int i = 0; i < rank_; ++i) {
    ARLE_CHECK_GE(shape[i], 0);
    shape_[i] = shape[i];
  }
  if (rank_ == 0) return;
  ARLE_CHECK(shape_[rank_ - 1] % info.block_elems == 0)
      << "innermost dim " << shape_[rank_ - 1] << " is not a multiple of the " << info.name
      << " block size " << info.block_elems;
  int64_t stride = info.block_bytes;
  if (info.block_elems > 1) {
    strides_[rank_ - 1] = 0;
    stride = shape_[rank_ - 1] / info.block_elems * info.block_bytes;
  } else {
    strides_[rank_ - 1] = stride;
    stride *= shape_[rank_ - 1];
  }
  for (int i = rank_ - 2; i >= 0; --i) {
    strides_[i] = stride;
    stride *= shape_[i];
  }
}

int64_t Tensor::dim(int i) const {
  if (i < 0) i += rank_;
  ARLE_CHECK(i >= 0 && i < rank_) << "dim index out of range for " << ToString();
  return shape_[i];
}

int64_t Tensor::stride_bytes(int i) const {
  if (i < 0) i += rank_;
  ARLE_CHECK(i >= 0 && i < rank_);
  return strides_[i];
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= shape_[i];
  return n;
}

int64_t Tensor::nbytes() const {
  ARLE_CHECK(is_contiguous()) << ToString();
  if (rank_ == 0) return GetDTypeInfo(dtype_).block_bytes;
  return *DTypeBytes(dtype_, numel());
}

bool Tensor::is_contiguous() const {
  if (rank_ == 0) return true;
  const DTypeInfo& info = GetDTypeInfo(dtype_);
  int64_t expected =
      info.block_elems > 1 ? shape_[rank_ - 1] / info.block_elems * info.block_bytes
                           : info.block_bytes * shape_[rank_ - 1];
  if (info.block_elems == 1 && strides_[rank_ - 1] != info.block_bytes) return false;
  for (int i = rank_ - 2; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

Tensor Tensor::Row(int64_t i) const {
  ARLE_CHECK_GE(rank_, 1);
  ARLE_CHECK(i >= 0 && i < shape_[0]) << "row " << i << " out of range for " << ToString();
  Tensor out = *this;
  out.data_ = static_cast<char*>(data_) + i * strides_[0];
  if (rank_ == 1) {
    out.shape_[0] = 1;
    return out;
  }
  for (int d = 1; d < rank_; ++d) {
    out.shape_[d - 1] = shape_[d];
    out.strides_[d - 1] = strides_[d];
  }
  out.rank_ = rank_ - 1;
  return out;
}

Tensor Tensor::Slice(int64_t begin, int64_t end) const {
  ARLE_CHECK_GE(rank_, 1);
  ARLE_CHECK(0 <= begin && begin <= end && end <= shape_[0])
      << "slice [" << begin << ", " << end << ") out of range for " << ToString();
  Tensor out = *this;
  out.data_ = static_cast<char*>(data_) + begin * strides_[0];
  out.shape_[0] = end - begin;
  return out;
}

Tensor Tensor::Reshape(std::span<const int64_t> shape) const {
  ARLE_CHECK(is_contiguous()) << "Reshape of a non-contiguous " << ToString();
  Tensor out(data_, dtype_, shape, device_);
  ARLE_CHECK_EQ(out.numel(), numel()) << "Reshape " << ToString() << " to " << out.ToString();
  return out;
}

std::string Tensor::ToString() const {
  std::string dims;
  for (int i = 0; i < rank_; ++i) {
    if (i) dims += ", ";
    dims += std::to_string(shape_[i]);
  }
  return fmt::format("{}[{}]", DTypeName(dtype_), dims);
}

}  // namespace arle::core
