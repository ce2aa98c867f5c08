// GGUF block conversions: argument checks, then the scalar reference (kernels/ref/quant_ref.cc).
#include "arle/kernels/quant.h"

#include "arle/core/check.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels {
namespace {

void CheckRow(core::DType dtype, int64_t n, const char* op) {
  ARLE_CHECK(IsSupportedQuant(dtype)) << op << ": " << core::DTypeName(dtype)
                                      << " is not a supported GGUF block format";
  const int64_t block = core::GetDTypeInfo(dtype).block_elems;
  ARLE_CHECK(n >= 0 && n % block == 0)
      << op << ": " << n << " values is not a whole number of " << core::DTypeName(dtype)
      << " blocks (" << block << " values each)";
}

}  // namespace

bool IsSupportedQuant(core::DType dtype) {
  switch (dtype) {
    case core::DType::kQ8_0:
    case core::DType::kQ4_0:
    case core::DType::kQ4_K:
    case core::DType::kQ5_K:
    case core::DType::kQ6_K:
      return true;
    default:
      return false;
  }
}

void DequantizeRow(core::DType dtype, const void* src, int64_t n, float* dst) {
  CheckRow(dtype, n, "DequantizeRow");
  ref::DequantizeRow(dtype, src, n, dst);
}

void ConvertRowToF32(core::DType dtype, const void* src, int64_t n, float* dst) {
  const bool is_float =
      dtype == core::DType::kF32 || dtype == core::DType::kF16 || dtype == core::DType::kBF16;
  if (!is_float) CheckRow(dtype, n, "ConvertRowToF32");
  ref::ConvertRow(src, dtype, n, dst);
}

void QuantizeRow(core::DType dtype, const float* src, int64_t n, void* dst) {
  CheckRow(dtype, n, "QuantizeRow");
  ref::QuantizeRow(dtype, src, n, dst);
}

}  // namespace arle::kernels
