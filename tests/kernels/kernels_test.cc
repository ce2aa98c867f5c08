// RMSNorm, attention, RoPE, SwiGLU, embedding, add and argmax: the Highway kernels against the
// scalar reference on every SIMD target, and the reference against double-precision formulas.
#include <cmath>
#include <cstdio>
#include <string>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "arle/kernels/attention.h"
#include "arle/kernels/bandwidth.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/elementwise.h"
#include "arle/kernels/embedding.h"
#include "arle/kernels/rmsnorm.h"
#include "arle/kernels/rope.h"
#include "kernel_test_util.h"

namespace arle::kernels {
namespace {

using testing::Ctx;
using testing::ForEachTarget;
using testing::Gamma;
using testing::kU;
using testing::MatMul1;
using testing::RandomBuffer;
using testing::Rescales;
using testing::SerialCtx;
using testing::Tmp;

// y = x * inv * w with inv = 1/sqrt(sum x^2 / n + eps). The sum of squares carries a relative
// error <= gamma_n per kernel; the division, sqrt, reciprocal and the two products add a few u.
// So |y - y_exact| <= (gamma_n / 2 + 6u) |y| per kernel and |cpu - ref| <= (gamma_n + 12u) |y|.
TEST(RmsNormTest, CpuMatchesReferenceOnEveryTarget) {
  core::ThreadPool pool(2);
  core::Rng rng(3);
  for (const core::DType w_dtype : {core::DType::kF32, core::DType::kF16, core::DType::kBF16}) {
    for (const int64_t n : {1, 5, 8, 64, 67, 1024}) {
      const int64_t rows = 5;
      const float eps = 1e-6f;
      std::vector<float> xf, wf;
      core::Buffer xb = RandomBuffer(rng, core::DType::kF32, rows * n, 2.0, &xf);
      core::Buffer wb = RandomBuffer(rng, w_dtype, n, 1.0, &wf);
      core::Tensor x = xb.AsTensor(core::DType::kF32, {rows, n});
      core::Tensor w = wb.AsTensor(w_dtype, {n});
      core::Buffer rb(rows * n * 4);
      core::Tensor y_ref = rb.AsTensor(core::DType::kF32, {rows, n});
      RmsNorm(Ctx(pool, Backend::kRef), {.x = &x, .w = &w, .eps = eps, .y = &y_ref});
      for (int64_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xf[r * n + i]) * xf[r * n + i];
        const double inv = 1.0 / std::sqrt(ss / n + eps);
        for (int64_t i = 0; i < n; ++i) {
          const double exact = xf[r * n + i] * inv * wf[i];
          ASSERT_LE(std::fabs(y_ref.data_as<float>()[r * n + i] - exact),
                    (Gamma(n) / 2 + 6 * kU) * std::fabs(exact) + 1e-37);
        }
      }
      ForEachTarget([&](const char*) {
        SCOPED_TRACE(::testing::Message() << DTypeName(w_dtype) << " n=" << n);
        core::Buffer cb(rows * n * 4);
        core::Tensor y_cpu = cb.AsTensor(core::DType::kF32, {rows, n});
        RmsNorm(Ctx(pool, Backend::kCpu), {.x = &x, .w = &w, .eps = eps, .y = &y_cpu});
        for (int64_t i = 0; i < rows * n; ++i) {
          const float r = y_ref.data_as<float>()[i];
          ASSERT_LE(std::fabs(y_cpu.data_as<float>()[i] - r), (Gamma(n) + 12 * kU) * std::fabs(r))
              << i;
        }
        // In place gives the same bits.
        core::Buffer ib = xb.Clone();
        core::Tensor xi = ib.AsTensor(core::DType::kF32, {rows, n});
        RmsNorm(Ctx(pool, Backend::kCpu), {.x = &xi, .w = &w, .eps = eps, .y = &xi});
        ASSERT_EQ(0, std::memcmp(xi.data(), y_cpu.data(), rows * n * 4));
      });
    }
  }
}

struct AttnCase {
  int64_t n_tok, n_head, n_head_kv, head_dim, n_ctx;
  std::vector<int32_t> positions;
};

// Double-precision attention for one (t, h): the formula, independent of both kernels.
std::vector<double> ExactAttention(const std::vector<float>& q, const std::vector<float>& k,
                                   const std::vector<float>& v, const AttnCase& c, int64_t t,
                                   int64_t h, float scale, double* weighted_abs_v) {
  const int64_t hd = c.head_dim, kvh = h / (c.n_head / c.n_head_kv);
  const int64_t n_seen = c.positions[t] + 1;
  std::vector<double> s(n_seen);
  double mx = -INFINITY;
  for (int64_t j = 0; j < n_seen; ++j) {
    double dot = 0;
    for (int64_t d = 0; d < hd; ++d)
      dot += static_cast<double>(q[(t * c.n_head + h) * hd + d]) * k[(j * c.n_head_kv + kvh) * hd + d];
    s[j] = dot * scale;
    mx = std::max(mx, s[j]);
  }
  double sum = 0;
  for (auto& e : s) sum += (e = std::exp(e - mx));
  std::vector<double> out(hd, 0.0);
  std::vector<double> abs_out(hd, 0.0);
  for (int64_t j = 0; j < n_seen; ++j) {
    for (int64_t d = 0; d < hd; ++d) {
      const double vv = v[(j * c.n_head_kv + kvh) * hd + d];
      out[d] += s[j] / sum * vv;
      abs_out[d] += s[j] / sum * std::fabs(vv);
    }
  }
  double mx_abs = 0;
  for (double a : abs_out) mx_abs = std::max(mx_abs, a);
  *weighted_abs_v = mx_abs;
  return out;
}

// Error model: each score s_j = scale * q.k carries |ds_j| <= gamma_hd * scale * sum|q_d k_d|
// (<= D, the max over j). Softmax weights then have relative error <= 2D + (n_ctx + 4 + 2 R) u
// (exp, subtraction, sum, division, and the online softmax's R = Rescales(n_ctx) rescales), and
// the weighted sum over n_ctx rows adds gamma_{n_ctx}. So per kernel |out - exact| <=
// (2D + (n_ctx + 4 + 2 R) u + gamma_{n_ctx}) * sum_j p_j |v_j| (first order), and we allow 2x
// that between the kernels.
TEST(AttentionTest, CpuAndReferenceMatchExactOnEveryTarget) {
  core::ThreadPool pool(2);
  core::Rng rng(11);
  const std::vector<AttnCase> cases = {
      {1, 1, 1, 8, 1, {0}},
      {3, 4, 2, 16, 8, {3, 4, 5}},
      {4, 6, 2, 12, 9, {0, 1, 2, 8}},
      {2, 8, 1, 64, 33, {31, 32}},
      {5, 2, 2, 7, 6, {0, 1, 2, 3, 4}},
      // Seven online-softmax steps: the running maximum grows, and is rescaled, several times.
      {2, 4, 2, 32, 100, {70, 99}},
  };
  for (const AttnCase& c : cases) {
    std::vector<float> qf, kf, vf;
    core::Buffer qb = RandomBuffer(rng, core::DType::kF32, c.n_tok * c.n_head * c.head_dim, 1.0, &qf);
    core::Buffer kb = RandomBuffer(rng, core::DType::kF32, c.n_ctx * c.n_head_kv * c.head_dim, 1.0, &kf);
    core::Buffer vb = RandomBuffer(rng, core::DType::kF32, c.n_ctx * c.n_head_kv * c.head_dim, 1.0, &vf);
    core::Tensor q = qb.AsTensor(core::DType::kF32, {c.n_tok, c.n_head, c.head_dim});
    core::Tensor k = kb.AsTensor(core::DType::kF32, {c.n_ctx, c.n_head_kv, c.head_dim});
    core::Tensor v = vb.AsTensor(core::DType::kF32, {c.n_ctx, c.n_head_kv, c.head_dim});
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    const int64_t n_out = c.n_tok * c.n_head * c.head_dim;
    core::Buffer rb(n_out * 4);
    core::Tensor out_ref = rb.AsTensor(core::DType::kF32, {c.n_tok, c.n_head, c.head_dim});
    Attention(
        Ctx(pool, Backend::kRef),
        {.q = &q, .k = &k, .v = &v, .positions = c.positions, .scale = scale, .out = &out_ref});
    std::vector<double> exact(n_out), bound(n_out);
    for (int64_t t = 0; t < c.n_tok; ++t) {
      for (int64_t h = 0; h < c.n_head; ++h) {
        double wabs = 0;
        const auto e = ExactAttention(qf, kf, vf, c, t, h, scale, &wabs);
        const int64_t kvh = h / (c.n_head / c.n_head_kv);
        double dmax = 0;
        for (int64_t j = 0; j <= c.positions[t]; ++j) {
          double a = 0;
          for (int64_t d = 0; d < c.head_dim; ++d)
            a += std::fabs(qf[(t * c.n_head + h) * c.head_dim + d] *
                           static_cast<double>(kf[(j * c.n_head_kv + kvh) * c.head_dim + d]));
          dmax = std::max(dmax, Gamma(c.head_dim) * scale * a);
        }
        const int64_t n_seen = c.positions[t] + 1;
        for (int64_t d = 0; d < c.head_dim; ++d) {
          const int64_t i = (t * c.n_head + h) * c.head_dim + d;
          exact[i] = e[d];
          bound[i] = (2 * dmax + (n_seen + 4 + 2 * Rescales(n_seen)) * kU + Gamma(n_seen)) * wabs + 1e-30;
          ASSERT_LE(std::fabs(out_ref.data_as<float>()[i] - exact[i]), bound[i]) << "ref " << i;
        }
      }
    }
    ForEachTarget([&](const char*) {
      core::Buffer cb(n_out * 4);
      core::Tensor out_cpu = cb.AsTensor(core::DType::kF32, {c.n_tok, c.n_head, c.head_dim});
      Attention(
          Ctx(pool, Backend::kCpu),
          {.q = &q, .k = &k, .v = &v, .positions = c.positions, .scale = scale, .out = &out_cpu});
      for (int64_t i = 0; i < n_out; ++i) {
        ASSERT_LE(std::fabs(out_cpu.data_as<float>()[i] - exact[i]), bound[i]) << "cpu " << i;
        ASSERT_LE(std::fabs(out_cpu.data_as<float>()[i] - out_ref.data_as<float>()[i]), 2 * bound[i]);
      }
      // Batch invariance: each token alone gives the same bits, with 1 thread too.
      core::ThreadPool one(1);
      for (int64_t t = 0; t < c.n_tok; ++t) {
        core::Buffer ob(c.n_head * c.head_dim * 4);
        core::Tensor o1 = ob.AsTensor(core::DType::kF32, {1, c.n_head, c.head_dim});
        Attention(Ctx(one, Backend::kCpu), {.q = Tmp(q.Slice(t, t + 1)),
                                            .k = &k,
                                            .v = &v,
                                            .positions = std::span(c.positions).subspan(t, 1),
                                            .scale = scale,
                                            .out = &o1});
        ASSERT_EQ(0, std::memcmp(o1.data(), out_cpu.data_as<float>() + t * c.n_head * c.head_dim,
                                 c.n_head * c.head_dim * 4));
      }
    });
  }
}

TEST(RopeTest, MatchesDoublePrecisionRotation) {
  core::ThreadPool pool(2);
  core::Rng rng(5);
  const int64_t n_tok = 4, n_head = 3, head_dim = 8;
  const std::vector<int32_t> positions = {0, 1, 7, 1000};
  std::vector<float> inv_freq(head_dim / 2);
  for (int64_t i = 0; i < head_dim / 2; ++i)
    inv_freq[i] = static_cast<float>(1.0 / std::pow(10000.0, 2.0 * i / head_dim));
  core::Buffer cb(n_tok * head_dim / 2 * 4), sb(n_tok * head_dim / 2 * 4);
  core::Tensor cos = cb.AsTensor(core::DType::kF32, {n_tok, head_dim / 2});
  core::Tensor sin = sb.AsTensor(core::DType::kF32, {n_tok, head_dim / 2});
  const float scaling = 1.25f;
  RopeTable(SerialCtx(), {.positions = positions,
                          .inv_freq = inv_freq,
                          .attention_scaling = scaling,
                          .cos = &cos,
                          .sin = &sin});
  std::vector<float> xf;
  core::Buffer xb = RandomBuffer(rng, core::DType::kF32, n_tok * n_head * head_dim, 1.0, &xf);
  core::Tensor x = xb.AsTensor(core::DType::kF32, {n_tok, n_head, head_dim});
  ApplyRope(Ctx(pool), {.x = &x, .cos = &cos, .sin = &sin, .out = &x});
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t h = 0; h < n_head; ++h) {
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<float>(inv_freq[i] * static_cast<float>(positions[t]));
        const double c = std::cos(angle) * scaling, s = std::sin(angle) * scaling;
        const float* in = &xf[(t * n_head + h) * head_dim];
        const float* out = x.data_as<float>() + (t * n_head + h) * head_dim;
        // Table entries carry 2u relative error, the 2-term sums another 2u.
        const double b = 6 * kU * (std::fabs(in[i]) + std::fabs(in[i + half])) * scaling;
        EXPECT_NEAR(out[i], in[i] * c - in[i + half] * s, b);
        EXPECT_NEAR(out[i + half], in[i + half] * c + in[i] * s, b);
      }
    }
  }
}

TEST(ElementwiseTest, SwiGluAddArgMaxEmbedding) {
  core::ThreadPool pool(2);
  core::Rng rng(9);
  const int64_t n = 37;
  std::vector<float> gf, uf;
  core::Buffer gb = RandomBuffer(rng, core::DType::kF32, n, 3.0, &gf);
  core::Buffer ub = RandomBuffer(rng, core::DType::kF32, n, 1.0, &uf);
  core::Tensor g = gb.AsTensor(core::DType::kF32, {n});
  core::Tensor u = ub.AsTensor(core::DType::kF32, {n});
  core::Buffer ob(n * 4);
  core::Tensor o = ob.AsTensor(core::DType::kF32, {n});
  SwiGlu(Ctx(pool), {.gate = &g, .up = &u, .out = &o});
  for (int64_t i = 0; i < n; ++i) {
    const double exact = gf[i] / (1.0 + std::exp(-static_cast<double>(gf[i]))) * uf[i];
    EXPECT_NEAR(o.data_as<float>()[i], exact, 8 * kU * std::fabs(exact) + 1e-30) << i;
  }
  Add(SerialCtx(), {.a = &g, .b = &u, .out = &o});
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(o.data_as<float>()[i], gf[i] + uf[i]);

  EXPECT_EQ(ArgMax(std::vector<float>{1, 3, 2, 3}), 1);
  EXPECT_EQ(ArgMax(std::vector<float>{-5}), 0);
  EXPECT_EQ(ArgMax(std::vector<float>{NAN, -1, 2, NAN}), 2);
  EXPECT_EQ(ArgMax(std::vector<float>{-INFINITY, -INFINITY}), 0);

  for (const core::DType dt : {core::DType::kF32, core::DType::kF16, core::DType::kBF16}) {
    std::vector<float> tf;
    core::Buffer tb = RandomBuffer(rng, dt, 5 * 6, 1.0, &tf);
    core::Tensor table = tb.AsTensor(dt, {5, 6});
    const std::vector<int32_t> ids = {4, 0, 4, 2};
    core::Buffer eb(ids.size() * 6 * 4);
    core::Tensor e = eb.AsTensor(core::DType::kF32, {4, 6});
    Embedding(SerialCtx(), {.table = &table, .ids = ids, .out = &e});
    for (size_t t = 0; t < ids.size(); ++t)
      for (int d = 0; d < 6; ++d) EXPECT_EQ(e.data_as<float>()[t * 6 + d], tf[ids[t] * 6 + d]);
  }
}

}  // namespace
}  // namespace arle::kernels

namespace arle::kernels {
namespace {

// Documents which targets the per-target tests above covered on this machine.
TEST(TargetsTest, AtLeastOneTargetIsTested) {
  std::string names;
  testing::ForEachTarget([&](const char* name) { names += std::string(name) + " "; });
  std::printf("Highway targets tested: %s\n", names.c_str());
  EXPECT_FALSE(names.empty());
}

// Forcing a target really changes the code that runs: lane counts differ between targets, so a
// long dot product rounds differently on at least two of them.
TEST(TargetsTest, ForcingATargetChangesTheKernelThatRuns) {
  if (hwy::SupportedAndGeneratedTargets().size() < 2) GTEST_SKIP() << "one target only";
  core::ThreadPool pool(1);
  core::Rng rng(17);
  const int64_t n_in = 4099;
  core::Buffer xb = RandomBuffer(rng, core::DType::kF32, n_in, 1.0);
  core::Buffer wb = RandomBuffer(rng, core::DType::kF32, n_in, 1.0);
  core::Tensor x = xb.AsTensor(core::DType::kF32, {1, n_in});
  core::Tensor w = wb.AsTensor(core::DType::kF32, {1, n_in});
  std::vector<float> results;
  testing::ForEachTarget([&](const char*) {
    float y = 0;
    core::Tensor yt(&y, core::DType::kF32, {1, 1});
    MatMul1(Ctx(pool, Backend::kCpu), x, w, nullptr, yt);
    results.push_back(y);
  });
  bool differ = false;
  for (float r : results) differ |= r != results[0];
  EXPECT_TRUE(differ);
}

}  // namespace
}  // namespace arle::kernels

namespace arle::kernels {
namespace {

// ReadAll (the bandwidth probe) sums like any f32 reduction: within 2 * gamma_n * sum|x| of a
// scalar ascending sum on every target, for lengths with and without a tail.
TEST(ReadAllTest, CpuMatchesReferenceOnEveryTarget) {
  core::Rng rng(11);
  testing::ForEachTarget([&](const char*) {
    for (const int64_t n : {0, 1, 7, 64, 1000, 4099}) {
      std::vector<float> x(n);
      double abs_sum = 0;
      for (float& v : x) {
        v = static_cast<float>(rng.Normal());
        abs_sum += std::fabs(v);
      }
      float want = 0.0f;
      for (const float v : x) want += v;
      const float got = ReadAll(x.data(), n);
      ASSERT_LE(std::fabs(double{got} - want), 2 * testing::Gamma(n) * abs_sum + 1e-30) << "n " << n;
    }
  });
}

}  // namespace
}  // namespace arle::kernels
