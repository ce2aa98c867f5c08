// Highway dequantization of GGUF block rows: the formulas of ref/quant_ref.cc, lane for lane (the
// same f32 products and differences, no fused multiply-add), so the result is bit-identical to
// kernels::DequantizeRow on every target. MatMul uses it to feed block weights to its f32 tiles.
#include <cstring>

#include "arle/core/check.h"
#include "arle/core/half.h"
#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/quant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "arle/kernels/cpu/quant_cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// Lanes(df) bytes at p, each widened to an int32 lane.
HWY_INLINE VI LoadU8(const uint8_t* p) {
  const DI di;
  const hn::Rebind<uint8_t, DI> d8;
  return hn::BitCast(di, hn::PromoteTo(hn::RebindToUnsigned<DI>(), hn::LoadU(d8, p)));
}
HWY_INLINE VI LoadI8(const int8_t* p) {
  const DI di;
  const hn::Rebind<int8_t, DI> d8;
  return hn::PromoteTo(di, hn::LoadU(d8, p));
}
HWY_INLINE VF ToF(VI v) { return hn::ConvertTo(DF(), v); }

// Lanes must divide every group the formats scale together (16 values).
HWY_INLINE bool LanesFit() { return 16 % hn::Lanes(DF()) == 0; }

void DequantQ8_0(const uint8_t* src, int64_t n_blocks, float* y) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t b = 0; b < n_blocks; ++b, src += sizeof(BlockQ8_0), y += kQK8_0) {
    uint16_t d_bits;
    std::memcpy(&d_bits, src, 2);
    const VF d = hn::Set(df, core::F16ToF32(d_bits));
    const auto* qs = reinterpret_cast<const int8_t*>(src + 2);
    for (int64_t i = 0; i < kQK8_0; i += lanes) hn::StoreU(hn::Mul(ToF(LoadI8(qs + i)), d), df, y + i);
  }
}

void DequantQ4_0(const uint8_t* src, int64_t n_blocks, float* y) {
  const DF df;
  const DI di;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VI mask = hn::Set(di, 15), eight = hn::Set(di, 8);
  for (int64_t b = 0; b < n_blocks; ++b, src += sizeof(BlockQ4_0), y += kQK8_0) {
    uint16_t d_bits;
    std::memcpy(&d_bits, src, 2);
    const VF d = hn::Set(df, core::F16ToF32(d_bits));
    const uint8_t* qs = src + 2;
    for (int64_t i = 0; i < kQK8_0 / 2; i += lanes) {
      const VI q = LoadU8(qs + i);
      hn::StoreU(hn::Mul(ToF(hn::Sub(hn::And(q, mask), eight)), d), df, y + i);
      hn::StoreU(hn::Mul(ToF(hn::Sub(hn::ShiftRight<4>(q), eight)), d), df, y + i + kQK8_0 / 2);
    }
  }
}

// Q4_K (qh == nullptr) and Q5_K: y = d1 * q - m1 per sub-block, as two separate roundings.
void DequantK4K5(uint16_t d_bits, uint16_t dmin_bits, const uint8_t* scales, const uint8_t* qh,
                 const uint8_t* qs, float* y) {
  const DF df;
  const DI di;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const float d = core::F16ToF32(d_bits), dmin = core::F16ToF32(dmin_bits);
  const VI mask = hn::Set(di, 15), one = hn::Set(di, 1);
  for (int i = 0; i < 4; ++i) {
    int sc[2], m[2];
    ScaleMinK4(2 * i, scales, &sc[0], &m[0]);
    ScaleMinK4(2 * i + 1, scales, &sc[1], &m[1]);
    const VF d1 = hn::Set(df, d * static_cast<float>(sc[0]));
    const VF m1 = hn::Set(df, dmin * static_cast<float>(m[0]));
    const VF d2 = hn::Set(df, d * static_cast<float>(sc[1]));
    const VF m2 = hn::Set(df, dmin * static_cast<float>(m[1]));
    const uint8_t* q = qs + 32 * i;
    for (int64_t l = 0; l < 32; l += lanes) {
      const VI v = LoadU8(q + l);
      VI lo = hn::And(v, mask), hi = hn::ShiftRight<4>(v);
      if (qh != nullptr) {
        const VI h = LoadU8(qh + l);
        lo = hn::Add(lo, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * i), one)));
        hi = hn::Add(hi, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * i + 1), one)));
      }
      hn::StoreU(hn::Sub(hn::Mul(d1, ToF(lo)), m1), df, y + 64 * i + l);
      hn::StoreU(hn::Sub(hn::Mul(d2, ToF(hi)), m2), df, y + 64 * i + 32 + l);
    }
  }
}

void DequantQ6_K(const BlockQ6_K& b, float* y) {
  const DF df;
  const DI di;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const float d = core::F16ToF32(b.d);
  const VI mask4 = hn::Set(di, 15), mask2 = hn::Set(di, 3), bias = hn::Set(di, 32);
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = b.ql + 64 * n;
    const uint8_t* qh = b.qh + 32 * n;
    const int8_t* sc = b.scales + 8 * n;
    float* out = y + 128 * n;
    for (int64_t l = 0; l < 32; l += lanes) {
      const int is = static_cast<int>(l / 16);  // lanes divide 16: one scale per vector
      const VI a = LoadU8(ql + l), c = LoadU8(ql + l + 32), h = LoadU8(qh + l);
      const VI q1 = hn::Sub(hn::Or(hn::And(a, mask4), hn::ShiftLeft<4>(hn::And(h, mask2))), bias);
      const VI q2 = hn::Sub(
          hn::Or(hn::And(c, mask4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), mask2))), bias);
      const VI q3 = hn::Sub(
          hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), mask2))), bias);
      const VI q4 = hn::Sub(
          hn::Or(hn::ShiftRight<4>(c), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<6>(h), mask2))), bias);
      // (d * scale) * q, the reference's order.
      hn::StoreU(hn::Mul(hn::Set(df, d * static_cast<float>(sc[is])), ToF(q1)), df, out + l);
      hn::StoreU(hn::Mul(hn::Set(df, d * static_cast<float>(sc[is + 2])), ToF(q2)), df, out + l + 32);
      hn::StoreU(hn::Mul(hn::Set(df, d * static_cast<float>(sc[is + 4])), ToF(q3)), df, out + l + 64);
      hn::StoreU(hn::Mul(hn::Set(df, d * static_cast<float>(sc[is + 6])), ToF(q4)), df, out + l + 96);
    }
  }
}

void DequantizeRow(core::DType dtype, const void* src, int64_t n, float* dst) {
  ARLE_CHECK(LanesFit()) << "DequantizeRow: " << hn::Lanes(DF()) << " lanes do not divide 16";
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (dtype) {
    case core::DType::kQ8_0:
      return DequantQ8_0(bytes, n / kQK8_0, dst);
    case core::DType::kQ4_0:
      return DequantQ4_0(bytes, n / kQK8_0, dst);
    case core::DType::kQ4_K:
      for (int64_t i = 0; i < n / kQK_K; ++i) {
        BlockQ4_K b;
        std::memcpy(&b, bytes + i * sizeof(b), sizeof(b));
        DequantK4K5(b.d, b.dmin, b.scales, nullptr, b.qs, dst + i * kQK_K);
      }
      return;
    case core::DType::kQ5_K:
      for (int64_t i = 0; i < n / kQK_K; ++i) {
        BlockQ5_K b;
        std::memcpy(&b, bytes + i * sizeof(b), sizeof(b));
        DequantK4K5(b.d, b.dmin, b.scales, b.qh, b.qs, dst + i * kQK_K);
      }
      return;
    case core::DType::kQ6_K:
      for (int64_t i = 0; i < n / kQK_K; ++i) {
        BlockQ6_K b;
        std::memcpy(&b, bytes + i * sizeof(b), sizeof(b));
        DequantQ6_K(b, dst + i * kQK_K);
      }
      return;
    default:
      ARLE_CHECK(false) << "DequantizeRow: unsupported " << core::DTypeName(dtype);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(DequantizeRow);

void DequantizeRow(core::DType dtype, const void* src, int64_t n, float* dst) {
  HWY_DYNAMIC_DISPATCH(DequantizeRow)(dtype, src, n, dst);
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
