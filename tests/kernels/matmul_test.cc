// MatMul: Highway vs scalar reference on every SIMD target and weight dtype, odd sizes, bias, and
// batch invariance (a row of a batched product is bit-identical to the row computed alone, for
// 1 and 2 threads).
#include "arle/kernels/matmul.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "kernel_test_util.h"

namespace arle::kernels {
namespace {

using testing::Ctx;
using testing::ForEachTarget;
using testing::Gamma;
using testing::MatMul1;
using testing::RandomBuffer;
using testing::SerialCtx;
using testing::Tmp;

struct Problem {
  int64_t n_tok, n_in, n_out;
  core::DType w_dtype;
  bool bias;
};

class MatMulTest : public ::testing::TestWithParam<core::DType> {};

// Both kernels compute the same sum of n_in products (+ bias) in f32, in different orders and
// with or without fused multiply-adds. Each result is within gamma_{n_in+1} * (sum|x_i w_i| + |b|)
// of the exact value (Higham, Accuracy and Stability, eq. 3.5; weights convert to f32 exactly), so
//   |cpu - ref| <= 2 * gamma_{n_in+1} * (sum|x_i w_i| + |b|).
TEST_P(MatMulTest, CpuMatchesReferenceOnEveryTarget) {
  const core::DType w_dtype = GetParam();
  core::ThreadPool pool(2);
  core::Rng rng(42);
  const std::vector<Problem> problems = {
      {1, 1, 1, w_dtype, false},   {1, 7, 5, w_dtype, true},     {3, 64, 17, w_dtype, false},
      {5, 131, 9, w_dtype, true},  {2, 1024, 6, w_dtype, false}, {9, 67, 33, w_dtype, true},
      {4, 16, 4, w_dtype, false},
  };
  ForEachTarget([&](const char*) {
    for (const Problem& p : problems) {
      SCOPED_TRACE(::testing::Message() << "n_tok=" << p.n_tok << " n_in=" << p.n_in
                                        << " n_out=" << p.n_out << " bias=" << p.bias);
      std::vector<float> xf, wf, bf;
      core::Buffer xb = RandomBuffer(rng, core::DType::kF32, p.n_tok * p.n_in, 1.0, &xf);
      core::Buffer wb = RandomBuffer(rng, p.w_dtype, p.n_out * p.n_in, 0.5, &wf);
      core::Buffer bb = RandomBuffer(rng, core::DType::kBF16, p.n_out, 1.0, &bf);
      core::Tensor x = xb.AsTensor(core::DType::kF32, {p.n_tok, p.n_in});
      core::Tensor w = wb.AsTensor(p.w_dtype, {p.n_out, p.n_in});
      core::Tensor b = bb.AsTensor(core::DType::kBF16, {p.n_out});
      core::Buffer y_ref_b(p.n_tok * p.n_out * 4), y_cpu_b(p.n_tok * p.n_out * 4);
      core::Tensor y_ref = y_ref_b.AsTensor(core::DType::kF32, {p.n_tok, p.n_out});
      core::Tensor y_cpu = y_cpu_b.AsTensor(core::DType::kF32, {p.n_tok, p.n_out});
      MatMul1(Ctx(pool, Backend::kRef), x, w, p.bias ? &b : nullptr, y_ref);
      MatMul1(Ctx(pool, Backend::kCpu), x, w, p.bias ? &b : nullptr, y_cpu);
      for (int64_t t = 0; t < p.n_tok; ++t) {
        for (int64_t o = 0; o < p.n_out; ++o) {
          double abs_sum = p.bias ? std::fabs(bf[o]) : 0.0;
          double exact = p.bias ? bf[o] : 0.0;
          for (int64_t i = 0; i < p.n_in; ++i) {
            abs_sum += std::fabs(static_cast<double>(xf[t * p.n_in + i]) * wf[o * p.n_in + i]);
            exact += static_cast<double>(xf[t * p.n_in + i]) * wf[o * p.n_in + i];
          }
          const double bound = Gamma(p.n_in + 1) * abs_sum;
          const float r = y_ref.data_as<float>()[t * p.n_out + o];
          const float c = y_cpu.data_as<float>()[t * p.n_out + o];
          // The reference itself against the exact (double) value, then cpu against reference.
          ASSERT_LE(std::fabs(r - exact), bound) << "t=" << t << " o=" << o;
          ASSERT_LE(std::fabs(c - r), 2 * bound) << "t=" << t << " o=" << o;
        }
      }
    }
  });
}

TEST_P(MatMulTest, BatchedRowsAreBitIdenticalToSingleRows) {
  const core::DType w_dtype = GetParam();
  core::Rng rng(7);
  const int64_t n_tok = 7, n_in = 133, n_out = 23;
  core::Buffer xb = RandomBuffer(rng, core::DType::kF32, n_tok * n_in, 1.0);
  core::Buffer wb = RandomBuffer(rng, w_dtype, n_out * n_in, 0.3);
  core::Buffer bb = RandomBuffer(rng, core::DType::kF32, n_out, 1.0);
  core::Tensor x = xb.AsTensor(core::DType::kF32, {n_tok, n_in});
  core::Tensor w = wb.AsTensor(w_dtype, {n_out, n_in});
  core::Tensor b = bb.AsTensor(core::DType::kF32, {n_out});
  for (const Backend backend : {Backend::kCpu, Backend::kRef}) {
    ForEachTarget([&](const char*) {
      std::vector<float> first;
      for (const int threads : {1, 2}) {
        SCOPED_TRACE(::testing::Message() << BackendName(backend) << " threads=" << threads);
        core::ThreadPool pool(threads);
        core::Buffer yb(n_tok * n_out * 4);
        core::Tensor y = yb.AsTensor(core::DType::kF32, {n_tok, n_out});
        MatMul1(Ctx(pool, backend), x, w, &b, y);
        for (int64_t t = 0; t < n_tok; ++t) {
          core::Buffer y1b(n_out * 4);
          core::Tensor y1 = y1b.AsTensor(core::DType::kF32, {1, n_out});
          MatMul1(Ctx(pool, backend), x.Slice(t, t + 1), w, &b, y1);
          ASSERT_EQ(0, std::memcmp(y1.data(), y.data_as<float>() + t * n_out, n_out * 4))
              << "row " << t;
        }
        // Odd sub-batches too (tiles of 2 tokens split differently).
        core::Buffer y3b(3 * n_out * 4);
        core::Tensor y3 = y3b.AsTensor(core::DType::kF32, {3, n_out});
        MatMul1(Ctx(pool, backend), x.Slice(2, 5), w, &b, y3);
        ASSERT_EQ(0, std::memcmp(y3.data(), y.data_as<float>() + 2 * n_out, 3 * n_out * 4));
        std::vector<float> all(y.data_as<float>(), y.data_as<float>() + n_tok * n_out);
        if (first.empty()) {
          first = all;
        } else {
          ASSERT_EQ(0, std::memcmp(first.data(), all.data(), all.size() * 4)) << "thread count";
        }
      }
    });
  }
}

INSTANTIATE_TEST_SUITE_P(WeightDTypes, MatMulTest,
                         ::testing::Values(core::DType::kF32, core::DType::kF16, core::DType::kBF16),
                         [](const auto& info) { return std::string(core::DTypeName(info.param)); });

}  // namespace
}  // namespace arle::kernels
