// `arle quantize`: llama.cpp's per-tensor type rules and the GGUF -> GGUF rewrite.
#include "arle/convert/quantize.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <memory>
#include <regex>
#include <vector>

#include "arle/convert/hf_to_gguf.h"
#include "arle/core/buffer.h"
#include "arle/core/file_util.h"
#include "arle/core/half.h"
#include "arle/core/thread_pool.h"
#include "arle/io/gguf.h"
#include "arle/kernels/quant.h"

namespace arle::convert {
namespace {

struct FileTypeInfo {
  QuantFileType type;
  std::string_view name;
  core::DType base;
  uint32_t gguf_id;  // LLAMA_FTYPE_MOSTLY_*
};

constexpr FileTypeInfo kFileTypes[] = {
    {QuantFileType::kQ8_0, "q8_0", core::DType::kQ8_0, 7},
    {QuantFileType::kQ4_0, "q4_0", core::DType::kQ4_0, 2},
    {QuantFileType::kQ4_K_M, "q4_k_m", core::DType::kQ4_K, 15},
    {QuantFileType::kQ5_K_M, "q5_k_m", core::DType::kQ5_K, 17},
    {QuantFileType::kQ6_K, "q6_k", core::DType::kQ6_K, 18},
};

const FileTypeInfo& Info(QuantFileType type) {
  for (const FileTypeInfo& i : kFileTypes) {
    if (i.type == type) return i;
  }
  return kFileTypes[0];
}

// llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between.
bool UseMoreBits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

bool FitsBlocks(core::DType dtype, int64_t cols) { return core::DTypeBytes(dtype, cols).has_value(); }

bool IsFloat(core::DType d) {
  return d == core::DType::kF32 || d == core::DType::kF16 || d == core::DType::kBF16;
}

// out[0 .. n) = the n values of an f32/f16/bf16 row, exactly. REQUIRES: IsFloat(dtype).
void WidenRow(const void* row, core::DType dtype, int64_t n, float* out) {
  if (dtype == core::DType::kF32) {
    std::memcpy(out, row, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  const auto* half = static_cast<const uint16_t*>(row);
  const bool f16 = dtype == core::DType::kF16;
  for (int64_t i = 0; i < n; ++i) out[i] = f16 ? core::F16ToF32(half[i]) : core::BF16ToF32(half[i]);
}

}  // namespace

std::optional<QuantFileType> ParseQuantFileType(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const FileTypeInfo& i : kFileTypes) {
    if (i.name == lower) return i.type;
  }
  return std::nullopt;
}

std::string_view QuantFileTypeName(QuantFileType type) { return Info(type).name; }

uint32_t GgufFileTypeId(QuantFileType type) { return Info(type).gguf_id; }

std::optional<core::DType> ChooseQuantType(QuantFileType type, const std::string& name,
                                           std::span<const int64_t> shape, int64_t n_layer,
                                           bool has_output) {
  if (shape.size() != 2 || !name.ends_with(".weight") || name.ends_with("_norm.weight")) {
    return std::nullopt;
  }
  const bool k_mixture = type == QuantFileType::kQ4_K_M || type == QuantFileType::kQ5_K_M;
  core::DType want = Info(type).base;
  static const std::regex kLayerRe(R"(blk\.(\d+)\.(attn_v|ffn_down)\.weight)");
  std::smatch m;
  if (name == "output.weight" || (!has_output && name == "token_embd.weight")) {
    if (type != QuantFileType::kQ8_0) want = core::DType::kQ6_K;
  } else if (k_mixture && std::regex_match(name, m, kLayerRe)) {
    if (UseMoreBits(std::stoll(m[1].str()), n_layer)) want = core::DType::kQ6_K;
  }
  const int64_t cols = shape[1];
  if (FitsBlocks(want, cols)) return want;
  if (FitsBlocks(core::DType::kQ8_0, cols)) return core::DType::kQ8_0;
  return std::nullopt;
}

core::StatusOr<QuantizeSummary> QuantizeGguf(const std::string& in, const std::string& out,
                                             QuantFileType type, int n_threads) {
  ARLE_ASSIGN_OR_RETURN(io::GgufFile file, io::GgufFile::Open(in));
  ARLE_ASSIGN_OR_RETURN(std::string arch, file.GetString("general.architecture"));
  ARLE_ASSIGN_OR_RETURN(int64_t n_layer, file.GetInt(arch + ".block_count"));
  const bool has_output = file.FindTensor("output.weight") != nullptr;

  io::GgufWriter writer;
  writer.SetAlignment(file.alignment());
  for (const auto& [key, value] : file.metadata()) {
    if (key == "general.alignment") continue;  // SetAlignment writes it
    writer.Add(key, value);
  }
  writer.AddU32("general.file_type", GgufFileTypeId(type));
  writer.AddU32("general.quantization_version", 2);

  QuantizeSummary summary;
  core::ThreadPool pool(n_threads);  // < 1: one thread per physical core
  std::vector<std::unique_ptr<core::Buffer>> buffers;  // the quantized tensors, alive until Write
  for (const io::GgufTensorInfo& info : file.tensors()) {
    ARLE_ASSIGN_OR_RETURN(core::Tensor t, file.GetTensor(info.name));
    summary.bytes_in += t.nbytes();
    const std::optional<core::DType> to =
        IsFloat(t.dtype()) ? ChooseQuantType(type, info.name, t.shape(), n_layer, has_output)
                           : std::nullopt;
    if (!to) {
      // Norms and biases in F32 (llama.cpp's converter rule), also from GGUF files that hold them
      // in f16/bf16: llama.cpp's forward rejects those.
      summary.bytes_out += writer.AddWeight(info.name, t).nbytes();
      ++summary.n_kept;
      continue;
    }
    const int64_t rows = t.dim(0), cols = t.dim(1);
    const int64_t in_row = t.nbytes() / rows;
    const int64_t out_row = *core::DTypeBytes(*to, cols);
    auto buf = std::make_unique<core::Buffer>(static_cast<size_t>(rows * out_row));
    const char* src = static_cast<const char*>(t.data());
    char* dst = buf->as<char>();
    pool.ParallelFor(rows, /*work_per_item=*/cols * 64, [&](int64_t begin, int64_t end) {
      std::vector<float> row(cols);
      for (int64_t r = begin; r < end; ++r) {
        WidenRow(src + r * in_row, t.dtype(), cols, row.data());
        kernels::QuantizeRow(*to, row.data(), cols, dst + r * out_row);
      }
    });
    writer.AddTensor(info.name, buf->AsTensor(*to, {rows, cols}));
    summary.bytes_out += rows * out_row;
    ++summary.n_quantized;
    buffers.push_back(std::move(buf));
  }
  ARLE_RETURN_IF_ERROR(writer.Write(out));
  return summary;
}

core::StatusOr<QuantizeSummary> QuantizeModel(const std::string& in, const std::string& out,
                                              QuantFileType type, int n_threads) {
  if (!core::IsDirectory(in)) return QuantizeGguf(in, out, type, n_threads);
  const std::string unquantized = out + ".unquantized.tmp";
  core::Status exported = ExportHfDirectoryToGguf(in, unquantized);
  auto summary = exported.ok() ? QuantizeGguf(unquantized, out, type, n_threads)
                               : core::StatusOr<QuantizeSummary>(exported);
  std::error_code ignored;
  std::filesystem::remove(unquantized, ignored);
  return summary;
}

}  // namespace arle::convert
