// GGUF block formats: dequantization against goldens from an independent numpy transcription of the
// GGUF definition (tests/reference/make_quant_goldens.py), bit for bit; quantize -> dequantize
// round trips within each format's expected error; edge inputs; bad arguments.
#include "arle/kernels/quant.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/random.h"

namespace arle::kernels {
namespace {

constexpr core::DType kFormats[] = {core::DType::kQ8_0, core::DType::kQ4_0, core::DType::kQ4_K,
                                    core::DType::kQ5_K, core::DType::kQ6_K};

struct GoldenSection {
  core::DType dtype;
  int64_t n_blocks = 0;
  std::vector<uint8_t> blocks;
  std::vector<float> values;
};

std::vector<GoldenSection> ReadGoldens() {
  const std::string path = std::string(ARLE_SOURCE_DIR) + "/tests/data/quant/dequant_goldens.bin";
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  const std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)),
                                  std::istreambuf_iterator<char>());
  size_t at = 0;
  auto take = [&](void* dst, size_t n) {
    EXPECT_LE(at + n, data.size()) << "truncated golden file";
    if (at + n > data.size()) return false;
    std::memcpy(dst, data.data() + at, n);
    at += n;
    return true;
  };
  char magic[8];
  uint32_t n_sections = 0;
  std::vector<GoldenSection> out;
  if (!take(magic, 8) || std::memcmp(magic, "ARLEQG1\0", 8) != 0 || !take(&n_sections, 4)) {
    ADD_FAILURE() << "bad golden header";
    return out;
  }
  for (uint32_t s = 0; s < n_sections; ++s) {
    char name[9] = {};
    uint32_t n_blocks = 0, block_bytes = 0;
    if (!take(name, 8) || !take(&n_blocks, 4) || !take(&block_bytes, 4)) return out;
    const auto dtype = core::DTypeFromName(name);
    EXPECT_TRUE(dtype.has_value()) << name;
    if (!dtype) return out;
    const core::DTypeInfo& info = core::GetDTypeInfo(*dtype);
    EXPECT_EQ(info.block_bytes, block_bytes) << name;
    GoldenSection g{*dtype, n_blocks, std::vector<uint8_t>(n_blocks * block_bytes),
                    std::vector<float>(n_blocks * info.block_elems)};
    if (!take(g.blocks.data(), g.blocks.size()) ||
        !take(g.values.data(), g.values.size() * sizeof(float))) {
      return out;
    }
    out.push_back(std::move(g));
  }
  EXPECT_EQ(at, data.size()) << "trailing bytes in the golden file";
  return out;
}

TEST(QuantTest, DequantizationMatchesTheGgufDefinitionBitForBit) {
  const std::vector<GoldenSection> goldens = ReadGoldens();
  ASSERT_EQ(goldens.size(), std::size(kFormats));
  for (const GoldenSection& g : goldens) {
    SCOPED_TRACE(std::string(core::DTypeName(g.dtype)));
    EXPECT_TRUE(IsSupportedQuant(g.dtype));
    std::vector<float> got(g.values.size(), NAN);
    DequantizeRow(g.dtype, g.blocks.data(), static_cast<int64_t>(got.size()), got.data());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(g.values[i]))
          << "value " << i << ": got " << got[i] << ", GGUF definition " << g.values[i];
    }
  }
}

double Rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return std::sqrt(s / static_cast<double>(x.size()));
}

// Quantize -> dequantize of Gaussian rows (with a few outliers, as real weights have). The bounds
// are the uniform-quantization error of each format's step on Gaussian data (step / sqrt(12),
// step = range / levels) with about 40 % of headroom, so a wrong bit layout or a lost scale fails
// them by far.
TEST(QuantTest, RoundTripErrorStaysWithinEachFormatsStep) {
  struct Case {
    core::DType dtype;
    double max_relative_rmse;
  };
  const Case cases[] = {{core::DType::kQ8_0, 0.008}, {core::DType::kQ4_0, 0.12},
                        {core::DType::kQ4_K, 0.10},  {core::DType::kQ5_K, 0.05},
                        {core::DType::kQ6_K, 0.03}};
  core::Rng rng(5);
  const int64_t n = 4096;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(rng.Normal() * 0.02);
  for (int64_t i = 0; i < n; i += 509) x[i] *= 8.0f;  // outliers
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(core::DTypeName(c.dtype)));
    std::vector<uint8_t> q(*core::DTypeBytes(c.dtype, n));
    QuantizeRow(c.dtype, x.data(), n, q.data());
    std::vector<float> y(n);
    DequantizeRow(c.dtype, q.data(), n, y.data());
    std::vector<float> err(n);
    for (int64_t i = 0; i < n; ++i) err[i] = y[i] - x[i];
    const double rel = Rms(err) / Rms(x);
    EXPECT_LT(rel, c.max_relative_rmse) << "relative RMSE " << rel;
    // Deterministic: the same input gives the same bytes.
    std::vector<uint8_t> q2(q.size());
    QuantizeRow(c.dtype, x.data(), n, q2.data());
    EXPECT_EQ(q, q2);
  }
}

// Q8_0 and Q4_0 have closed-form bounds per block: half a step (Q8_0; plus the f16 rounding of
// d), and one step for Q4_0 (the value opposite the largest one clamps at level 15).
TEST(QuantTest, Q8_0AndQ4_0ErrorIsBoundedPerBlock) {
  core::Rng rng(6);
  const int64_t n = 32 * 64;
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(rng.Normal());
  for (const core::DType dtype : {core::DType::kQ8_0, core::DType::kQ4_0}) {
    std::vector<uint8_t> q(*core::DTypeBytes(dtype, n));
    QuantizeRow(dtype, x.data(), n, q.data());
    std::vector<float> y(n);
    DequantizeRow(dtype, q.data(), n, y.data());
    const double levels = dtype == core::DType::kQ8_0 ? 127.0 : 8.0;
    const double steps = dtype == core::DType::kQ8_0 ? 0.5 : 1.0;
    for (int64_t b = 0; b < n / 32; ++b) {
      double amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(double{x[b * 32 + i]}));
      const double bound = (steps + 128 * std::ldexp(1.0, -11)) * amax / levels;
      for (int i = 0; i < 32; ++i) {
        ASSERT_LE(std::fabs(double{y[b * 32 + i]} - x[b * 32 + i]), bound)
            << core::DTypeName(dtype) << " block " << b << " value " << i;
      }
    }
  }
}

TEST(QuantTest, ZeroConstantAndTinyRowsStayFinite) {
  for (const core::DType dtype : kFormats) {
    SCOPED_TRACE(std::string(core::DTypeName(dtype)));
    const int64_t n = 256;
    for (const float fill : {0.0f, 1.5f, -3.0f, 1e-30f}) {
      std::vector<float> x(n, fill);
      std::vector<uint8_t> q(*core::DTypeBytes(dtype, n));
      QuantizeRow(dtype, x.data(), n, q.data());
      std::vector<float> y(n);
      DequantizeRow(dtype, q.data(), n, y.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(std::isfinite(y[i])) << "fill " << fill;
        ASSERT_NEAR(y[i], fill, std::fabs(fill) * 0.13 + 1e-6) << "fill " << fill << " at " << i;
      }
    }
  }
}

TEST(QuantDeathTest, RejectsUnsupportedFormatsAndPartialBlocks) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<float> x(512, 0.0f);
  std::vector<uint8_t> q(1024);
  EXPECT_FALSE(IsSupportedQuant(core::DType::kQ2_K));
  EXPECT_FALSE(IsSupportedQuant(core::DType::kF32));
  EXPECT_DEATH(DequantizeRow(core::DType::kQ2_K, q.data(), 256, x.data()), "not a supported");
  EXPECT_DEATH(QuantizeRow(core::DType::kQ4_K, x.data(), 100, q.data()), "whole number");
  EXPECT_DEATH(DequantizeRow(core::DType::kQ8_0, q.data(), 33, x.data()), "whole number");
}

}  // namespace
}  // namespace arle::kernels
