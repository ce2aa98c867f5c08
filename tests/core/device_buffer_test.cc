// Device-aware buffers: allocation through the allocator a backend registers, tensors that carry
// the device, and CopyBytes across devices. A fake "CUDA" made of host memory with a byte count
// stands in for the real one (tests/kernels/cuda_ops_test.cc uses the real one on GPU machines).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "arle/core/buffer.h"

namespace arle::core {
namespace {

int64_t g_live = 0;  // fake device allocations not yet released
int g_copies = 0;

void* FakeAllocate(size_t n) {
  ++g_live;
  return std::calloc(1, n);
}
void FakeRelease(void* p) {
  --g_live;
  std::free(p);
}
bool FakeCopy(void* dst, Device, const void* src, Device, size_t n) {
  ++g_copies;
  std::memcpy(dst, src, n);
  return true;
}

TEST(DeviceBufferTest, WithoutARegisteredBackendDeviceMemoryIsRefused) {
  // Runs first in this binary (gtest keeps declaration order): nothing is registered yet.
  auto b = Buffer::TryAllocate(64, Device::kCuda);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kFailedPrecondition);
}

TEST(DeviceBufferTest, AllocatesCopiesAndReleasesThroughTheBackend) {
  RegisterDeviceMemory(Device::kCuda, {&FakeAllocate, &FakeRelease, &FakeCopy});
  float host[4] = {1, 2, 3, 4}, back[4] = {};
  {
    auto dev = Buffer::TryAllocate(sizeof(host), Device::kCuda);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    EXPECT_EQ(dev->device(), Device::kCuda);
    EXPECT_EQ(g_live, 1);
    Tensor t = dev->AsTensor(DType::kF32, {4});
    EXPECT_EQ(t.device(), Device::kCuda);
    Tensor h(host, DType::kF32, {4}), hb(back, DType::kF32, {4});
    ASSERT_TRUE(CopyBytes(h, t).ok());
    ASSERT_TRUE(CopyBytes(t, hb).ok());
    EXPECT_EQ(g_copies, 2);
    EXPECT_EQ(std::memcmp(host, back, sizeof(host)), 0);
    Buffer moved = std::move(dev).value();
    EXPECT_EQ(moved.device(), Device::kCuda);
  }
  EXPECT_EQ(g_live, 0);  // released by the backend, not by free()
  Tensor a(host, DType::kF32, {4}), b(back, DType::kF32, {2});
  EXPECT_DEATH((void)CopyBytes(a, b), "CopyBytes");
}

}  // namespace
}  // namespace arle::core
