// GGUF v3 (also v2) reading and writing. Layout: magic "GGUF", u32 version, u64 tensor count,
// u64 metadata count, metadata key/value pairs, tensor infos (name, dims innermost-first, ggml
// type, offset), padding to `general.alignment` (default 32), then the tensor data. Tensor views
// point into the mapped file. Every count, length and offset is validated against the file size.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "arle/core/mapped_file.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"

namespace arle::io {

// GGUF metadata value types (the numeric values are the on-disk ids).
enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

struct GgufValue;
struct GgufArray {
  GgufType element_type = GgufType::kU8;
  std::vector<GgufValue> values;
};
struct GgufValue {
  GgufType type = GgufType::kU8;
  // Integers are widened to int64/uint64, floats to double; the original type is in `type`.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>> value;

  std::optional<int64_t> AsInt() const;      // any integer type (u64 above INT64_MAX -> nullopt)
  std::optional<double> AsFloat() const;     // any numeric type
  std::optional<bool> AsBool() const;
  const std::string* AsString() const;
  const GgufArray* AsArray() const;
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;           // raw ggml type id as stored
  std::optional<core::DType> dtype; // nullopt for ggml types arle does not know
  std::vector<int64_t> shape;       // outermost-first (reversed from the file's ne[])
  uint64_t offset = 0;              // relative to the data section
  uint64_t nbytes = 0;
};

// Maps ggml type ids to DType and back (nullopt when unknown / not representable).
std::optional<core::DType> DTypeFromGgml(uint32_t ggml_type);
std::optional<uint32_t> GgmlFromDType(core::DType dtype);

class GgufFile {
 public:
  static core::StatusOr<GgufFile> Open(const std::string& path);
  // Parses from caller-owned bytes (used by Open and the fuzzer); `bytes` must outlive the result.
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
  // A view into the mapping. Unimplemented for ggml types arle does not know.
  core::StatusOr<core::Tensor> GetTensor(const std::string& name) const;
  const std::string& path() const { return path_; }

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

// Builds a GGUF v3 file in order: metadata as added, then tensors as added.
class GgufWriter {
 public:
  void SetAlignment(uint64_t alignment);  // writes general.alignment when not 32
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
  void AddTensor(const std::string& name, const core::Tensor& tensor);
  // Writes atomically (temp + rename).
  core::Status Write(const std::string& path) const;

 private:
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<std::pair<std::string, core::Tensor>> tensors_;
};

}  // namespace arle::io
