// Integer dot products of GGUF block weights with 8-bit activations (kernels/quant_dot.h):
// - the activation quantization keeps every value within half a step;
// - ref::QuantDotRow equals the exact dot product of the dequantized weights with the dequantized
//   activations, up to f32 rounding (so its integer decomposition, mins and offsets are right);
// - a quantized MatMul stays within the activation rounding of the f32 MatMul over the
//   dequantized weights;
// - the SIMD kernels give the reference's bits on every Highway target, for any number of tokens,
//   on quantized Gaussian rows and on blocks of random bytes (batch invariance follows).
#include "arle/kernels/quant_dot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/half.h"
#include "arle/core/random.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/elementwise.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/quant.h"
#include "arle/kernels/rmsnorm.h"
#include "kernel_test_util.h"

namespace arle::kernels {
namespace {

using testing::Ctx;
using testing::MatMul1;
using testing::SerialCtx;

constexpr core::DType kFormats[] = {core::DType::kQ8_0, core::DType::kQ4_0, core::DType::kQ4_K,
                                    core::DType::kQ5_K, core::DType::kQ6_K};

bool IsK(core::DType d) {
  return d == core::DType::kQ4_K || d == core::DType::kQ5_K || d == core::DType::kQ6_K;
}

// The activations a quantized row stands for, and each value's step d.
void DequantizeActivations(core::DType w_dtype, const void* act, int64_t n, std::vector<float>* x,
                           std::vector<float>* step) {
  x->resize(n);
  step->resize(n);
  const int64_t group = IsK(w_dtype) ? kQK_K : kQK8_0;
  for (int64_t b = 0; b < n / group; ++b) {
    float d;
    const int8_t* q;
    if (IsK(w_dtype)) {
      const auto& blk = static_cast<const ActBlockQ8K*>(act)[b];
      d = blk.d;
      q = blk.q;
      for (int j = 0; j < 16; ++j) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += q[16 * j + l];
        EXPECT_EQ(blk.bsums[j], sum) << "block " << b << " bsum " << j;
      }
    } else {
      const auto& blk = static_cast<const ActBlockQ8*>(act)[b];
      d = blk.d;
      q = blk.q;
    }
    for (int64_t i = 0; i < group; ++i) {
      (*x)[b * group + i] = d * static_cast<float>(q[i]);
      (*step)[b * group + i] = d;
    }
  }
}

std::vector<float> Gaussian(core::Rng& rng, int64_t n, double scale) {
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(rng.Normal() * scale);
  return v;
}

TEST(QuantDotTest, ActivationsStayWithinHalfAStep) {
  core::Rng rng(3);
  for (const core::DType dtype : {core::DType::kQ8_0, core::DType::kQ4_K}) {
    const int64_t n = 512;
    std::vector<float> x = Gaussian(rng, n, 3.0);
    x[5] = 0.0f;
    std::fill(x.begin() + 256, x.begin() + 288, 0.0f);  // an all-zero block: d = 0, q = 0
    std::vector<char> act(ActRowBytes(dtype, n));
    QuantizeActivationRow(dtype, x.data(), n, act.data());
    std::vector<float> xh, step;
    DequantizeActivations(dtype, act.data(), n, &xh, &step);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_LE(std::fabs(x[i] - xh[i]), 0.5f * step[i] * (1 + 1e-5f)) << i;
    }
    if (dtype == core::DType::kQ8_0) {
      EXPECT_EQ(step[256], 0.0f);
    }
  }
}

// ref::QuantDotRow against the dot product in double of the values the blocks stand for.
TEST(QuantDotTest, ReferenceEqualsTheDequantizedDotProduct) {
  core::Rng rng(5);
  const int64_t n = 1024;
  for (const core::DType dtype : kFormats) {
    SCOPED_TRACE(std::string(core::DTypeName(dtype)));
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<float> wf = Gaussian(rng, n, 0.05);
      std::vector<float> x = Gaussian(rng, n, 1.0);
      if (trial % 2 == 1) {  // shifted activations: the K-quant mins and Q6_K offset matter more
        for (float& v : x) v += 0.7f;
      }
      core::Buffer wq(*core::DTypeBytes(dtype, n));
      QuantizeRow(dtype, wf.data(), n, wq.data());
      std::vector<float> wd(n);
      DequantizeRow(dtype, wq.data(), n, wd.data());
      std::vector<char> act(ActRowBytes(dtype, n));
      QuantizeActivationRow(dtype, x.data(), n, act.data());
      std::vector<float> xh, step;
      DequantizeActivations(dtype, act.data(), n, &xh, &step);
      double exact = 0, magnitude = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += static_cast<double>(wd[i]) * xh[i];
        magnitude += std::fabs(static_cast<double>(wd[i]) * xh[i]);
      }
      const float got = ref::QuantDotRow(dtype, wq.data(), act.data(), n);
      // A few roundings per block, each on a term at most a small multiple of the magnitude
      // (the K-quants subtract mins from scaled sums), then one sum over the blocks.
      const int64_t n_blocks = n / (IsK(dtype) ? kQK_K : kQK8_0);
      const double tol = 8 * testing::Gamma(n_blocks + 4) * magnitude;
      ASSERT_NEAR(got, exact, tol) << "trial " << trial;
    }
  }
}

// MatMul over block weights vs MatMul over their dequantized f32 copy: the difference is the
// activation rounding, sum_i |w_i| * d_i / 2, plus f32 rounding.
TEST(QuantDotTest, MatMulStaysWithinTheActivationRounding) {
  core::ThreadPool pool(2);
  core::Rng rng(11);
  const int64_t n_in = 768, n_out = 9, n_tok = 6;
  for (const core::DType dtype : kFormats) {
    SCOPED_TRACE(std::string(core::DTypeName(dtype)));
    const std::vector<float> wf = Gaussian(rng, n_out * n_in, 0.05);
    core::Buffer wq(*core::DTypeBytes(dtype, n_out * n_in)), wd(n_out * n_in * 4);
    QuantizeRow(dtype, wf.data(), n_out * n_in, wq.data());
    DequantizeRow(dtype, wq.data(), n_out * n_in, wd.as<float>());
    core::Buffer xb(n_tok * n_in * 4), yq(n_tok * n_out * 4), yf(n_tok * n_out * 4);
    const std::vector<float> xv = Gaussian(rng, n_tok * n_in, 1.0);
    std::memcpy(xb.data(), xv.data(), xv.size() * 4);
    const core::Tensor x = xb.AsTensor(core::DType::kF32, {n_tok, n_in});
    core::Tensor y_q = yq.AsTensor(core::DType::kF32, {n_tok, n_out});
    core::Tensor y_f = yf.AsTensor(core::DType::kF32, {n_tok, n_out});
    MatMul1(Ctx(pool), x, wq.AsTensor(dtype, {n_out, n_in}), nullptr, y_q);
    MatMul1(Ctx(pool), x, wd.AsTensor(core::DType::kF32, {n_out, n_in}), nullptr, y_f);
    double worst_ratio = 0;
    for (int64_t t = 0; t < n_tok; ++t) {
      std::vector<char> act(ActRowBytes(dtype, n_in));
      QuantizeActivationRow(dtype, xv.data() + t * n_in, n_in, act.data());
      std::vector<float> xh, step;
      DequantizeActivations(dtype, act.data(), n_in, &xh, &step);
      for (int64_t o = 0; o < n_out; ++o) {
        double rounding = 0, magnitude = 0;
        for (int64_t i = 0; i < n_in; ++i) {
          const double w = wd.as<float>()[o * n_in + i];
          rounding += std::fabs(w) * step[i] / 2;
          magnitude += std::fabs(w * xv[t * n_in + i]);
        }
        const double tol = rounding * (1 + 1e-4) + 16 * testing::Gamma(n_in) * magnitude;
        const double diff = std::fabs(y_q.data_as<float>()[t * n_out + o] -
                                      y_f.data_as<float>()[t * n_out + o]);
        ASSERT_LE(diff, tol) << "token " << t << " column " << o;
        worst_ratio = std::max(worst_ratio, diff / tol);
      }
    }
    EXPECT_GT(worst_ratio, 0.0) << "quantized and f32 results identical: activations not quantized?";
  }
}

// Weight rows for the bit-exactness test: quantized Gaussians, or random bytes with finite f16
// scales (every quant and sub-block scale bit pattern).
core::Buffer TestWeights(core::Rng& rng, core::DType dtype, int64_t n_out, int64_t n_in,
                         bool random_bytes) {
  const int64_t bytes = *core::DTypeBytes(dtype, n_out * n_in);
  core::Buffer w(bytes);
  const std::vector<float> wf = Gaussian(rng, n_out * n_in, 0.05);
  QuantizeRow(dtype, wf.data(), n_out * n_in, w.data());
  if (!random_bytes) return w;
  const int64_t block_bytes = core::GetDTypeInfo(dtype).block_bytes;
  const int64_t f16_begin = dtype == core::DType::kQ6_K ? 208 : 0;
  const int64_t f16_end = dtype == core::DType::kQ6_K                                  ? 210
                          : dtype == core::DType::kQ4_K || dtype == core::DType::kQ5_K ? 4
                                                                                       : 2;
  auto* p = static_cast<uint8_t*>(w.data());
  for (int64_t i = 0; i < bytes; ++i) {
    const int64_t at = i % block_bytes;
    if (at < f16_begin || at >= f16_end) p[i] = static_cast<uint8_t>(rng.NextU64());
  }
  return w;
}

// Every target computes the reference's bits, for 1 token (decode), token counts that exercise
// the 4-token tiles and their remainder, and more than one 64-token block; n_in for Q8_0/Q4_0 is
// not a multiple of 4 blocks, so the single-block tail runs too. A bias is added.
TEST(QuantDotCpuTest, EveryTargetGivesTheReferenceBits) {
  core::ThreadPool pool(2);
  core::Rng rng(13);
  const int64_t n_out = 7;
  for (const core::DType dtype : kFormats) {
    SCOPED_TRACE(std::string(core::DTypeName(dtype)));
    const int64_t n_in = IsK(dtype) ? 512 : 544;
    std::vector<float> bias_v = Gaussian(rng, n_out, 0.1);
    core::Buffer bias_b(n_out * 4);
    std::memcpy(bias_b.data(), bias_v.data(), n_out * 4);
    const core::Tensor bias = bias_b.AsTensor(core::DType::kF32, {n_out});
    for (const bool random_bytes : {false, true}) {
      core::Buffer wb = TestWeights(rng, dtype, n_out, n_in, random_bytes);
      const core::Tensor w = wb.AsTensor(dtype, {n_out, n_in});
      for (const int64_t n_tok : {1, 3, 5, 70}) {
        core::Buffer xb(n_tok * n_in * 4), want_b(n_tok * n_out * 4), got_b(n_tok * n_out * 4);
        const std::vector<float> xv = Gaussian(rng, n_tok * n_in, 1.0);
        std::memcpy(xb.data(), xv.data(), xv.size() * 4);
        const core::Tensor x = xb.AsTensor(core::DType::kF32, {n_tok, n_in});
        core::Tensor want = want_b.AsTensor(core::DType::kF32, {n_tok, n_out});
        core::Tensor got = got_b.AsTensor(core::DType::kF32, {n_tok, n_out});
        MatMul1(Ctx(pool, Backend::kRef), x, w, &bias, want);
        testing::ForEachTarget([&](const char*) {
          MatMul1(Ctx(pool, Backend::kCpu), x, w, &bias, got);
          for (int64_t i = 0; i < n_tok * n_out; ++i) {
            ASSERT_EQ(std::bit_cast<uint32_t>(got.data_as<float>()[i]),
                      std::bit_cast<uint32_t>(want.data_as<float>()[i]))
                << "n_tok " << n_tok << " element " << i << (random_bytes ? " random bytes" : "")
                << ": " << got.data_as<float>()[i] << " vs " << want.data_as<float>()[i];
          }
        });
      }
    }
  }
}

// The SIMD activation quantization gives the scalar one's bytes on every target: Gaussian rows,
// values on rounding ties, an all-zero block, and non-finite values (no undefined casts).
TEST(QuantDotCpuTest, ActivationQuantizationIsBitIdenticalOnEveryTarget) {
  core::Rng rng(17);
  const int64_t n = 512;
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(rng.Normal() * 2.0);
  for (int i = 0; i < 32; ++i) x[32 + i] = static_cast<float>(i) - 15.5f;  // ties at d = 1/8
  x[32] = 127.0f / 8.0f;
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);
  x[300] = NAN;
  x[301] = INFINITY;
  x[420] = -INFINITY;
  for (const core::DType dtype : {core::DType::kQ8_0, core::DType::kQ4_K}) {
    SCOPED_TRACE(std::string(core::DTypeName(dtype)));
    std::vector<char> want(ActRowBytes(dtype, n)), got(want.size());
    QuantizeActivationRow(dtype, x.data(), n, want.data());
    testing::ForEachTarget([&](const char*) {
      std::fill(got.begin(), got.end(), 0x5a);
      cpu::QuantizeActivationRow(dtype, x.data(), n, got.data());
      ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size()));
    });
  }
}

// Weights of different formats over one n_in = 512 input, each with a bias: Q4_K and Q6_K share
// the K-quant activations, Q8_0 has its own, f32/bf16 none.
struct MixedWeights {
  static constexpr int64_t kIn = 512;
  static constexpr core::DType kDtypes[] = {core::DType::kQ4_K, core::DType::kQ6_K,
                                            core::DType::kQ8_0, core::DType::kF32,
                                            core::DType::kBF16};
  static constexpr int64_t kWidths[] = {37, 8, 21, 5, 13};
  std::vector<core::Buffer> w_bufs, b_bufs;
  std::vector<core::Tensor> ws, biases;

  explicit MixedWeights(core::Rng& rng) {
    for (size_t i = 0; i < std::size(kDtypes); ++i) {
      const int64_t n = kWidths[i] * kIn;
      if (kDtypes[i] == core::DType::kF32 || kDtypes[i] == core::DType::kBF16) {
        w_bufs.push_back(testing::RandomBuffer(rng, kDtypes[i], n, 0.05));
      } else {
        w_bufs.push_back(TestWeights(rng, kDtypes[i], kWidths[i], kIn, /*random_bytes=*/false));
      }
      ws.push_back(w_bufs.back().AsTensor(kDtypes[i], {kWidths[i], kIn}));
      b_bufs.push_back(testing::RandomBuffer(rng, core::DType::kF32, kWidths[i], 0.1));
      biases.push_back(b_bufs.back().AsTensor(core::DType::kF32, {kWidths[i]}));
    }
  }
  // Every other output has a bias.
  const core::Tensor* Bias(size_t i) const { return i % 2 == 0 ? &biases[i] : nullptr; }
};

// n_tok x width f32 outputs, one per width.
struct Outputs {
  std::vector<core::Buffer> bufs;
  std::vector<core::Tensor> ys;
  Outputs(int64_t n_tok, std::span<const int64_t> widths) {
    for (const int64_t w : widths) {
      bufs.emplace_back(n_tok * w * 4);
      ys.push_back(bufs.back().AsTensor(core::DType::kF32, {n_tok, w}));
    }
  }
};

void ExpectSameBits(const core::Tensor& want, const core::Tensor& got, std::string_view what) {
  ASSERT_EQ(want.nbytes(), got.nbytes()) << what;
  ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.nbytes())) << what;
}

// MatMulMulti and MatMulSwiGlu give each output the bits of its own MatMul (and SwiGlu), on both
// backends, for token counts of decode and batches.
TEST(MatMulMultiTest, EachOutputEqualsItsOwnMatMulBitForBit) {
  core::ThreadPool pool(2);
  core::Rng rng(19);
  const MixedWeights mw(rng);
  const int64_t n_in = MixedWeights::kIn;
  for (const int64_t n_tok : {1, 6}) {
    core::Buffer xb = testing::RandomBuffer(rng, core::DType::kF32, n_tok * n_in, 1.0);
    const core::Tensor x = xb.AsTensor(core::DType::kF32, {n_tok, n_in});
    for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
      SCOPED_TRACE(::testing::Message() << "n_tok " << n_tok
                                        << (backend == Backend::kRef ? " ref" : " cpu"));
      Outputs want(n_tok, MixedWeights::kWidths), got(n_tok, MixedWeights::kWidths);
      std::vector<MatMulOutput> outs;
      for (size_t i = 0; i < mw.ws.size(); ++i) {
        MatMul1(Ctx(pool, backend), x, mw.ws[i], mw.Bias(i), want.ys[i]);
        outs.push_back({&mw.ws[i], mw.Bias(i), &got.ys[i]});
      }
      MatMul(Ctx(pool, backend), {.x = &x, .outputs = outs});
      for (size_t i = 0; i < mw.ws.size(); ++i) {
        ExpectSameBits(want.ys[i], got.ys[i], core::DTypeName(MixedWeights::kDtypes[i]));
      }
      // Fused gate/up + SwiGLU (Q4_K gate, Q6_K up of equal width) against the three steps.
      const int64_t widths[] = {8, 8, 8, 8};
      Outputs o(n_tok, widths);
      core::Tensor &gate = o.ys[0], &up = o.ys[1], &fused = o.ys[2], &scratch = o.ys[3];
      const core::Tensor gate_w = mw.ws[0].Slice(0, 8);
      const core::Tensor up_bias = mw.biases[0].Slice(0, 8);
      MatMul1(Ctx(pool, backend), x, gate_w, nullptr, gate);
      MatMul1(Ctx(pool, backend), x, mw.ws[1], &up_bias, up);
      SwiGlu(Ctx(pool), {.gate = &gate, .up = &up, .out = &gate});
      MatMulSwiGlu(
          Ctx(pool, backend),
          {.x = &x, .gate = {&gate_w, nullptr, &fused}, .up = {&mw.ws[1], &up_bias, &scratch}});
      ExpectSameBits(gate, fused, "swiglu");
    }
  }
}

// With an InputRmsNorm, MatMulMulti and MatMulSwiGlu equal RmsNorm followed by the unfused calls,
// bit for bit (the normalized rows too): with block and float weights, with float weights alone
// (no quantization in the input pass), and normalizing in place (normed = x).
TEST(MatMulMultiTest, FusedRmsNormEqualsRmsNormThenMatMul) {
  core::ThreadPool pool(2);
  core::Rng rng(23);
  const MixedWeights mw(rng);
  const int64_t n_in = MixedWeights::kIn;
  core::Buffer nwb = testing::RandomBuffer(rng, core::DType::kBF16, n_in, 1.0);
  const core::Tensor norm_w = nwb.AsTensor(core::DType::kBF16, {n_in});
  const float eps = 1e-6f;
  for (const int64_t n_tok : {1, 5}) {
    core::Buffer xb = testing::RandomBuffer(rng, core::DType::kF32, n_tok * n_in, 3.0);
    const core::Tensor x = xb.AsTensor(core::DType::kF32, {n_tok, n_in});
    core::Buffer hb(n_tok * n_in * 4);
    core::Tensor h = hb.AsTensor(core::DType::kF32, {n_tok, n_in});
    for (const Backend backend : {Backend::kRef, Backend::kCpu}) {
      SCOPED_TRACE(::testing::Message() << "n_tok " << n_tok
                                        << (backend == Backend::kRef ? " ref" : " cpu"));
      RmsNorm(Ctx(pool, backend), {.x = &x, .w = &norm_w, .eps = eps, .y = &h});
      for (const size_t n_outputs : {mw.ws.size(), size_t{1}}) {
        // All formats; then the f32 weight alone.
        const size_t first = n_outputs == 1 ? 3 : 0;
        for (const bool in_place : {false, true}) {
          SCOPED_TRACE(::testing::Message() << n_outputs << " outputs, in place " << in_place);
          Outputs want(n_tok, MixedWeights::kWidths), got(n_tok, MixedWeights::kWidths);
          std::vector<MatMulOutput> outs;
          for (size_t i = first; i < first + n_outputs; ++i) {
            MatMul1(Ctx(pool, backend), h, mw.ws[i], mw.Bias(i), want.ys[i]);
            outs.push_back({&mw.ws[i], mw.Bias(i), &got.ys[i]});
          }
          core::Buffer xcopy_b(n_tok * n_in * 4), normed_b(n_tok * n_in * 4);
          core::Tensor xcopy = xcopy_b.AsTensor(core::DType::kF32, {n_tok, n_in});
          std::memcpy(xcopy.data(), x.data(), x.nbytes());
          core::Tensor normed =
              in_place ? xcopy : normed_b.AsTensor(core::DType::kF32, {n_tok, n_in});
          const InputRmsNorm norm{&norm_w, eps, &normed};
          MatMul(Ctx(pool, backend), {.x = &xcopy, .outputs = outs, .norm = &norm});
          ExpectSameBits(h, normed, "normed");
          for (size_t i = first; i < first + n_outputs; ++i) {
            ExpectSameBits(want.ys[i], got.ys[i], core::DTypeName(MixedWeights::kDtypes[i]));
          }
        }
      }
      // Gate Q4_K and up Q8_0 (two activation formats in the input pass).
      const int64_t widths[] = {8, 8, 8, 8};
      Outputs o(n_tok, widths);
      core::Tensor &gate = o.ys[0], &up = o.ys[1], &fused = o.ys[2], &scratch = o.ys[3];
      const core::Tensor gate_w = mw.ws[0].Slice(0, 8), up_w = mw.ws[2].Slice(0, 8);
      MatMul1(Ctx(pool, backend), h, gate_w, nullptr, gate);
      MatMul1(Ctx(pool, backend), h, up_w, nullptr, up);
      SwiGlu(Ctx(pool), {.gate = &gate, .up = &up, .out = &gate});
      core::Buffer normed_b(n_tok * n_in * 4);
      core::Tensor normed = normed_b.AsTensor(core::DType::kF32, {n_tok, n_in});
      const InputRmsNorm norm{&norm_w, eps, &normed};
      MatMulSwiGlu(Ctx(pool, backend), {.x = &x,
                                        .gate = {&gate_w, nullptr, &fused},
                                        .up = {&up_w, nullptr, &scratch},
                                        .norm = &norm});
      ExpectSameBits(h, normed, "swiglu normed");
      ExpectSameBits(gate, fused, "swiglu");
    }
  }
}

}  // namespace
}  // namespace arle::kernels
