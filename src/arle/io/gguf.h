// GGUF v3 (also v2) reading and writing. Layout: magic "GGUF", u32 version, u64 tensor count,
// u64 metadata count, metadata key/value pairs, tensor infos (name, dims innermost-first, ggml
// type, offset), padding to `general.alignment` (default 32), then the tensor data. Tensor views
// point into the mapped file. Every count, length and offset is validated against the file size.
// docs/formats.md lists the checks and where arle is stricter or more lenient than llama.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/mapped_file.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"

namespace arle::io {

// GGUF metadata value types (the numeric values are the on-disk ids).
enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
// "u8", "str", "arr", ... (gguf.cpp's names); "type<N>" for ids outside the enum.
std::string GgufTypeName(GgufType type);

struct GgufValue;
struct GgufArray {
  GgufType element_type = GgufType::kU8;
  std::vector<GgufValue> values;
};
struct GgufValue {
  GgufType type = GgufType::kU8;
  // Integers are widened to int64/uint64, floats to double; the original type is in `type`.
  // Unsigned types hold uint64_t, signed types int64_t, f32/f64 double.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>> value;

  std::optional<int64_t> AsInt() const;      // any integer type (u64 above INT64_MAX -> nullopt)
  std::optional<double> AsFloat() const;     // any numeric type
  std::optional<bool> AsBool() const;
  const std::string* AsString() const;
  const GgufArray* AsArray() const;

  // Values of each type, as the writer expects them.
  static GgufValue U8(uint8_t v) { return {GgufType::kU8, uint64_t{v}}; }
  static GgufValue I8(int8_t v) { return {GgufType::kI8, int64_t{v}}; }
  static GgufValue U16(uint16_t v) { return {GgufType::kU16, uint64_t{v}}; }
  static GgufValue I16(int16_t v) { return {GgufType::kI16, int64_t{v}}; }
  static GgufValue U32(uint32_t v) { return {GgufType::kU32, uint64_t{v}}; }
  static GgufValue I32(int32_t v) { return {GgufType::kI32, int64_t{v}}; }
  static GgufValue U64(uint64_t v) { return {GgufType::kU64, v}; }
  static GgufValue I64(int64_t v) { return {GgufType::kI64, v}; }
  static GgufValue F32(float v) { return {GgufType::kF32, double{v}}; }
  static GgufValue F64(double v) { return {GgufType::kF64, v}; }
  static GgufValue Bool(bool v) { return {GgufType::kBool, v}; }
  static GgufValue String(std::string v) { return {GgufType::kString, std::move(v)}; }
  // Every element must have type `element_type` (checked by GgufWriter::Write). Arrays of arrays
  // are valid GGUF (gguf-py reads them) but llama.cpp refuses files that contain them.
  static GgufValue Array(GgufType element_type, std::vector<GgufValue> values) {
    return {GgufType::kArray,
            std::make_shared<GgufArray>(GgufArray{element_type, std::move(values)})};
  }
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;           // raw ggml type id as stored
  std::optional<core::DType> dtype; // nullopt for ggml types arle does not know
  std::vector<int64_t> shape;       // outermost-first (reversed from the file's ne[])
  uint64_t offset = 0;              // relative to the data section
  // Bytes of data. For a ggml type without a DType whose block size is not known either (see
  // GgmlTypeName), 0: such a tensor's range cannot be checked beyond its offset.
  uint64_t nbytes = 0;
};

// Maps ggml type ids to DType and back (nullopt when unknown / not representable).
std::optional<core::DType> DTypeFromGgml(uint32_t ggml_type);
std::optional<uint32_t> GgmlFromDType(core::DType dtype);
// "q4_k", "nvfp4 (no arle dtype)", "unknown ggml type 99": for messages.
std::string GgmlTypeName(uint32_t ggml_type);

// A parsed GGUF file. Copyable (copies share the mapping); thread-safe for concurrent reads.
class GgufFile {
 public:
  static core::StatusOr<GgufFile> Open(const std::string& path);
  // Parses from caller-owned bytes (used by Open and the fuzzer); `bytes` must outlive the result.
  // Errors name `name`: DataLoss for corrupt or truncated input, Unimplemented for valid files arle
  // does not read (GGUF v1, versions above 3, big-endian files), ResourceExhausted when the
  // metadata holds more than 2^24 values in all (the limit that bounds the memory one file costs).
  static core::StatusOr<GgufFile> Parse(std::span<const uint8_t> bytes, const std::string& name);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* Find(const std::string& key) const;
  // Typed lookups: NotFound when absent, InvalidArgument when the type does not fit.
  core::StatusOr<int64_t> GetInt(const std::string& key) const;
  core::StatusOr<double> GetFloat(const std::string& key) const;
  core::StatusOr<std::string> GetString(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(const std::string& name) const;
  // A read-only view into the mapping (writing through it faults). NotFound when absent,
  // Unimplemented (naming the ggml type id) for ggml types arle does not know.
  core::StatusOr<core::Tensor> GetTensor(const std::string& name) const;
  const std::string& path() const { return path_; }
  // Offset of the tensor data section from the start of the file.
  uint64_t data_offset() const { return data_offset_; }

 private:
  std::shared_ptr<core::MappedFile> file_;
  std::span<const uint8_t> bytes_;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// True for the tensors llama.cpp's converter (convert_hf_to_gguf.py) stores in F32 whatever the
// model's dtype: rank <= 1 (norm weights, biases), names ending in "_norm.weight", and names not
// ending in ".weight". ggml's CPU ops take only F32 there: a BF16 norm weight aborts llama.cpp's
// first forward ("binary_op: unsupported types").
bool GgufStoresAsF32(std::string_view name, int rank);

// Builds a GGUF v3 file in order: metadata as added, then tensors as added. The output is what
// llama.cpp's gguf.cpp accepts: tensor data contiguous in order, each tensor padded to the
// alignment with zeros, offsets aligned, names shorter than 64 bytes (GGML_MAX_NAME).
class GgufWriter {
 public:
  // REQUIRES: a power of two that fits in u32. Writes general.alignment (u32) when not 32.
  void SetAlignment(uint64_t alignment);
  // Adding a key that is already present replaces its value in place (as gguf-py does).
  void Add(const std::string& key, GgufValue value);
  void AddString(const std::string& key, std::string value);
  void AddU32(const std::string& key, uint32_t value);
  void AddI32(const std::string& key, int32_t value);
  void AddU64(const std::string& key, uint64_t value);
  void AddF32(const std::string& key, float value);
  void AddBool(const std::string& key, bool value);
  void AddStringArray(const std::string& key, const std::vector<std::string>& values);
  void AddF32Array(const std::string& key, const std::vector<float>& values);
  void AddI32Array(const std::string& key, const std::vector<int32_t>& values);
  // The tensor is copied at Write time; it must stay valid until then. Any DType with a ggml id.
  // A rank-0 tensor is stored (and reads back) as shape [1].
  void AddTensor(const std::string& name, const core::Tensor& tensor);
  // Copies the tensor's bytes now (for tensors computed on the fly, e.g. rope_freqs.weight).
  // REQUIRES: a contiguous CPU tensor with data.
  void AddTensorCopy(const std::string& name, const core::Tensor& tensor);
  // A weight of a model as llama.cpp's converter writes it: when GgufStoresAsF32(name, rank) and
  // the tensor is f16 or bf16, widened (exactly) to F32 now into storage the writer owns;
  // otherwise as AddTensor. Returns the tensor as it will be written. REQUIRES for the widening:
  // a contiguous CPU tensor with data.
  core::Tensor AddWeight(const std::string& name, const core::Tensor& tensor);
  // Writes atomically (temp + rename), streaming the tensor data. InvalidArgument for what the
  // format cannot hold (empty or duplicate names, long tensor names, dtypes without a ggml id,
  // non-contiguous or non-CPU tensors, values whose type tag does not match their contents).
  core::Status Write(const std::string& path) const;

 private:
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<std::pair<std::string, core::Tensor>> tensors_;
  std::vector<core::Buffer> owned_;  // storage of AddTensorCopy and widened AddWeight tensors
};

}  // namespace arle::io
