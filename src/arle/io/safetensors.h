// safetensors reading (single file and sharded `model.safetensors.index.json`) and writing.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}
// plus optional "__metadata__" (string -> string), then the data; offsets are relative to the end
// of the header. Readers map the file and hand out Tensor views into the mapping (no copies).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "arle/core/mapped_file.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"

namespace arle::io {

struct SafetensorsEntry {
  std::string name;
  core::DType dtype;
  std::vector<int64_t> shape;
  size_t offset = 0;  // from the start of the file
  size_t nbytes = 0;
};

// One mapped .safetensors file. Every entry is validated at Open: known dtype, shape product
// matching the byte range, ranges inside the file, no overflow. Errors name the file.
class SafetensorsFile {
 public:
  static core::StatusOr<SafetensorsFile> Open(const std::string& path);
  // Parses from memory (used by Open and the fuzzer); `name` is used in error messages. The
  // returned object references `bytes`, which must outlive it.
  static core::StatusOr<SafetensorsFile> Parse(std::span<const uint8_t> bytes,
                                               const std::string& name);

  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsEntry* Find(const std::string& name) const;
  // A view into the mapping. NotFound when absent.
  core::StatusOr<core::Tensor> GetTensor(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  std::shared_ptr<core::MappedFile> file_;  // null when parsed from caller-owned bytes
  std::span<const uint8_t> bytes_;
  std::string path_;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model: a directory with model.safetensors, or model.safetensors.index.json
// and its shards, or a single .safetensors path.
class SafetensorsModel {
 public:
  static core::StatusOr<SafetensorsModel> Open(const std::string& path);
  std::vector<std::string> TensorNames() const;
  bool Has(const std::string& name) const;
  core::StatusOr<core::Tensor> GetTensor(const std::string& name) const;

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> which_file_;
};

struct NamedTensor {
  std::string name;
  core::Tensor tensor;  // contiguous, f32/f16/bf16/i*/u8/bool
};

// Writes one .safetensors file atomically (temp + rename); tensors are stored in the given order,
// each aligned to 8 bytes. `metadata` goes into "__metadata__" (e.g. {"format": "pt"}).
core::Status WriteSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// safetensors dtype strings ("F32", "BF16", ...) <-> DType.
core::StatusOr<core::DType> DTypeFromSafetensors(std::string_view name);
core::StatusOr<std::string> DTypeToSafetensors(core::DType dtype);

}  // namespace arle::io
