// The linear backward kernels (MatMulBackwardInput/Weight, EmbeddingBackward, CrossEntropy):
// Highway vs the scalar reference on every SIMD target, float64 finite differences of the
// reference twins, bit-identical results for pools of 1, 2 and 3 threads, and PyTorch goldens
// (tests/reference/torch_backward_linear.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arle/kernels/cross_entropy.h"
#include "arle/kernels/embedding.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/ref/backward_linear_ref.h"
#include "kernel_test_util.h"

namespace arle::kernels {
namespace {

using testing::Ctx;
using testing::ForEachTarget;
using testing::Gamma;
using testing::kU;

std::vector<float> Random(core::Rng& rng, int64_t n, double scale = 1.0) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.Normal() * scale);
  return v;
}

core::Tensor View(std::vector<float>& v, int64_t rows, int64_t cols) {
  return core::Tensor(v.data(), core::DType::kF32, {rows, cols});
}

// ---- MatMul backward ----

struct Linear {
  int64_t n_tok, n_out, n_in;
};

// The exact (double) value of one c element of c (+)= A * b and the bound of one f32 evaluation
// of it: one chain of k multiply-adds from c_old is within gamma_{k+1} * (|c_old| + sum |a b|)
// of the exact value (Higham, eq. 3.5), fused or not.
struct Exact {
  double value, bound;
};
Exact ExactDot(const float* a, int64_t a_step, const float* b, int64_t b_step, int64_t k,
               double c_old) {
  double v = c_old, abs_sum = std::fabs(c_old);
  for (int64_t j = 0; j < k; ++j) {
    const double p = static_cast<double>(a[j * a_step]) * b[j * b_step];
    v += p;
    abs_sum += std::fabs(p);
  }
  return {v, Gamma(k + 1) * abs_sum};
}

// Runs both matmul backwards on `backend` from the given initial gradients.
struct LinearGrads {
  std::vector<float> dx, dw, db;
};
LinearGrads RunLinear(core::ThreadPool& pool, Backend backend, const Linear& s,
                      std::vector<float>& x, std::vector<float>& w, std::vector<float>& dy,
                      const LinearGrads& init, bool accumulate) {
  LinearGrads g = init;
  core::Tensor tx = View(x, s.n_tok, s.n_in), tw = View(w, s.n_out, s.n_in);
  core::Tensor tdy = View(dy, s.n_tok, s.n_out);
  core::Tensor tdx = View(g.dx, s.n_tok, s.n_in), tdw = View(g.dw, s.n_out, s.n_in);
  core::Tensor tdb(g.db.data(), core::DType::kF32, {s.n_out});
  MatMulBackwardInput(Ctx(pool, backend),
                      {.dy = &tdy, .w = &tw, .dx = &tdx, .accumulate = accumulate});
  MatMulBackwardWeight(Ctx(pool, backend),
                       {.dy = &tdy, .x = &tx, .dw = &tdw, .dbias = &tdb, .accumulate = accumulate});
  return g;
}

// Shapes around the SIMD widths (4, 8, 16 lanes; tiles of 6 rows x 2-4 vectors), past one k slice
// (128 to 1024 on the targets here), past one 192-column block and one 384-row block.
const Linear kShapes[] = {{1, 1, 1},    {7, 13, 19},   {5, 17, 33},    {13, 40, 70}, {20, 9, 130},
                          {97, 31, 45}, {9, 1100, 37}, {1100, 11, 23}, {6, 16, 64},  {40, 50, 500}};

TEST(MatMulBackwardTest, CpuMatchesReferenceOnEveryTarget) {
  core::ThreadPool pool(2);
  core::Rng rng(11);
  ForEachTarget([&](const char*) {
    for (const Linear& s : kShapes) {
      for (const bool accumulate : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "n_tok=" << s.n_tok << " n_out=" << s.n_out
                                          << " n_in=" << s.n_in << " acc=" << accumulate);
        std::vector<float> x = Random(rng, s.n_tok * s.n_in), w = Random(rng, s.n_out * s.n_in);
        std::vector<float> dy = Random(rng, s.n_tok * s.n_out);
        // Without accumulation the outputs' old contents must not matter: NaN would show.
        const float fill = accumulate ? 0.0f : NAN;
        LinearGrads init{std::vector<float>(s.n_tok * s.n_in, fill),
                         std::vector<float>(s.n_out * s.n_in, fill),
                         std::vector<float>(s.n_out, fill)};
        if (accumulate) {
          init.dx = Random(rng, s.n_tok * s.n_in);
          init.dw = Random(rng, s.n_out * s.n_in);
          init.db = Random(rng, s.n_out);
        }
        const LinearGrads r = RunLinear(pool, Backend::kRef, s, x, w, dy, init, accumulate);
        const LinearGrads c = RunLinear(pool, Backend::kCpu, s, x, w, dy, init, accumulate);
        for (int64_t t = 0; t < s.n_tok; ++t) {
          for (int64_t i = 0; i < s.n_in; ++i) {
            const int64_t at = t * s.n_in + i;
            const Exact e = ExactDot(&dy[t * s.n_out], 1, &w[i], s.n_in, s.n_out,
                                     accumulate ? init.dx[at] : 0.0);
            ASSERT_LE(std::fabs(r.dx[at] - e.value), e.bound) << "dx t=" << t << " i=" << i;
            ASSERT_LE(std::fabs(c.dx[at] - r.dx[at]), 2 * e.bound) << "dx t=" << t << " i=" << i;
          }
        }
        for (int64_t o = 0; o < s.n_out; ++o) {
          for (int64_t i = 0; i < s.n_in; ++i) {
            const int64_t at = o * s.n_in + i;
            const Exact e =
                ExactDot(&dy[o], s.n_out, &x[i], s.n_in, s.n_tok, accumulate ? init.dw[at] : 0.0);
            ASSERT_LE(std::fabs(r.dw[at] - e.value), e.bound) << "dw o=" << o << " i=" << i;
            ASSERT_LE(std::fabs(c.dw[at] - r.dw[at]), 2 * e.bound) << "dw o=" << o << " i=" << i;
          }
        }
        // The bias sums are plain additions in token order on both backends: the same bits.
        ASSERT_EQ(0, std::memcmp(r.db.data(), c.db.data(), r.db.size() * 4));
        const std::vector<float> ones(s.n_tok, 1.0f);
        for (int64_t o = 0; o < s.n_out; ++o) {
          const Exact e =
              ExactDot(&dy[o], s.n_out, ones.data(), 1, s.n_tok, accumulate ? init.db[o] : 0.0);
          ASSERT_LE(std::fabs(r.db[o] - e.value), e.bound) << "dbias o=" << o;
        }
      }
    }
  });
}

// Every pool size (and so every row blocking) gives the same bits, and a row of dx computed from
// its dy row alone equals the batched one.
TEST(MatMulBackwardTest, BitIdenticalForEveryPoolSizeAndBatch) {
  const Linear s{150, 70, 45};
  core::Rng rng(5);
  std::vector<float> x = Random(rng, s.n_tok * s.n_in), w = Random(rng, s.n_out * s.n_in);
  std::vector<float> dy = Random(rng, s.n_tok * s.n_out);
  const LinearGrads init{Random(rng, s.n_tok * s.n_in), Random(rng, s.n_out * s.n_in),
                         Random(rng, s.n_out)};
  for (const Backend backend : {Backend::kCpu, Backend::kRef}) {
    ForEachTarget([&](const char*) {
      for (const bool accumulate : {false, true}) {
        LinearGrads first;
        for (const int threads : {1, 2, 3}) {
          SCOPED_TRACE(::testing::Message() << BackendName(backend) << " threads=" << threads);
          core::ThreadPool pool(threads);
          const LinearGrads g = RunLinear(pool, backend, s, x, w, dy, init, accumulate);
          if (threads == 1) {
            first = g;
            continue;
          }
          ASSERT_EQ(0, std::memcmp(first.dx.data(), g.dx.data(), g.dx.size() * 4));
          ASSERT_EQ(0, std::memcmp(first.dw.data(), g.dw.data(), g.dw.size() * 4));
          ASSERT_EQ(0, std::memcmp(first.db.data(), g.db.data(), g.db.size() * 4));
        }
        core::ThreadPool pool(2);
        for (const int64_t t : {int64_t{0}, int64_t{77}, s.n_tok - 1}) {
          std::vector<float> dx1(init.dx.begin() + t * s.n_in, init.dx.begin() + (t + 1) * s.n_in);
          core::Tensor tdy = View(dy, s.n_tok, s.n_out).Slice(t, t + 1);
          core::Tensor tw = View(w, s.n_out, s.n_in), tdx = View(dx1, 1, s.n_in);
          MatMulBackwardInput(Ctx(pool, backend),
                              {.dy = &tdy, .w = &tw, .dx = &tdx, .accumulate = accumulate});
          ASSERT_EQ(0, std::memcmp(dx1.data(), first.dx.data() + t * s.n_in, s.n_in * 4))
              << "row " << t;
        }
      }
    });
  }
}

// Central differences of the float64 forward f = sum(g * (x w^T + b)) against the float64
// reference GEMMs. f is linear in each input, so the differences are exact up to rounding.
TEST(MatMulBackwardTest, ReferenceMatchesFiniteDifferencesInFloat64) {
  const int64_t n_tok = 5, n_out = 7, n_in = 9;
  core::Rng rng(3);
  auto random = [&](int64_t n) {
    std::vector<double> v(n);
    for (double& d : v) d = rng.Normal();
    return v;
  };
  std::vector<double> x = random(n_tok * n_in), w = random(n_out * n_in), b = random(n_out);
  const std::vector<double> g = random(n_tok * n_out);
  auto forward = [&] {
    double f = 0;
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t o = 0; o < n_out; ++o) {
        double y = b[o];
        for (int64_t i = 0; i < n_in; ++i) y += x[t * n_in + i] * w[o * n_in + i];
        f += g[t * n_out + o] * y;
      }
    }
    return f;
  };
  auto fd = [&](double& v) {
    const double h = 1e-3, v0 = v;
    v = v0 + h;
    const double up = forward();
    v = v0 - h;
    const double down = forward();
    v = v0;
    return (up - down) / (2 * h);
  };
  std::vector<double> dx(n_tok * n_in), dw(n_out * n_in), db(n_out);
  ref::GemmBlock<double>({.a = g.data(),
                          .a_row = n_out,
                          .a_col = 1,
                          .b = w.data(),
                          .b_row = n_in,
                          .b_col = 1,
                          .c = dx.data(),
                          .m = n_tok,
                          .n = n_in,
                          .k = n_out},
                         0, n_tok, 0, n_in);
  ref::GemmBlock<double>({.a = g.data(),
                          .a_row = 1,
                          .a_col = n_out,
                          .b = x.data(),
                          .b_row = n_in,
                          .b_col = 1,
                          .c = dw.data(),
                          .m = n_out,
                          .n = n_in,
                          .k = n_tok},
                         0, n_out, 0, n_in);
  ref::ColumnSums<double>(g.data(), n_out, n_tok, false, db.data(), 0, n_out);
  for (size_t j = 0; j < x.size(); ++j) EXPECT_NEAR(dx[j], fd(x[j]), 1e-9) << "dx " << j;
  for (size_t j = 0; j < w.size(); ++j) EXPECT_NEAR(dw[j], fd(w[j]), 1e-9) << "dw " << j;
  for (size_t j = 0; j < b.size(); ++j) EXPECT_NEAR(db[j], fd(b[j]), 1e-9) << "db " << j;
}

// ---- EmbeddingBackward ----

std::vector<float> RunEmbedding(core::ThreadPool& pool, Backend backend, std::vector<float> dtable,
                                std::vector<float>& dout, const std::vector<int32_t>& ids,
                                int64_t n_embd) {
  core::Tensor tdout = View(dout, static_cast<int64_t>(ids.size()), n_embd);
  core::Tensor tdt = View(dtable, static_cast<int64_t>(dtable.size()) / n_embd, n_embd);
  EmbeddingBackward(Ctx(pool, backend), {.dout = &tdout, .ids = ids, .dtable = &tdt});
  return dtable;
}

// Both backends add in token order: the same bits as a plain loop, for every target and pool
// size (600 tokens x 200 columns is enough work for three workers).
TEST(EmbeddingBackwardTest, PlainAdditionsInTokenOrderOnEveryBackendTargetAndPool) {
  const int64_t n_vocab = 13, n_embd = 200, n_tok = 600;
  core::Rng rng(9);
  std::vector<int32_t> ids(n_tok);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.NextU64() % (n_vocab - 2));  // 2 unused
  std::vector<float> dout = Random(rng, n_tok * n_embd);
  const std::vector<float> init = Random(rng, n_vocab * n_embd);
  std::vector<float> expect = init;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t j = 0; j < n_embd; ++j) expect[ids[t] * n_embd + j] += dout[t * n_embd + j];
  }
  for (const Backend backend : {Backend::kCpu, Backend::kRef}) {
    ForEachTarget([&](const char*) {
      for (const int threads : {1, 2, 3}) {
        SCOPED_TRACE(::testing::Message() << BackendName(backend) << " threads=" << threads);
        core::ThreadPool pool(threads);
        const std::vector<float> got = RunEmbedding(pool, backend, init, dout, ids, n_embd);
        ASSERT_EQ(0, std::memcmp(expect.data(), got.data(), got.size() * 4));
      }
    });
  }
  // Odd widths (vector tails).
  core::ThreadPool pool(2);
  for (const int64_t e : {1, 7, 19, 67}) {
    std::vector<float> d = Random(rng, n_tok * e);
    const std::vector<float> t0 = Random(rng, n_vocab * e);
    ForEachTarget([&](const char*) {
      EXPECT_EQ(RunEmbedding(pool, Backend::kRef, t0, d, ids, e),
                RunEmbedding(pool, Backend::kCpu, t0, d, ids, e))
          << "n_embd=" << e;
    });
  }
}

// f = sum(dout * table[ids]) in float64: its central differences against the float64 twin.
TEST(EmbeddingBackwardTest, ReferenceMatchesFiniteDifferencesInFloat64) {
  const int64_t n_vocab = 6, n_embd = 5;
  const std::vector<int32_t> ids = {2, 0, 2, 5, 2, 0};
  const int64_t n_tok = static_cast<int64_t>(ids.size());
  core::Rng rng(4);
  std::vector<double> table(n_vocab * n_embd), dout(n_tok * n_embd);
  for (double& v : table) v = rng.Normal();
  for (double& v : dout) v = rng.Normal();
  auto forward = [&] {
    double f = 0;
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t j = 0; j < n_embd; ++j) f += dout[t * n_embd + j] * table[ids[t] * n_embd + j];
    }
    return f;
  };
  std::vector<double> dtable(n_vocab * n_embd, 0.0);
  ref::EmbeddingBackwardColumns<double>({.dout = dout.data(),
                                         .ids = ids.data(),
                                         .dtable = dtable.data(),
                                         .n_tok = n_tok,
                                         .n_embd = n_embd},
                                        0, n_embd);
  for (size_t j = 0; j < table.size(); ++j) {
    const double h = 1e-3, v0 = table[j];
    table[j] = v0 + h;
    const double up = forward();
    table[j] = v0 - h;
    const double down = forward();
    table[j] = v0;
    EXPECT_NEAR(dtable[j], (up - down) / (2 * h), 1e-9) << j;
  }
  // Rows 1, 3 and 4 are named by no id: their gradient stays 0.
  for (const int64_t row : {1, 3, 4}) EXPECT_EQ(dtable[row * n_embd], 0.0);
}

// ---- CrossEntropy ----

// The exact (double) loss and gradient of one row, and the error bounds of one f32 evaluation:
// exp(z_j) of the rounded z_j = x_j - max is within (8u + u |z_j|) relative (Highway's Exp a
// few ulp, std::exp under one), the sum adds gamma_V, the scale and the subtraction at the target
// a few u more; the loss m + log(s) - x_t adds the log's and the additions' roundings.
struct CeRow {
  double loss, loss_bound;
  std::vector<double> grad, grad_bound;
};
CeRow ExactCeRow(const float* x, int64_t n_vocab, int32_t target, double grad_scale) {
  CeRow r{0, 0, std::vector<double>(n_vocab, 0.0), std::vector<double>(n_vocab, 0.0)};
  if (target == kIgnoreIndex) return r;
  double max = x[0];
  for (int64_t j = 0; j < n_vocab; ++j) max = std::max(max, static_cast<double>(x[j]));
  double s = 0, e_rel_max = 0;
  for (int64_t j = 0; j < n_vocab; ++j) {
    s += std::exp(x[j] - max);
    e_rel_max = std::max(e_rel_max, 8 * kU + kU * std::fabs(x[j] - max));
  }
  const double s_rel = Gamma(n_vocab) + e_rel_max;
  r.loss = max + std::log(s) - x[target];
  r.loss_bound = s_rel + 4 * kU * (std::fabs(max) + std::log(s) + std::fabs(x[target]));
  for (int64_t j = 0; j < n_vocab; ++j) {
    const double p = std::exp(x[j] - max) / s;
    const double e_rel = 8 * kU + kU * std::fabs(x[j] - max);
    r.grad[j] = (p - (j == target ? 1.0 : 0.0)) * grad_scale;
    r.grad_bound[j] = grad_scale * (p * (e_rel + s_rel + 3 * kU) + (j == target ? kU * 2 : 0.0));
  }
  return r;
}

struct CeResult {
  std::vector<float> dlogits, losses;
};
CeResult RunCe(core::ThreadPool& pool, Backend backend, std::vector<float> logits,
               const std::vector<int32_t>& targets, int64_t n_vocab, float grad_scale) {
  CeResult r{std::move(logits), std::vector<float>(targets.size(), NAN)};
  core::Tensor t = View(r.dlogits, static_cast<int64_t>(targets.size()), n_vocab);
  CrossEntropy(Ctx(pool, backend),
               {.logits = &t, .targets = targets, .grad_scale = grad_scale, .losses = r.losses});
  return r;
}

void ExpectCeWithinBounds(const CeResult& got, const std::vector<float>& logits,
                          const std::vector<int32_t>& targets, int64_t n_vocab, double grad_scale) {
  for (size_t row = 0; row < targets.size(); ++row) {
    const CeRow e = ExactCeRow(&logits[row * n_vocab], n_vocab, targets[row], grad_scale);
    ASSERT_LE(std::fabs(got.losses[row] - e.loss), e.loss_bound) << "loss row " << row;
    for (int64_t j = 0; j < n_vocab; ++j) {
      ASSERT_LE(std::fabs(got.dlogits[row * n_vocab + j] - e.grad[j]), e.grad_bound[j])
          << "row " << row << " j " << j;
    }
  }
}

// Rows: a target at 0, an ignored row, a row shifted by +80 (exp would overflow without the
// max), a target at the last index.
TEST(CrossEntropyTest, BothBackendsWithinBoundsOfExactOnEveryTarget) {
  core::ThreadPool pool(2);
  core::Rng rng(21);
  for (const int64_t n_vocab : {1, 5, 16, 37, 1000, 32003}) {
    SCOPED_TRACE(::testing::Message() << "n_vocab=" << n_vocab);
    std::vector<float> logits = Random(rng, 4 * n_vocab, 3.0);
    for (int64_t j = 0; j < n_vocab; ++j) logits[2 * n_vocab + j] += 80.0f;
    const std::vector<int32_t> targets = {0, kIgnoreIndex, static_cast<int32_t>(n_vocab / 2),
                                          static_cast<int32_t>(n_vocab - 1)};
    ForEachTarget([&](const char*) {
      for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
        SCOPED_TRACE(BackendName(backend));
        const CeResult got = RunCe(pool, backend, logits, targets, n_vocab, 0.37f);
        ExpectCeWithinBounds(got, logits, targets, n_vocab, 0.37f);
        // The ignored row: exactly zero loss and gradient.
        EXPECT_EQ(got.losses[1], 0.0f);
        for (int64_t j = 0; j < n_vocab; ++j) ASSERT_EQ(got.dlogits[n_vocab + j], 0.0f);
      }
    });
  }
}

// Policy-gradient rows (GRPO): per-row gradient scales (negative and zero included) and a
// temperature. The kernel divides each row by T (one correctly rounded division) and scales row
// r's gradient by g = grad_scale * row_scales[r] / T in f32: the exact loss and gradient of the
// divided rows with that same g must hold within the bounds above.
TEST(CrossEntropyTest, RowScalesAndTemperatureWithinBoundsOfExact) {
  core::ThreadPool pool(2);
  core::Rng rng(33);
  const float temperature = 0.7f, grad_scale = 0.37f;
  const std::vector<float> row_scales = {0.5f, -2.0f, 0.0f, 1.25f};
  for (const int64_t n_vocab : {5, 37, 1000}) {
    SCOPED_TRACE(::testing::Message() << "n_vocab=" << n_vocab);
    const std::vector<float> logits = Random(rng, 4 * n_vocab, 3.0);
    const std::vector<int32_t> targets = {0, 1, static_cast<int32_t>(n_vocab / 2),
                                          static_cast<int32_t>(n_vocab - 1)};
    std::vector<float> divided = logits;
    for (float& x : divided) x /= temperature;
    ForEachTarget([&](const char*) {
      for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
        SCOPED_TRACE(BackendName(backend));
        CeResult got{logits, std::vector<float>(4, NAN)};
        core::Tensor t = View(got.dlogits, 4, n_vocab);
        CrossEntropy(Ctx(pool, backend), {.logits = &t,
                                          .targets = targets,
                                          .grad_scale = grad_scale,
                                          .losses = got.losses,
                                          .row_scales = row_scales,
                                          .temperature = temperature});
        for (int64_t row = 0; row < 4; ++row) {
          const float g = grad_scale * row_scales[row] / temperature;
          const CeRow e = ExactCeRow(&divided[row * n_vocab], n_vocab, targets[row], g);
          ASSERT_LE(std::fabs(got.losses[row] - e.loss), e.loss_bound) << "loss row " << row;
          for (int64_t j = 0; j < n_vocab; ++j) {
            ASSERT_LE(std::fabs(got.dlogits[row * n_vocab + j] - e.grad[j]),
                      std::fabs(e.grad_bound[j]))
                << "row " << row << " j " << j;
          }
        }
      }
    });
  }
}

TEST(CrossEntropyTest, BitIdenticalForEveryPoolSize) {
  const int64_t n_rows = 40, n_vocab = 1000;
  core::Rng rng(8);
  const std::vector<float> logits = Random(rng, n_rows * n_vocab, 2.0);
  std::vector<int32_t> targets(n_rows);
  for (int32_t& t : targets) t = static_cast<int32_t>(rng.NextU64() % n_vocab);
  targets[7] = kIgnoreIndex;
  for (const Backend backend : {Backend::kCpu, Backend::kRef}) {
    ForEachTarget([&](const char*) {
      CeResult first;
      for (const int threads : {1, 2, 3}) {
        SCOPED_TRACE(::testing::Message() << BackendName(backend) << " threads=" << threads);
        core::ThreadPool pool(threads);
        CeResult got = RunCe(pool, backend, logits, targets, n_vocab, 1.0f / 39);
        if (threads == 1) {
          first = std::move(got);
          continue;
        }
        ASSERT_EQ(0, std::memcmp(first.dlogits.data(), got.dlogits.data(), logits.size() * 4));
        ASSERT_EQ(0, std::memcmp(first.losses.data(), got.losses.data(), n_rows * 4));
      }
    });
  }
}

// f = grad_scale * sum(losses), both from the float64 twin: its central differences against the
// gradient the same call writes.
TEST(CrossEntropyTest, ReferenceMatchesFiniteDifferencesInFloat64) {
  const int64_t n_rows = 4, n_vocab = 9;
  const double grad_scale = 0.3;
  const std::vector<int32_t> targets = {3, kIgnoreIndex, 0, 8};
  core::Rng rng(6);
  std::vector<double> logits(n_rows * n_vocab);
  for (double& v : logits) v = 2 * rng.Normal();
  auto run = [&](std::vector<double> l, std::vector<double>* grad) {
    std::vector<double> losses(n_rows);
    ref::CrossEntropyRows<double>({.logits = l.data(),
                                   .targets = targets.data(),
                                   .losses = losses.data(),
                                   .n_rows = n_rows,
                                   .n_vocab = n_vocab,
                                   .grad_scale = grad_scale},
                                  0, n_rows);
    if (grad != nullptr) *grad = l;
    double f = 0;
    for (const double v : losses) f += v;
    return grad_scale * f;
  };
  std::vector<double> grad;
  run(logits, &grad);
  for (size_t j = 0; j < logits.size(); ++j) {
    const double h = 1e-5, v0 = logits[j];
    logits[j] = v0 + h;
    const double up = run(logits, nullptr);
    logits[j] = v0 - h;
    const double down = run(logits, nullptr);
    logits[j] = v0;
    EXPECT_NEAR(grad[j], (up - down) / (2 * h), 1e-9) << j;
  }
}

// ---- PyTorch goldens ----

nlohmann::json ReadGolden(const std::string& name) {
  std::ifstream f(std::string(ARLE_TEST_DATA_DIR) + "/goldens/backward_linear/" + name);
  EXPECT_TRUE(f.good()) << name;
  return nlohmann::json::parse(f);
}

TEST(BackwardLinearGoldenTest, MatMulMatchesPyTorch) {
  const nlohmann::json g = ReadGolden("matmul.json");
  const Linear s{g["n_tok"], g["n_out"], g["n_in"]};
  std::vector<float> x = g["x"], w = g["w"], dy = g["dy"];
  const std::vector<double> dx = g["dx"], dw = g["dw"], db = g["dbias"];
  ASSERT_EQ(dx.size(), static_cast<size_t>(s.n_tok * s.n_in));
  const std::vector<float> ones(s.n_tok, 1.0f);
  core::ThreadPool pool(2);
  for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
    SCOPED_TRACE(BackendName(backend));
    const LinearGrads init{std::vector<float>(dx.size(), 0.0f), std::vector<float>(dw.size(), 0.0f),
                           std::vector<float>(db.size(), 0.0f)};
    const LinearGrads got = RunLinear(pool, backend, s, x, w, dy, init, false);
    for (int64_t t = 0; t < s.n_tok; ++t) {
      for (int64_t i = 0; i < s.n_in; ++i) {
        const Exact e = ExactDot(&dy[t * s.n_out], 1, &w[i], s.n_in, s.n_out, 0);
        ASSERT_LE(std::fabs(got.dx[t * s.n_in + i] - dx[t * s.n_in + i]), e.bound);
      }
    }
    for (int64_t o = 0; o < s.n_out; ++o) {
      for (int64_t i = 0; i < s.n_in; ++i) {
        const Exact e = ExactDot(&dy[o], s.n_out, &x[i], s.n_in, s.n_tok, 0);
        ASSERT_LE(std::fabs(got.dw[o * s.n_in + i] - dw[o * s.n_in + i]), e.bound);
      }
      const Exact e = ExactDot(&dy[o], s.n_out, ones.data(), 1, s.n_tok, 0);
      ASSERT_LE(std::fabs(got.db[o] - db[o]), e.bound);
    }
  }
}

TEST(BackwardLinearGoldenTest, EmbeddingMatchesPyTorch) {
  const nlohmann::json g = ReadGolden("embedding.json");
  const int64_t n_vocab = g["n_vocab"], n_embd = g["n_embd"];
  const std::vector<int32_t> ids = g["ids"];
  std::vector<float> dout = g["dout"];
  const std::vector<double> expect = g["dtable"];
  core::ThreadPool pool(2);
  for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
    const std::vector<float> got =
        RunEmbedding(pool, backend, std::vector<float>(n_vocab * n_embd, 0.0f), dout, ids, n_embd);
    for (int64_t v = 0; v < n_vocab; ++v) {
      for (int64_t j = 0; j < n_embd; ++j) {
        double abs_sum = 0;
        int64_t n = 0;
        for (size_t t = 0; t < ids.size(); ++t) {
          if (ids[t] == v) abs_sum += std::fabs(dout[t * n_embd + j]), ++n;
        }
        ASSERT_LE(std::fabs(got[v * n_embd + j] - expect[v * n_embd + j]), Gamma(n) * abs_sum)
            << BackendName(backend) << " v=" << v << " j=" << j;
      }
    }
  }
}

TEST(BackwardLinearGoldenTest, CrossEntropyMatchesPyTorch) {
  const nlohmann::json g = ReadGolden("cross_entropy.json");
  const int64_t n_rows = g["n_rows"], n_vocab = g["n_vocab"];
  const std::vector<int32_t> targets = g["targets"];
  const std::vector<float> logits = g["logits"];
  const std::vector<double> losses = g["losses"], dlogits = g["dlogits"];
  const double grad_scale = g["grad_scale"];
  ASSERT_EQ(targets[2], kIgnoreIndex);
  core::ThreadPool pool(2);
  for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
    SCOPED_TRACE(BackendName(backend));
    const CeResult got =
        RunCe(pool, backend, logits, targets, n_vocab, static_cast<float>(grad_scale));
    for (int64_t r = 0; r < n_rows; ++r) {
      const CeRow e = ExactCeRow(&logits[r * n_vocab], n_vocab, targets[r], grad_scale);
      ASSERT_LE(std::fabs(got.losses[r] - losses[r]), e.loss_bound) << "row " << r;
      for (int64_t j = 0; j < n_vocab; ++j) {
        ASSERT_LE(std::fabs(got.dlogits[r * n_vocab + j] - dlogits[r * n_vocab + j]),
                  e.grad_bound[j])
            << "row " << r << " j " << j;
      }
    }
  }
}

}  // namespace
}  // namespace arle::kernels
