// DType table. Block sizes follow the GGUF/ggml block structs (see docs/formats.md).
#include "arle/core/dtype.h"

#include <array>
#include <cctype>
#include <limits>
#include <string>

#include "arle/core/check.h"

namespace arle::core {
namespace {

constexpr std::array<DTypeInfo, 34> kInfos = {{
    {"f32", 1, 4, true, false},
    {"f16", 1, 2, true, false},
    {"bf16", 1, 2, true, false},
    {"f64", 1, 8, true, false},
    {"i8", 1, 1, false, false},
    {"i16", 1, 2, false, false},
    {"i32", 1, 4, false, false},
    {"i64", 1, 8, false, false},
    {"u8", 1, 1, false, false},
    {"bool", 1, 1, false, false},
    {"q4_0", 32, 18, false, true},
    {"q4_1", 32, 20, false, true},
    {"q5_0", 32, 22, false, true},
    {"q5_1", 32, 24, false, true},
    {"q8_0", 32, 34, false, true},
    {"q8_1", 32, 36, false, true},
    {"q2_k", 256, 84, false, true},
    {"q3_k", 256, 110, false, true},
    {"q4_k", 256, 144, false, true},
    {"q5_k", 256, 176, false, true},
    {"q6_k", 256, 210, false, true},
    {"q8_k", 256, 292, false, true},
    {"iq2_xxs", 256, 66, false, true},
    {"iq2_xs", 256, 74, false, true},
    {"iq3_xxs", 256, 98, false, true},
    {"iq1_s", 256, 50, false, true},
    {"iq4_nl", 32, 18, false, true},
    {"iq3_s", 256, 110, false, true},
    {"iq2_s", 256, 82, false, true},
    {"iq4_xs", 256, 136, false, true},
    {"iq1_m", 256, 56, false, true},
    {"tq1_0", 256, 54, false, true},
    {"tq2_0", 256, 66, false, true},
    {"mxfp4", 32, 17, false, true},
}};

static_assert(static_cast<size_t>(DType::kMXFP4) + 1 == kInfos.size(), "table out of sync");

}  // namespace

const DTypeInfo& GetDTypeInfo(DType dtype) {
  const auto index = static_cast<size_t>(dtype);
  ARLE_CHECK_LT(index, kInfos.size());
  return kInfos[index];
}

std::optional<DType> DTypeFromName(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "float32") return DType::kF32;
  if (lower == "float16" || lower == "half") return DType::kF16;
  if (lower == "bfloat16") return DType::kBF16;
  for (size_t i = 0; i < kInfos.size(); ++i) {
    if (kInfos[i].name == lower) return static_cast<DType>(i);
  }
  return std::nullopt;
}

std::optional<int64_t> DTypeBytes(DType dtype, int64_t n_elems) {
  const DTypeInfo& info = GetDTypeInfo(dtype);
  if (n_elems < 0 || n_elems % info.block_elems != 0) return std::nullopt;
  const int64_t blocks = n_elems / info.block_elems;
  if (blocks > std::numeric_limits<int64_t>::max() / info.block_bytes) return std::nullopt;
  return blocks * info.block_bytes;
}

}  // namespace arle::core
