// CUDA kernels against the scalar reference, both reached through the ops' one dispatch
// (kernels::MatMul / RmsNorm on a Context::Cuda() with device tensors, and on a ref Context with
// host tensors). Both accumulate in f32 in index order without contraction, so results must be
// bit-identical. Skipped when no CUDA device is present (CI compiles this test with the cuda
// preset; it runs on GPU machines).
#include "arle/kernels/cuda/cuda_ops.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/half.h"
#include "arle/core/random.h"
#include "arle/kernels/context.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/rmsnorm.h"

namespace arle::kernels {
namespace {

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::DeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
    auto ctx = Context::Cuda();
    ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
    cuda_ = std::make_unique<Context>(std::move(ctx).value());
  }
  // A device copy of a host buffer.
  core::Buffer Upload(const core::Buffer& host) {
    auto dev = core::Buffer::TryAllocate(host.size(), core::Device::kCuda);
    EXPECT_TRUE(dev.ok()) << dev.status().ToString();
    core::Tensor src(const_cast<void*>(host.data()), core::DType::kI8,
                     {static_cast<int64_t>(host.size())});
    core::Tensor dst = dev->AsTensor(core::DType::kI8, {static_cast<int64_t>(host.size())});
    EXPECT_TRUE(core::CopyBytes(src, dst).ok());
    return std::move(dev).value();
  }
  std::vector<float> Download(const core::Buffer& dev) {
    std::vector<float> host(dev.size() / sizeof(float));
    core::Tensor src(const_cast<void*>(dev.data()), core::DType::kF32,
                     {static_cast<int64_t>(host.size())}, core::Device::kCuda);
    core::Tensor dst(host.data(), core::DType::kF32, {static_cast<int64_t>(host.size())});
    EXPECT_TRUE(cuda::Synchronize().ok());
    EXPECT_TRUE(core::CopyBytes(src, dst).ok());
    return host;
  }
  core::ThreadPool pool_{1};
  Context ref_ = Context::Cpu(Backend::kRef, pool_);
  std::unique_ptr<Context> cuda_;
};

core::Buffer RandomBuffer(int64_t n, core::DType dtype, uint64_t seed) {
  core::Rng rng(seed);
  core::Buffer buf(static_cast<size_t>(n) * core::ElementSize(dtype));
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(rng.Normal());
    if (dtype == core::DType::kF32) buf.as<float>()[i] = v;
    if (dtype == core::DType::kBF16) buf.as<uint16_t>()[i] = core::F32ToBF16(v);
    if (dtype == core::DType::kF16) buf.as<uint16_t>()[i] = core::F32ToF16(v);
  }
  return buf;
}

TEST_F(CudaOpsTest, MatMulMatchesReferenceBitForBit) {
  const int64_t n_tok = 5, n_in = 67, n_out = 131;
  for (core::DType dtype : {core::DType::kF32, core::DType::kBF16, core::DType::kF16}) {
    SCOPED_TRACE(core::DTypeName(dtype));
    core::Buffer x = RandomBuffer(n_tok * n_in, core::DType::kF32, 1);
    core::Buffer w = RandomBuffer(n_out * n_in, dtype, 2);
    core::Buffer bias = RandomBuffer(n_out, core::DType::kF32, 3);
    core::Buffer want(n_tok * n_out * 4);
    core::Tensor tx = x.AsTensor(core::DType::kF32, {n_tok, n_in});
    core::Tensor tw = w.AsTensor(dtype, {n_out, n_in});
    core::Tensor tb = bias.AsTensor(core::DType::kF32, {n_out});
    core::Tensor ty = want.AsTensor(core::DType::kF32, {n_tok, n_out});
    const MatMulOutput host_out{&tw, &tb, &ty};
    MatMul(ref_, {.x = &tx, .outputs = {&host_out, 1}});

    core::Buffer dx = Upload(x), dw = Upload(w), db = Upload(bias);
    auto dy = core::Buffer::TryAllocate(want.size(), core::Device::kCuda);
    ASSERT_TRUE(dy.ok());
    core::Tensor dtx = dx.AsTensor(core::DType::kF32, {n_tok, n_in});
    core::Tensor dtw = dw.AsTensor(dtype, {n_out, n_in});
    core::Tensor dtb = db.AsTensor(core::DType::kF32, {n_out});
    core::Tensor dty = dy->AsTensor(core::DType::kF32, {n_tok, n_out});
    const MatMulOutput dev_out{&dtw, &dtb, &dty};
    MatMul(*cuda_, {.x = &dtx, .outputs = {&dev_out, 1}});
    const std::vector<float> got = Download(*dy);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size()), 0);
  }
}

TEST_F(CudaOpsTest, RmsNormMatchesReferenceBitForBit) {
  const int64_t n_rows = 7, n = 96;
  core::Buffer x = RandomBuffer(n_rows * n, core::DType::kF32, 4);
  core::Buffer w = RandomBuffer(n, core::DType::kF32, 5);
  core::Buffer want(n_rows * n * 4);
  core::Tensor tx = x.AsTensor(core::DType::kF32, {n_rows, n});
  core::Tensor tw = w.AsTensor(core::DType::kF32, {n});
  core::Tensor ty = want.AsTensor(core::DType::kF32, {n_rows, n});
  RmsNorm(ref_, {.x = &tx, .w = &tw, .eps = 1e-6f, .y = &ty});
  core::Buffer dx = Upload(x), dw = Upload(w);
  auto dy = core::Buffer::TryAllocate(want.size(), core::Device::kCuda);
  ASSERT_TRUE(dy.ok());
  core::Tensor dtx = dx.AsTensor(core::DType::kF32, {n_rows, n});
  core::Tensor dtw = dw.AsTensor(core::DType::kF32, {n});
  core::Tensor dty = dy->AsTensor(core::DType::kF32, {n_rows, n});
  RmsNorm(*cuda_, {.x = &dtx, .w = &dtw, .eps = 1e-6f, .y = &dty});
  const std::vector<float> got = Download(*dy);
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size()), 0);
}

TEST_F(CudaOpsTest, HostMemoryIsRefused) {
  core::Buffer x = RandomBuffer(4, core::DType::kF32, 6);
  core::Tensor tx = x.AsTensor(core::DType::kF32, {1, 4});
  const core::Tensor tw = x.AsTensor(core::DType::kF32, {4});
  EXPECT_DEATH(RmsNorm(*cuda_, {.x = &tx, .w = &tw, .eps = 1e-6f, .y = &tx}), "not in cuda memory");
}

}  // namespace
}  // namespace arle::kernels
