// Layer backward kernels (RmsNormBackward, ApplyRopeBackward, SwiGluBackward) and training attention
// (CausalAttention + backward): the Highway kernels against the reference on every SIMD target, the
// float64 reference twins against central finite differences, both f32 backends against PyTorch
// float64 autograd goldens (tests/reference/torch_backward_layer.py), and thread-count invariance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arle/kernels/attention.h"
#include "arle/kernels/elementwise.h"
#include "arle/kernels/ref/backward_layer_ref.h"
#include "arle/kernels/rmsnorm.h"
#include "arle/kernels/rope.h"
#include "kernel_test_util.h"

namespace arle::kernels {
namespace {

using testing::Ctx;
using testing::ForEachTarget;
using testing::Gamma;
using testing::kU;
using testing::Rescales;

// An owned f32 tensor.
struct Arr {
  Arr(const std::vector<float>& v, std::initializer_list<int64_t> shape)
      : buf(std::max<size_t>(v.size(), 1) * sizeof(float)), t(buf.AsTensor(core::DType::kF32, shape)) {
    if (!v.empty()) std::memcpy(buf.data(), v.data(), v.size() * sizeof(float));
  }
  float* f() const { return t.data_as<float>(); }
  std::vector<float> vec() const { return std::vector<float>(f(), f() + t.numel()); }
  core::Buffer buf;
  core::Tensor t;
};

std::vector<float> Rand(core::Rng& rng, int64_t n, double scale) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.Normal() * scale);
  return v;
}
std::vector<double> ToF64(const std::vector<float>& v) { return {v.begin(), v.end()}; }
std::vector<float> ToF32(const std::vector<double>& v) { return {v.begin(), v.end()}; }
std::vector<float> JsonF32(const nlohmann::json& j) { return ToF32(j.get<std::vector<double>>()); }

// The parsed golden file, read once and kept for the process (so a range-for over a member of
// it never outlives the object).
const nlohmann::json& Golden(const std::string& name) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    std::ifstream f(std::string(ARLE_TEST_DATA_DIR) + "/goldens/backward_layer/" + name +
                    ".json");
    EXPECT_TRUE(f.good()) << name;
    it = cache.emplace(name, nlohmann::json::parse(f)).first;
  }
  return it->second;
}

// |got[i] - want[i]| <= bound[i] for every i.
void ExpectWithin(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& bound, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(std::fabs(got[i] - want[i]), bound[i]) << what << "[" << i << "] " << got[i] << " vs "
                                                      << want[i];
  }
}
std::vector<double> Scaled(std::vector<double> b, double f) {
  for (double& x : b) x *= f;
  return b;
}

// Central differences of a scalar function of `x` (perturbed in place), one element at a time.
std::vector<double> FiniteDiff(std::vector<double>& x, const std::function<double()>& loss) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i], h = 1e-6 * std::max(1.0, std::fabs(x0));
    x[i] = x0 + h;
    const double up = loss();
    x[i] = x0 - h;
    const double down = loss();
    x[i] = x0;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}
// Finite-difference gradients agree with the analytic float64 ones to ~1e-7 of the largest.
void ExpectNearFd(const std::vector<double>& analytic, const std::vector<double>& fd, const char* what) {
  double scale = 1e-3;
  for (double g : analytic) scale = std::max(scale, std::fabs(g));
  for (size_t i = 0; i < fd.size(); ++i) ASSERT_NEAR(analytic[i], fd[i], 1e-7 * scale) << what << i;
}
double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------------------------------- RMSNorm

template <typename T>
void RefRmsNormBackward(const std::vector<T>& x, const std::vector<T>& w, T eps, const std::vector<T>& dy,
                        std::vector<T>& dx, std::vector<T>& dw) {
  RmsNormBackwardParams<T> p;
  const int64_t n = static_cast<int64_t>(w.size());
  std::vector<T> inv(x.size() / n);
  p = {x.data(), w.data(), dy.data(), dx.data(), dw.data(), inv.data(), false,
       static_cast<int64_t>(inv.size()), n, eps};
  ref::RmsNormInvRows(p, 0, p.n_rows);
  ref::RmsNormBackwardDw(p, 0, n);
  ref::RmsNormBackwardDxRows(p, 0, p.n_rows);
}

// Error model per kernel, with r = 1/rms and S = sum_j |g_j xhat_j|: r carries <= gamma_n / 2 + 3u,
// the sum c <= gamma_n, and the few products and the subtraction a few u, so
// |dx_i - exact| <= (gamma_n + 8u) r (|g_i| + |xhat_i| S / n), and each dw column's row sum
// |dw - exact| <= (gamma_rows + gamma_n + 8u) sum_r |dy xhat|.
void RmsNormBounds(const std::vector<float>& x, const std::vector<float>& w, float eps,
                   const std::vector<float>& dy, std::vector<double>* bdx, std::vector<double>* bdw) {
  const int64_t n = w.size(), rows = x.size() / n;
  bdx->assign(x.size(), 0);
  bdw->assign(n, 1e-30);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0, s = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
    const double inv = 1 / std::sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; ++i) s += std::fabs(double(dy[r * n + i]) * w[i] * x[r * n + i] * inv);
    for (int64_t i = 0; i < n; ++i) {
      const double xhat = std::fabs(x[r * n + i] * inv);
      (*bdx)[r * n + i] = (Gamma(n) + 8 * kU) * inv * (std::fabs(double(dy[r * n + i]) * w[i]) + xhat * s / n) + 1e-30;
      (*bdw)[i] += (Gamma(rows) + Gamma(n) + 8 * kU) * std::fabs(dy[r * n + i] * xhat);
    }
  }
}

struct RmsOut {
  std::vector<float> dx, dw;
};
RmsOut RunRmsNormBackward(const Context& ctx, const std::vector<float>& x, const std::vector<float>& w,
                          float eps, const std::vector<float>& dy, bool in_place = false) {
  const int64_t n = w.size(), rows = x.size() / n;
  Arr xa(x, {rows, n}), wa(w, {n}), dya(dy, {rows, n}), dxa(std::vector<float>(x.size(), 7.0f), {rows, n}),
      dwa(std::vector<float>(n, 0.0f), {n});
  RmsNormBackward(ctx, {.x = &xa.t, .w = &wa.t, .eps = eps, .dy = &dya.t, .dx = in_place ? &dya.t : &dxa.t,
                        .dw = &dwa.t});
  return {in_place ? dya.vec() : dxa.vec(), dwa.vec()};
}

TEST(RmsNormBackwardTest, CpuMatchesReferenceOnEveryTargetAndThreads) {
  core::Rng rng(5);
  core::ThreadPool pools[] = {core::ThreadPool(1), core::ThreadPool(2), core::ThreadPool(3)};
  for (const int64_t n : {1, 5, 64, 67, 1024}) {
    for (const int64_t rows : {1, 7, 33}) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " rows=" << rows);
      const float eps = 1e-6f;
      const auto x = Rand(rng, rows * n, 2.0), w = Rand(rng, n, 1.0), dy = Rand(rng, rows * n, 1.0);
      std::vector<double> bdx, bdw;
      RmsNormBounds(x, w, eps, dy, &bdx, &bdw);
      const RmsOut ref = RunRmsNormBackward(Ctx(pools[1], Backend::kRef), x, w, eps, dy);
      ForEachTarget([&](const char*) {
        const RmsOut cpu = RunRmsNormBackward(Ctx(pools[0]), x, w, eps, dy);
        ExpectWithin(cpu.dx, ToF64(ref.dx), Scaled(bdx, 2), "dx");
        ExpectWithin(cpu.dw, ToF64(ref.dw), Scaled(bdw, 2), "dw");
        for (core::ThreadPool& pool : pools) {
          for (const bool in_place : {false, true}) {
            const RmsOut t = RunRmsNormBackward(Ctx(pool), x, w, eps, dy, in_place);
            ASSERT_EQ(t.dx, cpu.dx) << pool.size() << " threads, in place " << in_place;
            ASSERT_EQ(t.dw, cpu.dw) << pool.size() << " threads";
          }
        }
      });
      for (core::ThreadPool& pool : pools) {
        const RmsOut t = RunRmsNormBackward(Ctx(pool, Backend::kRef), x, w, eps, dy);
        ASSERT_EQ(t.dx, ref.dx);
        ASSERT_EQ(t.dw, ref.dw);
      }
    }
  }
}

// accumulate_dx adds to dx, and dw always adds to what it holds: the same bits as adding after.
TEST(RmsNormBackwardTest, AccumulatesIntoDxAndDw) {
  core::Rng rng(6);
  const int64_t n = 37, rows = 4;
  const auto x = Rand(rng, rows * n, 1.0), w = Rand(rng, n, 1.0), dy = Rand(rng, rows * n, 1.0);
  const auto dx0 = Rand(rng, rows * n, 1.0), dw0 = Rand(rng, n, 1.0);
  core::ThreadPool pool(2);
  for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
    const RmsOut fresh = RunRmsNormBackward(Ctx(pool, backend), x, w, 1e-5f, dy);
    Arr xa(x, {rows, n}), wa(w, {n}), dya(dy, {rows, n}), dxa(dx0, {rows, n}), dwa(dw0, {n});
    RmsNormBackward(Ctx(pool, backend), {.x = &xa.t, .w = &wa.t, .eps = 1e-5f, .dy = &dya.t,
                                         .dx = &dxa.t, .accumulate_dx = true, .dw = &dwa.t});
    for (int64_t i = 0; i < rows * n; ++i) ASSERT_EQ(dxa.f()[i], dx0[i] + fresh.dx[i]) << i;
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dwa.f()[i], dw0[i] + fresh.dw[i]) << i;
  }
}

TEST(RmsNormBackwardTest, ReferenceMatchesFiniteDifferencesInF64) {
  core::Rng rng(7);
  const int64_t rows = 3, n = 9;
  const double eps = 1e-3;
  auto x = ToF64(Rand(rng, rows * n, 1.0)), w = ToF64(Rand(rng, n, 1.0));
  const auto u = ToF64(Rand(rng, rows * n, 1.0));
  auto loss = [&] {
    double l = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) ss += x[r * n + i] * x[r * n + i];
      const double inv = 1 / std::sqrt(ss / n + eps);
      for (int64_t i = 0; i < n; ++i) l += u[r * n + i] * (x[r * n + i] * inv * w[i]);
    }
    return l;
  };
  std::vector<double> dx(x.size()), dw(n, 0.0);
  RefRmsNormBackward(x, w, eps, u, dx, dw);
  ExpectNearFd(dx, FiniteDiff(x, loss), "dx");
  ExpectNearFd(dw, FiniteDiff(w, loss), "dw");
}

TEST(RmsNormBackwardTest, BothBackendsMatchTorchGoldens) {
  core::ThreadPool pool(2);
  for (const auto& c : Golden("rmsnorm")["cases"]) {
    const auto x = JsonF32(c["x"]), w = JsonF32(c["w"]), dy = JsonF32(c["dy"]);
    const float eps = c["eps"].get<float>();
    std::vector<double> bdx, bdw;
    RmsNormBounds(x, w, eps, dy, &bdx, &bdw);
    for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
      const RmsOut got = RunRmsNormBackward(Ctx(pool, backend), x, w, eps, dy);
      ExpectWithin(got.dx, c["dx"].get<std::vector<double>>(), bdx, "dx");
      ExpectWithin(got.dw, c["dw"].get<std::vector<double>>(), bdw, "dw");
    }
  }
}

// ------------------------------------------------------------------------------------------- RoPE

std::vector<float> RunRopeBackward(const Context& ctx, const std::vector<float>& dy,
                                   const std::vector<float>& cos, const std::vector<float>& sin,
                                   int64_t n_tok, int64_t n_head, int64_t hd, bool in_place = false) {
  Arr dya(dy, {n_tok, n_head, hd}), dxa(std::vector<float>(dy.size(), 7.0f), {n_tok, n_head, hd});
  Arr ca(cos, {n_tok, hd / 2}), sa(sin, {n_tok, hd / 2});
  ApplyRopeBackward(ctx, {.dy = &dya.t, .cos = &ca.t, .sin = &sa.t, .dx = in_place ? &dya.t : &dxa.t});
  return in_place ? dya.vec() : dxa.vec();
}

// Each output is a*b + c*d with two products and one add: |error| <= 2u (|a b| + |c d|) (first
// order), and the Highway kernel does exactly the reference's operations (same bits).
TEST(RopeBackwardTest, CpuEqualsReferenceOnEveryTargetAndMatchesGoldens) {
  core::ThreadPool pool1(1), pool3(3);
  for (const auto& c : Golden("rope")["cases"]) {
    const int64_t n_tok = c["n_tok"], n_head = c["n_head"], hd = c["head_dim"], half = hd / 2;
    const auto dy = JsonF32(c["dy"]), cos = JsonF32(c["cos"]), sin = JsonF32(c["sin"]);
    std::vector<double> bound(dy.size());
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t h = 0; h < n_head; ++h) {
        for (int64_t i = 0; i < half; ++i) {
          const int64_t a = (t * n_head + h) * hd + i;
          const double m = std::fabs(double(dy[a]) * cos[t * half + i]) +
                           std::fabs(double(dy[a + half]) * sin[t * half + i]);
          const double m2 = std::fabs(double(dy[a + half]) * cos[t * half + i]) +
                            std::fabs(double(dy[a]) * sin[t * half + i]);
          bound[a] = 2 * kU * m + 1e-30;
          bound[a + half] = 2 * kU * m2 + 1e-30;
        }
      }
    }
    const auto ref = RunRopeBackward(Ctx(pool3, Backend::kRef), dy, cos, sin, n_tok, n_head, hd);
    ExpectWithin(ref, c["dx"].get<std::vector<double>>(), bound, "ref dx");
    ForEachTarget([&](const char*) {
      for (core::ThreadPool* pool : {&pool1, &pool3}) {
        for (const bool in_place : {false, true}) {
          ASSERT_EQ(RunRopeBackward(Ctx(*pool), dy, cos, sin, n_tok, n_head, hd, in_place), ref);
        }
      }
    });
  }
}

// The backward is the transpose of ApplyRope: <dy, Rope(x)> = <RopeBackward(dy), x> in f64 (the
// rotation is linear, so its finite differences are its transpose).
TEST(RopeBackwardTest, ReferenceIsTheTransposeOfTheForwardInF64) {
  core::Rng rng(9);
  const int64_t n_tok = 3, n_head = 2, hd = 6, half = hd / 2;
  const auto cos = ToF64(Rand(rng, n_tok * half, 1.0)), sin = ToF64(Rand(rng, n_tok * half, 1.0));
  auto x = ToF64(Rand(rng, n_tok * n_head * hd, 1.0));
  const auto dy = ToF64(Rand(rng, x.size(), 1.0));
  auto loss = [&] {
    double l = 0;
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t h = 0; h < n_head; ++h) {
        const double* v = x.data() + (t * n_head + h) * hd;
        const double* u = dy.data() + (t * n_head + h) * hd;
        for (int64_t i = 0; i < half; ++i) {
          const double c = cos[t * half + i], s = sin[t * half + i];
          l += u[i] * (v[i] * c - v[i + half] * s) + u[i + half] * (v[i + half] * c + v[i] * s);
        }
      }
    }
    return l;
  };
  std::vector<double> dx(x.size());
  ref::RopeBackwardRows<double>({dy.data(), cos.data(), sin.data(), dx.data(), n_head, hd}, 0, n_tok);
  ExpectNearFd(dx, FiniteDiff(x, loss), "dx");
}

// ----------------------------------------------------------------------------------------- SwiGLU

struct SwiOut {
  std::vector<float> dgate, dup;
};
// alias: 0 none, 1 dgate = dswiglu and dup = up, 2 dgate = gate and dup = dswiglu.
SwiOut RunSwiGluBackward(const Context& ctx, const std::vector<float>& g, const std::vector<float>& u,
                         const std::vector<float>& d, int alias = 0) {
  const int64_t n = g.size();
  Arr ga(g, {n}), ua(u, {n}), da(d, {n}), dga(std::vector<float>(n, 7.0f), {n}),
      dua(std::vector<float>(n, 7.0f), {n});
  core::Tensor* dgate = alias == 1 ? &da.t : alias == 2 ? &ga.t : &dga.t;
  core::Tensor* dup = alias == 1 ? &ua.t : alias == 2 ? &da.t : &dua.t;
  SwiGluBackward(ctx, {.gate = &ga.t, .up = &ua.t, .dswiglu = &da.t, .dgate = dgate, .dup = dup});
  return {std::vector<float>(dgate->data_as<float>(), dgate->data_as<float>() + n),
          std::vector<float>(dup->data_as<float>(), dup->data_as<float>() + n)};
}

// Error model per kernel: s = sigmoid(g) from exp (<= 1 ulp) and one add and one division carries
// <= 4u relative; dup = d g s then <= 6u |dup|. In dgate = d u s (1 + g (1 - s)), 1 - s has
// absolute error <= 5u, so |error| <= 8u |dgate| + 6u |d u s g| (first order).
void SwiGluBounds(const std::vector<float>& g, const std::vector<float>& u, const std::vector<float>& d,
                  std::vector<double>* bg, std::vector<double>* bu) {
  for (size_t i = 0; i < g.size(); ++i) {
    const double s = 1 / (1 + std::exp(-double(g[i])));
    const double dus = std::fabs(double(d[i]) * u[i] * s);
    bg->push_back(8 * kU * dus * std::fabs(1 + g[i] * (1 - s)) + 6 * kU * dus * std::fabs(g[i]) + 1e-37);
    bu->push_back(6 * kU * std::fabs(double(d[i]) * g[i] * s) + 1e-37);
  }
}

TEST(SwiGluBackwardTest, CpuMatchesReferenceOnEveryTargetAndGoldens) {
  core::Rng rng(13);
  core::ThreadPool pools[] = {core::ThreadPool(1), core::ThreadPool(2), core::ThreadPool(3)};
  const nlohmann::json c = Golden("swiglu")["cases"][0];
  auto g = JsonF32(c["gate"]), u = JsonF32(c["up"]), d = JsonF32(c["dswiglu"]);
  std::vector<double> bg, bu;
  SwiGluBounds(g, u, d, &bg, &bu);
  for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
    const SwiOut got = RunSwiGluBackward(Ctx(pools[1], backend), g, u, d);
    ExpectWithin(got.dgate, c["dgate"].get<std::vector<double>>(), bg, "dgate");
    ExpectWithin(got.dup, c["dup"].get<std::vector<double>>(), bu, "dup");
  }
  // Random sizes around the vector widths, with large |gate| too.
  for (const int64_t n : {1, 7, 16, 33, 1000, 40000}) {
    g = Rand(rng, n, 4.0), u = Rand(rng, n, 1.0), d = Rand(rng, n, 1.0);
    if (n > 1) g[0] = -200.0f, g[1] = 200.0f;
    bg.clear(), bu.clear();
    SwiGluBounds(g, u, d, &bg, &bu);
    const SwiOut ref = RunSwiGluBackward(Ctx(pools[0], Backend::kRef), g, u, d);
    ForEachTarget([&](const char*) {
      const SwiOut cpu = RunSwiGluBackward(Ctx(pools[0]), g, u, d);
      ExpectWithin(cpu.dgate, ToF64(ref.dgate), Scaled(bg, 2), "dgate");
      ExpectWithin(cpu.dup, ToF64(ref.dup), Scaled(bu, 2), "dup");
      for (core::ThreadPool& pool : pools) {
        for (const int alias : {0, 1, 2}) {
          const SwiOut t = RunSwiGluBackward(Ctx(pool), g, u, d, alias);
          ASSERT_EQ(t.dgate, cpu.dgate) << pool.size() << " threads, alias " << alias;
          ASSERT_EQ(t.dup, cpu.dup) << pool.size() << " threads, alias " << alias;
        }
      }
    });
  }
}

TEST(SwiGluBackwardTest, ReferenceMatchesFiniteDifferencesInF64) {
  core::Rng rng(17);
  const int64_t n = 20;
  auto g = ToF64(Rand(rng, n, 3.0)), u = ToF64(Rand(rng, n, 1.0));
  const auto d = ToF64(Rand(rng, n, 1.0));
  auto loss = [&] {
    double l = 0;
    for (int64_t i = 0; i < n; ++i) l += d[i] * (g[i] / (1 + std::exp(-g[i]))) * u[i];
    return l;
  };
  std::vector<double> dg(n), du(n);
  ref::SwiGluBackwardRange<double>({g.data(), u.data(), d.data(), dg.data(), du.data()}, 0, n);
  ExpectNearFd(dg, FiniteDiff(g, loss), "dgate");
  ExpectNearFd(du, FiniteDiff(u, loss), "dup");
}

// -------------------------------------------------------------------------------------- Attention

struct AttnShape {
  int64_t n_seq, seq_len, n_head, n_head_kv, hd;
  int64_t rows() const { return n_seq * seq_len; }
};
struct AttnIn {
  std::vector<float> q, k, v, dout;
};
struct AttnOut {
  std::vector<float> out, lse, dq, dk, dv;
};

AttnIn RandomAttnIn(core::Rng& rng, const AttnShape& s) {
  return {Rand(rng, s.rows() * s.n_head * s.hd, 1.0), Rand(rng, s.rows() * s.n_head_kv * s.hd, 1.0),
          Rand(rng, s.rows() * s.n_head_kv * s.hd, 1.0), Rand(rng, s.rows() * s.n_head * s.hd, 1.0)};
}

AttnOut RunAttention(const Context& ctx, const AttnShape& s, const AttnIn& in, float scale) {
  const int64_t n = s.rows();
  Arr q(in.q, {n, s.n_head, s.hd}), k(in.k, {n, s.n_head_kv, s.hd}), v(in.v, {n, s.n_head_kv, s.hd});
  Arr dout(in.dout, {n, s.n_head, s.hd});
  Arr out(std::vector<float>(in.q.size(), 7.0f), {n, s.n_head, s.hd});
  Arr lse(std::vector<float>(n * s.n_head, 7.0f), {n, s.n_head});
  Arr dq(std::vector<float>(in.q.size(), 7.0f), {n, s.n_head, s.hd});
  Arr dk(std::vector<float>(in.k.size(), 7.0f), {n, s.n_head_kv, s.hd});
  Arr dv(std::vector<float>(in.v.size(), 7.0f), {n, s.n_head_kv, s.hd});
  CausalAttention(ctx, {.q = &q.t, .k = &k.t, .v = &v.t, .n_seq = s.n_seq, .seq_len = s.seq_len,
                        .scale = scale, .out = &out.t, .lse = &lse.t});
  CausalAttentionBackward(ctx, {.q = &q.t, .k = &k.t, .v = &v.t, .out = &out.t, .lse = &lse.t,
                                .dout = &dout.t, .n_seq = s.n_seq, .seq_len = s.seq_len,
                                .scale = scale, .dq = &dq.t, .dk = &dk.t, .dv = &dv.t});
  return {out.vec(), lse.vec(), dq.vec(), dk.vec(), dv.vec()};
}

// Error bounds of an f32 forward + backward against the exact values (first order), per element.
// Scores carry <= Dq = gamma_hd scale max_j sum |q k_j| each; the softmax weights p_j (forward,
// and recomputed from the saved lse in the backward) then carry a relative error
// E <= 2 Dq + gamma_n + (10 + 2R) u + 2u (|lse| + max |s|) (R: online-softmax rescales), out
// <= (E + gamma_n) sum_j p_j |v_j|. With dp_j = dout.v_j (<= gamma_hd sum|dout v_j|) and
// D = dout.out (<= gamma_hd sum|dout out| + sum|dout| dout_err), ds_j = p_j (dp_j - D) carries
// p_j (E |dp_j - D| + dp_err + D_err + 4u |dp_j - D|); dq, dk and dv are sums of ds k, ds q and
// p dout over at most group * seq_len terms, which add gamma of their length.
struct AttnBounds {
  std::vector<double> out, lse, dq, dk, dv;
};
AttnBounds AttentionBounds(const AttnShape& s, const AttnIn& in, double scale) {
  const int64_t hd = s.hd, group = s.n_head / s.n_head_kv;
  AttnBounds b{std::vector<double>(in.q.size(), 1e-30), std::vector<double>(s.rows() * s.n_head),
               std::vector<double>(in.q.size(), 1e-30), std::vector<double>(in.k.size(), 1e-30),
               std::vector<double>(in.v.size(), 1e-30)};
  const double g_kv = Gamma(group * s.seq_len + 2);
  for (int64_t seq = 0; seq < s.n_seq; ++seq) {
    for (int64_t h = 0; h < s.n_head; ++h) {
      const int64_t kvh = h / group;
      auto kv = [&](int64_t j) { return ((seq * s.seq_len + j) * s.n_head_kv + kvh) * hd; };
      for (int64_t i = 0; i < s.seq_len; ++i) {
        const int64_t qh = (seq * s.seq_len + i) * s.n_head + h, n_seen = i + 1;
        const float* q = in.q.data() + qh * hd;
        const float* dout = in.dout.data() + qh * hd;
        std::vector<double> sc(n_seen), p(n_seen), out(hd, 0.0), wabs(hd, 0.0);
        double mx = -INFINITY, dq_err = 0, max_abs_s = 0, sum = 0;
        for (int64_t j = 0; j < n_seen; ++j) {
          double dot = 0, abs_dot = 0;
          for (int64_t d = 0; d < hd; ++d) {
            dot += double(q[d]) * in.k[kv(j) + d];
            abs_dot += std::fabs(double(q[d]) * in.k[kv(j) + d]);
          }
          sc[j] = dot * scale;
          mx = std::max(mx, sc[j]);
          max_abs_s = std::max(max_abs_s, std::fabs(sc[j]));
          dq_err = std::max(dq_err, Gamma(hd) * scale * abs_dot);
        }
        for (int64_t j = 0; j < n_seen; ++j) sum += std::exp(sc[j] - mx);
        const double lse = mx + std::log(sum);
        b.lse[qh] = dq_err + Gamma(n_seen) + (4 + 2 * Rescales(n_seen)) * kU + 2 * kU * std::fabs(lse);
        const double e = 2 * dq_err + Gamma(n_seen) + (10 + 2 * Rescales(n_seen)) * kU +
                         2 * kU * (std::fabs(lse) + max_abs_s);
        for (int64_t j = 0; j < n_seen; ++j) {
          p[j] = std::exp(sc[j] - lse);
          for (int64_t d = 0; d < hd; ++d) {
            out[d] += p[j] * in.v[kv(j) + d];
            wabs[d] += p[j] * std::fabs(in.v[kv(j) + d]);
          }
        }
        double big_d = 0, d_err = 0;
        for (int64_t d = 0; d < hd; ++d) {
          b.out[qh * hd + d] = (e + Gamma(n_seen)) * wabs[d] + 1e-30;
          big_d += dout[d] * out[d];
          d_err += Gamma(hd) * std::fabs(dout[d] * out[d]) + std::fabs(dout[d]) * b.out[qh * hd + d];
        }
        for (int64_t j = 0; j < n_seen; ++j) {
          double dp = 0, dp_err = 0;
          for (int64_t d = 0; d < hd; ++d) {
            dp += double(dout[d]) * in.v[kv(j) + d];
            dp_err += Gamma(hd) * std::fabs(double(dout[d]) * in.v[kv(j) + d]);
          }
          const double ds = p[j] * (dp - big_d);
          const double ds_err = p[j] * ((e + 4 * kU) * std::fabs(dp - big_d) + dp_err + d_err);
          for (int64_t d = 0; d < hd; ++d) {
            b.dq[qh * hd + d] += scale * (ds_err + Gamma(n_seen + 2) * std::fabs(ds)) * std::fabs(in.k[kv(j) + d]);
            b.dk[kv(j) + d] += scale * (ds_err + g_kv * std::fabs(ds)) * std::fabs(q[d]);
            b.dv[kv(j) + d] += (e + g_kv) * p[j] * std::fabs(dout[d]);
          }
        }
      }
    }
  }
  return b;
}

void ExpectAttnWithin(const AttnOut& got, const AttnOut& want, const AttnBounds& b, double f) {
  ExpectWithin(got.out, ToF64(want.out), Scaled(b.out, f), "out");
  ExpectWithin(got.lse, ToF64(want.lse), Scaled(b.lse, f), "lse");
  ExpectWithin(got.dq, ToF64(want.dq), Scaled(b.dq, f), "dq");
  ExpectWithin(got.dk, ToF64(want.dk), Scaled(b.dk, f), "dk");
  ExpectWithin(got.dv, ToF64(want.dv), Scaled(b.dv, f), "dv");
}

TEST(CausalAttentionTest, BothBackendsMatchTorchGoldens) {
  core::ThreadPool pool(2);
  for (const auto& c : Golden("attention")["cases"]) {
    const AttnShape s{c["n_seq"], c["seq_len"], c["n_head"], c["n_head_kv"], c["head_dim"]};
    SCOPED_TRACE(::testing::Message() << "seq_len " << s.seq_len << " hd " << s.hd);
    const AttnIn in{JsonF32(c["q"]), JsonF32(c["k"]), JsonF32(c["v"]), JsonF32(c["dout"])};
    const float scale = c["scale"].get<float>();
    const AttnBounds b = AttentionBounds(s, in, scale);
    const AttnOut want{JsonF32(c["out"]), JsonF32(c["lse"]), JsonF32(c["dq"]), JsonF32(c["dk"]),
                       JsonF32(c["dv"])};
    // The goldens' f64 values, not their f32 roundings.
    auto check = [&](const AttnOut& got) {
      ExpectWithin(got.out, c["out"].get<std::vector<double>>(), b.out, "out");
      ExpectWithin(got.lse, c["lse"].get<std::vector<double>>(), b.lse, "lse");
      ExpectWithin(got.dq, c["dq"].get<std::vector<double>>(), b.dq, "dq");
      ExpectWithin(got.dk, c["dk"].get<std::vector<double>>(), b.dk, "dk");
      ExpectWithin(got.dv, c["dv"].get<std::vector<double>>(), b.dv, "dv");
    };
    check(RunAttention(Ctx(pool, Backend::kRef), s, in, scale));
    ForEachTarget([&](const char*) { check(RunAttention(Ctx(pool), s, in, scale)); });
  }
}

TEST(CausalAttentionTest, CpuMatchesReferenceOnEveryTargetAndThreadCounts) {
  core::Rng rng(23);
  core::ThreadPool pools[] = {core::ThreadPool(1), core::ThreadPool(2), core::ThreadPool(3)};
  for (const AttnShape& s : {AttnShape{3, 40, 6, 2, 20}, AttnShape{2, 33, 4, 4, 64},
                             AttnShape{1, 17, 3, 1, 5}, AttnShape{5, 1, 2, 1, 8}}) {
    SCOPED_TRACE(::testing::Message() << "seq_len " << s.seq_len << " hd " << s.hd);
    const AttnIn in = RandomAttnIn(rng, s);
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
    const AttnBounds b = AttentionBounds(s, in, scale);
    const AttnOut ref = RunAttention(Ctx(pools[0], Backend::kRef), s, in, scale);
    for (core::ThreadPool& pool : pools) {
      const AttnOut t = RunAttention(Ctx(pool, Backend::kRef), s, in, scale);
      ASSERT_TRUE(t.out == ref.out && t.lse == ref.lse && t.dq == ref.dq && t.dk == ref.dk &&
                  t.dv == ref.dv)
          << "ref, " << pool.size() << " threads";
    }
    ForEachTarget([&](const char*) {
      const AttnOut cpu = RunAttention(Ctx(pools[0]), s, in, scale);
      ExpectAttnWithin(cpu, ref, b, 2);
      for (core::ThreadPool& pool : pools) {
        const AttnOut t = RunAttention(Ctx(pool), s, in, scale);
        ASSERT_TRUE(t.out == cpu.out && t.lse == cpu.lse && t.dq == cpu.dq && t.dk == cpu.dk &&
                    t.dv == cpu.dv)
            << "cpu, " << pool.size() << " threads";
      }
    });
  }
}

// The training forward is the serving forward: bit for bit kernels::Attention of each sequence.
TEST(CausalAttentionTest, CpuForwardEqualsAttentionBitForBit) {
  core::Rng rng(29);
  core::ThreadPool pool(2);
  for (const AttnShape& s : {AttnShape{2, 37, 4, 2, 16}, AttnShape{3, 20, 6, 3, 12}}) {
    const AttnIn in = RandomAttnIn(rng, s);
    const float scale = 0.3f;
    ForEachTarget([&](const char*) {
      const AttnOut got = RunAttention(Ctx(pool), s, in, scale);
      std::vector<int32_t> positions(s.seq_len);
      for (int64_t i = 0; i < s.seq_len; ++i) positions[i] = static_cast<int32_t>(i);
      for (int64_t seq = 0; seq < s.n_seq; ++seq) {
        const int64_t qn = s.seq_len * s.n_head * s.hd, kn = s.seq_len * s.n_head_kv * s.hd;
        Arr q({in.q.begin() + seq * qn, in.q.begin() + (seq + 1) * qn}, {s.seq_len, s.n_head, s.hd});
        Arr k({in.k.begin() + seq * kn, in.k.begin() + (seq + 1) * kn}, {s.seq_len, s.n_head_kv, s.hd});
        Arr v({in.v.begin() + seq * kn, in.v.begin() + (seq + 1) * kn}, {s.seq_len, s.n_head_kv, s.hd});
        Arr out(std::vector<float>(qn), {s.seq_len, s.n_head, s.hd});
        Attention(Ctx(pool), {.q = &q.t, .k = &k.t, .v = &v.t, .positions = positions,
                              .scale = scale, .out = &out.t});
        ASSERT_EQ(0, std::memcmp(out.f(), got.out.data() + seq * qn, qn * sizeof(float))) << seq;
      }
    });
  }
}

TEST(CausalAttentionTest, ReferenceMatchesFiniteDifferencesInF64) {
  core::Rng rng(31);
  const AttnShape s{2, 5, 4, 2, 8};
  const AttnIn in32 = RandomAttnIn(rng, s);
  auto q = ToF64(in32.q), k = ToF64(in32.k), v = ToF64(in32.v);
  const auto dout = ToF64(in32.dout);
  const double scale = 0.4;
  std::vector<double> out(q.size()), lse(s.rows() * s.n_head);
  CausalAttentionParams<double> p;
  p.n_seq = s.n_seq, p.seq_len = s.seq_len, p.n_head = s.n_head, p.n_head_kv = s.n_head_kv;
  p.head_dim = s.hd, p.scale = scale, p.out = out.data(), p.lse = lse.data();
  auto loss = [&] {
    p.q = q.data(), p.k = k.data(), p.v = v.data();
    ref::CausalAttentionUnits(p, 0, s.n_seq * s.n_head);
    return Dot(out, dout);
  };
  loss();
  std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
  p.dout = dout.data(), p.dq = dq.data(), p.dk = dk.data(), p.dv = dv.data();
  ref::CausalAttentionBackwardUnits(p, 0, s.n_seq * s.n_head_kv);
  ExpectNearFd(dq, FiniteDiff(q, loss), "dq");
  ExpectNearFd(dk, FiniteDiff(k, loss), "dk");
  ExpectNearFd(dv, FiniteDiff(v, loss), "dv");
}

}  // namespace
}  // namespace arle::kernels
