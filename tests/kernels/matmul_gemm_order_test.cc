// MatMul's FloatMatMul::kGemm order (f32 weights through the register-tiled GEMM, the trainer's
// forward): the Highway GEMM against the scalar reference on every SIMD target and both against
// the exact (double) product with the bound of one f32 multiply-add chain, bias and fused norm
// included; rows bit-identical whether computed alone or in a batch, and for pools of 1, 2 and 3
// threads; MatMulSwiGlu equal to its unfused ops in this order too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "arle/kernels/elementwise.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/rmsnorm.h"
#include "kernel_test_util.h"

namespace arle::kernels {
namespace {

using testing::ForEachTarget;
using testing::Gamma;

std::vector<float> Random(core::Rng& rng, int64_t n, double scale = 1.0) {
  std::vector<float> v(static_cast<size_t>(std::max<int64_t>(n, 1)));
  for (float& x : v) x = static_cast<float>(rng.Normal() * scale);
  return v;
}

core::Tensor View(std::vector<float>& v, int64_t rows, int64_t cols) {
  return core::Tensor(v.data(), core::DType::kF32, {rows, cols});
}

Context GemmCtx(core::ThreadPool& pool, Backend backend) {
  Context ctx = Context::Cpu(backend, pool);
  ctx.set_float_matmul(FloatMatMul::kGemm);
  return ctx;
}

struct Shape {
  int64_t n_tok, n_out, n_in;
};
// Around the SIMD widths and tiles (6 rows x 2-4 vectors), past one k slice (128 floats on
// AVX-512) and one 192-column block of the CPU kernel, past one 384-row block, with w's
// transposed squares (8 or 16 floats a side) and their remainders; a column tail on every target.
const Shape kShapes[] = {{1, 1, 1},    {7, 13, 19},  {5, 17, 33},   {13, 40, 70}, {20, 9, 130},
                         {97, 31, 45}, {9, 300, 37}, {800, 11, 23}, {6, 64, 257}, {30, 450, 400}};

std::vector<float> Product(const Context& ctx, const Shape& s, std::vector<float>& x,
                           std::vector<float>& w, std::vector<float>* bias) {
  std::vector<float> y(static_cast<size_t>(s.n_tok * s.n_out), NAN);
  core::Tensor tx = View(x, s.n_tok, s.n_in), tw = View(w, s.n_out, s.n_in);
  core::Tensor ty = View(y, s.n_tok, s.n_out);
  core::Tensor tb;
  if (bias != nullptr) tb = core::Tensor(bias->data(), core::DType::kF32, {s.n_out});
  testing::MatMul1(ctx, tx, tw, bias != nullptr ? &tb : nullptr, ty);
  return y;
}

TEST(MatMulGemmOrderTest, CpuMatchesReferenceAndTheExactProductOnEveryTarget) {
  core::ThreadPool pool(2);
  core::Rng rng(21);
  ForEachTarget([&](const char*) {
    for (const Shape& s : kShapes) {
      for (const bool with_bias : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "n_tok=" << s.n_tok << " n_out=" << s.n_out
                                          << " n_in=" << s.n_in << " bias=" << with_bias);
        std::vector<float> x = Random(rng, s.n_tok * s.n_in), w = Random(rng, s.n_out * s.n_in);
        std::vector<float> bias = Random(rng, s.n_out);
        std::vector<float>* b = with_bias ? &bias : nullptr;
        const std::vector<float> r = Product(GemmCtx(pool, Backend::kRef), s, x, w, b);
        const std::vector<float> c = Product(GemmCtx(pool, Backend::kCpu), s, x, w, b);
        for (int64_t t = 0; t < s.n_tok; ++t) {
          for (int64_t o = 0; o < s.n_out; ++o) {
            // One chain of n_in multiply-adds from 0, then the bias: gamma_{n_in + 1} of the
            // sum of magnitudes (Higham eq. 3.5).
            double exact = with_bias ? bias[o] : 0.0;
            double magnitude = std::fabs(exact);
            for (int64_t i = 0; i < s.n_in; ++i) {
              const double p = static_cast<double>(x[t * s.n_in + i]) * w[o * s.n_in + i];
              exact += p;
              magnitude += std::fabs(p);
            }
            const double bound = Gamma(s.n_in + 1) * magnitude;
            const int64_t at = t * s.n_out + o;
            ASSERT_LE(std::fabs(r[at] - exact), bound) << "ref t=" << t << " o=" << o;
            ASSERT_LE(std::fabs(c[at] - r[at]), 2 * bound) << "cpu t=" << t << " o=" << o;
          }
        }
      }
    }
  });
}

// The determinism contract in this order: a row's bits do not depend on the batch around it
// or the pool's size.
TEST(MatMulGemmOrderTest, RowsAreBatchAndThreadInvariant) {
  core::Rng rng(22);
  // Tall (row blocks of 384, then column blocks of 64) and short-and-wide (one row block; columns
  // split in 128s by one thread and 64s by two or three), each with a column tail.
  for (const Shape s : {Shape{700, 70, 150}, Shape{10, 300, 150}}) {
    SCOPED_TRACE(::testing::Message() << "n_tok=" << s.n_tok << " n_out=" << s.n_out);
    std::vector<float> x = Random(rng, s.n_tok * s.n_in), w = Random(rng, s.n_out * s.n_in);
    std::vector<float> bias = Random(rng, s.n_out);
    core::ThreadPool pool1(1), pool2(2), pool3(3);
    const std::vector<float> all = Product(GemmCtx(pool2, Backend::kCpu), s, x, w, &bias);
    for (core::ThreadPool* pool : {&pool1, &pool3}) {
      const std::vector<float> again = Product(GemmCtx(*pool, Backend::kCpu), s, x, w, &bias);
      ASSERT_EQ(0, std::memcmp(all.data(), again.data(), all.size() * sizeof(float)))
          << "pool of " << pool->size();
    }
    for (const int64_t t : {int64_t{0}, int64_t{5}, int64_t{383}, int64_t{384}, s.n_tok - 1}) {
      if (t >= s.n_tok) continue;
      std::vector<float> row(x.begin() + t * s.n_in, x.begin() + (t + 1) * s.n_in);
      const std::vector<float> alone =
          Product(GemmCtx(pool2, Backend::kCpu), {1, s.n_out, s.n_in}, row, w, &bias);
      ASSERT_EQ(0, std::memcmp(alone.data(), all.data() + t * s.n_out, s.n_out * sizeof(float)))
          << "row " << t;
    }
  }
}

// The fused forms keep their contract in this order: MatMulSwiGlu equals MatMul(gate),
// MatMul(up), SwiGlu; a fused input norm equals RmsNorm then MatMul.
TEST(MatMulGemmOrderTest, FusedFormsEqualTheirUnfusedOps) {
  core::Rng rng(23);
  core::ThreadPool pool(2);
  const Context ctx = GemmCtx(pool, Backend::kCpu);
  const int64_t n_tok = 50, n_in = 72, n_ff = 40;
  std::vector<float> x = Random(rng, n_tok * n_in), wg = Random(rng, n_ff * n_in, 0.2);
  std::vector<float> wu = Random(rng, n_ff * n_in, 0.2), nw = Random(rng, n_in);
  core::Tensor tx = View(x, n_tok, n_in), tg = View(wg, n_ff, n_in), tu = View(wu, n_ff, n_in);
  core::Tensor tn(nw.data(), core::DType::kF32, {n_in});

  std::vector<float> normed(n_tok * n_in), gate(n_tok * n_ff), up(n_tok * n_ff);
  core::Tensor t_normed = View(normed, n_tok, n_in);
  core::Tensor t_gate = View(gate, n_tok, n_ff), t_up = View(up, n_tok, n_ff);
  const InputRmsNorm norm{&tn, 1e-5f, &t_normed};
  MatMulSwiGlu(
      ctx, {.x = &tx, .gate = {&tg, nullptr, &t_gate}, .up = {&tu, nullptr, &t_up}, .norm = &norm});

  std::vector<float> normed2(n_tok * n_in), gate2(n_tok * n_ff), up2(n_tok * n_ff);
  core::Tensor t_normed2 = View(normed2, n_tok, n_in);
  core::Tensor t_gate2 = View(gate2, n_tok, n_ff), t_up2 = View(up2, n_tok, n_ff);
  RmsNorm(ctx, {.x = &tx, .w = &tn, .eps = 1e-5f, .y = &t_normed2});
  testing::MatMul1(ctx, t_normed2, tg, nullptr, t_gate2);
  testing::MatMul1(ctx, t_normed2, tu, nullptr, t_up2);
  SwiGlu(ctx, {.gate = &t_gate2, .up = &t_up2, .out = &t_gate2});
  EXPECT_EQ(0, std::memcmp(normed.data(), normed2.data(), normed.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(up.data(), up2.data(), up.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(gate.data(), gate2.data(), gate.size() * sizeof(float)));
}

}  // namespace
}  // namespace arle::kernels
