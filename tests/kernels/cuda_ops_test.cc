// CUDA kernels against the scalar reference (kernels/ref): both accumulate in f32 in index order
// without contraction, so results must be bit-identical. Skipped when no CUDA device is present
// (CI compiles this test with the cuda preset; it runs on GPU machines).
#include "arle/kernels/cuda/cuda_ops.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "arle/core/half.h"
#include "arle/core/random.h"
#include "arle/kernels/kernel_args.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels::cuda {
namespace {

class CudaOpsTest : public testing::Test {
 protected:
  void SetUp() override {
    if (DeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

std::vector<float> RandomVector(size_t n, uint64_t seed) {
  core::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.Normal());
  return v;
}

template <typename T>
DeviceBuffer Upload(const std::vector<T>& host) {
  auto buf = DeviceBuffer::Allocate(host.size() * sizeof(T));
  EXPECT_TRUE(buf.ok());
  EXPECT_TRUE(buf->CopyFromHost(host.data(), host.size() * sizeof(T)).ok());
  return std::move(buf).value();
}

TEST_F(CudaOpsTest, MatMulMatchesReferenceBitForBit) {
  const int64_t n_tok = 5, n_in = 67, n_out = 131;
  for (core::DType dtype : {core::DType::kF32, core::DType::kBF16, core::DType::kF16}) {
    std::vector<float> x = RandomVector(n_tok * n_in, 1), w32 = RandomVector(n_out * n_in, 2);
    std::vector<float> bias = RandomVector(n_out, 3);
    std::vector<uint16_t> w16(w32.size());
    for (size_t i = 0; i < w32.size(); ++i) {
      w16[i] = dtype == core::DType::kBF16 ? core::F32ToBF16(w32[i]) : core::F32ToF16(w32[i]);
    }
    const void* w_host = dtype == core::DType::kF32 ? static_cast<const void*>(w32.data()) : w16.data();
    std::vector<float> want(n_tok * n_out);
    MatMulArgs a;
    a.x = x.data();
    a.x_stride = n_in;
    a.w = w_host;
    a.w_dtype = dtype;
    a.bias = bias.data();
    a.y = want.data();
    a.y_stride = n_out;
    a.n_tok = n_tok;
    a.n_in = n_in;
    a.n_out = n_out;
    ref::MatMulRows(a, 0, n_out);

    DeviceBuffer dx = Upload(x), db = Upload(bias);
    DeviceBuffer dw = dtype == core::DType::kF32 ? Upload(w32) : Upload(w16);
    auto dy = DeviceBuffer::Allocate(want.size() * sizeof(float));
    ASSERT_TRUE(dy.ok());
    ASSERT_TRUE(MatMul(static_cast<const float*>(dx.data()), dw.data(), dtype,
                       static_cast<const float*>(db.data()), n_tok, n_in, n_out,
                       static_cast<float*>(dy->data()))
                    .ok());
    ASSERT_TRUE(Synchronize().ok());
    std::vector<float> got(want.size());
    ASSERT_TRUE(dy->CopyToHost(got.data(), got.size() * sizeof(float)).ok());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
        << core::DTypeName(dtype);
  }
}

TEST_F(CudaOpsTest, RmsNormMatchesReferenceBitForBit) {
  const int64_t n_rows = 7, n = 96;
  std::vector<float> x = RandomVector(n_rows * n, 4), w = RandomVector(n, 5), want(n_rows * n);
  RmsNormArgs a;
  a.x = x.data();
  a.w = w.data();
  a.y = want.data();
  a.n_rows = n_rows;
  a.n = n;
  a.eps = 1e-6f;
  ref::RmsNormRows(a, 0, n_rows);
  DeviceBuffer dx = Upload(x), dw = Upload(w);
  auto dy = DeviceBuffer::Allocate(want.size() * sizeof(float));
  ASSERT_TRUE(dy.ok());
  ASSERT_TRUE(RmsNorm(static_cast<const float*>(dx.data()), static_cast<const float*>(dw.data()),
                      1e-6f, n_rows, n, static_cast<float*>(dy->data()))
                  .ok());
  ASSERT_TRUE(Synchronize().ok());
  std::vector<float> got(want.size());
  ASSERT_TRUE(dy->CopyToHost(got.data(), got.size() * sizeof(float)).ok());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace arle::kernels::cuda
