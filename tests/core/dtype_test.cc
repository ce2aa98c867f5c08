// Tests for the DType table and the f16/bf16 conversions (exhaustive over all 16-bit patterns).
#include "arle/core/dtype.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>

#include "arle/core/half.h"

namespace arle::core {
namespace {

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeName(DType::kBF16), "bf16");
  EXPECT_EQ(*DTypeFromName("BF16"), DType::kBF16);
  EXPECT_EQ(*DTypeFromName("float32"), DType::kF32);
  EXPECT_FALSE(DTypeFromName("f12").has_value());
  EXPECT_EQ(*DTypeBytes(DType::kF32, 10), 40);
  EXPECT_EQ(*DTypeBytes(DType::kQ8_0, 64), 68);
  EXPECT_EQ(*DTypeBytes(DType::kQ4_K, 512), 288);
  EXPECT_FALSE(DTypeBytes(DType::kQ4_0, 33).has_value());
  EXPECT_FALSE(DTypeBytes(DType::kF64, int64_t{1} << 62).has_value());
}

// Every f16 value converts to f32 and back unchanged (NaNs stay NaN).
TEST(HalfTest, F16RoundTripIsExact) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f))));
      continue;
    }
    ASSERT_EQ(F32ToF16(f), h) << "h=" << h << " f=" << f;
  }
}

// F32ToF16 rounds to nearest even: midpoints between neighbours go to the even mantissa.
TEST(HalfTest, F16RoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const double lo = F16ToF32(static_cast<uint16_t>(h));
    const double hi = F16ToF32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((lo + hi) / 2);
    if (static_cast<double>(mid) != (lo + hi) / 2) continue;  // not representable in f32
    const uint16_t expected = (h % 2 == 0) ? h : h + 1;
    ASSERT_EQ(F32ToF16(mid), expected) << "h=" << h;
  }
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // rounds up to inf
  EXPECT_EQ(F32ToF16(65519.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(1e-8f), 0x0000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
}

TEST(HalfTest, BF16RoundTripAndRounding) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = BF16ToF32(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToBF16(f), b);
  }
  // 1 + 2^-8 is the midpoint between bf16 1.0 and 1.0078125: ties to even (1.0).
  EXPECT_EQ(F32ToBF16(std::bit_cast<float>(0x3f808000u)), 0x3f80);
  EXPECT_EQ(F32ToBF16(std::bit_cast<float>(0x3f818000u)), 0x3f82);
  EXPECT_EQ(F32ToBF16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(std::nanf("")))));
}

}  // namespace
}  // namespace arle::core
