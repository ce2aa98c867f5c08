// Tests for Tensor views and Buffer.
#include "arle/core/tensor.h"

#include <gtest/gtest.h>

#include "arle/core/buffer.h"

namespace arle::core {
namespace {

TEST(TensorTest, ContiguousStridesAndViews) {
  Buffer buf(2 * 3 * 4 * sizeof(float));
  Tensor t = buf.AsTensor(DType::kF32, {2, 3, 4});
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96);
  EXPECT_EQ(t.stride_bytes(0), 48);
  EXPECT_EQ(t.stride_bytes(-1), 4);
  EXPECT_TRUE(t.is_contiguous());
  Tensor row = t.Row(1);
  EXPECT_EQ(row.rank(), 2);
  EXPECT_EQ(row.data(), static_cast<char*>(buf.data()) + 48);
  Tensor s = t.Slice(1, 2);
  EXPECT_EQ(s.dim(0), 1);
  Tensor r = t.Reshape({6, 4});
  EXPECT_EQ(r.ToString(), "f32[6, 4]");
}

TEST(TensorTest, BlockDTypeRows) {
  Buffer buf(4 * 2 * 34);
  Tensor t = buf.AsTensor(DType::kQ8_0, {4, 64});
  EXPECT_EQ(t.stride_bytes(0), 68);
  EXPECT_EQ(t.nbytes(), 4 * 68);
  EXPECT_EQ(t.Row(3).data(), static_cast<char*>(buf.data()) + 3 * 68);
}

TEST(BufferTest, MoveAndClone) {
  Buffer a(100);
  a.as<uint8_t>()[5] = 7;
  Buffer b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  Buffer c = b.Clone();
  EXPECT_EQ(c.as<uint8_t>()[5], 7);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(c.data()) % kBufferAlignment, 0u);
}

TEST(TensorDeathTest, BadBlockShapeAborts) {
  Buffer buf(1024);
  EXPECT_DEATH(buf.AsTensor(DType::kQ4_0, {2, 33}), "block size");
}

}  // namespace
}  // namespace arle::core
