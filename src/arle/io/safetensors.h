// safetensors reading (single file and sharded `model.safetensors.index.json`) and writing (to a
// file or to memory).
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}
// plus optional "__metadata__" (string -> string), then the data; offsets are relative to the end
// of the header. Readers map the file and hand out Tensor views into the mapping (no copies).
// docs/formats.md lists the checks and how they compare with the reference implementation.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
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
// matching the byte range, ranges inside the file, no overflow. Errors name the file: DataLoss for
// corrupt input, Unimplemented for dtypes safetensors knows but arle does not (U16, F8_E4M3, ...).
// Overlapping ranges, gaps and trailing bytes are accepted (the reference writer never produces
// them, and reading them is harmless). Copyable (copies share the mapping); thread-safe to read.
class SafetensorsFile {
 public:
  static core::StatusOr<SafetensorsFile> Open(const std::string& path);
  // Parses from memory (used by Open and the fuzzer); `name` is used in error messages. The
  // returned object references `bytes`, which must outlive it.
  static core::StatusOr<SafetensorsFile> Parse(std::span<const uint8_t> bytes,
                                               const std::string& name);

  // In data order (by offset, then name).
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsEntry* Find(const std::string& name) const;
  // A read-only view into the mapping (writing through it faults). NotFound when absent,
  // Unimplemented for tensors of rank > 4 (core::kMaxTensorRank).
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

// All tensors of a model: a directory with model.safetensors, else model.safetensors.index.json
// and its shards, else exactly one other *.safetensors file (transformers' order); or a
// .safetensors path; or an index .json path. Only tensors named in the index's weight_map are
// exposed. Shard names in the index
// are resolved relative to its directory and may not be absolute or contain "..". Every tensor the
// index names must be in its shard (DataLoss otherwise).
class SafetensorsModel {
 public:
  static core::StatusOr<SafetensorsModel> Open(const std::string& path);
  std::vector<std::string> TensorNames() const;  // sorted
  bool Has(const std::string& name) const;
  const SafetensorsEntry* Find(const std::string& name) const;
  core::StatusOr<core::Tensor> GetTensor(const std::string& name) const;
  const std::vector<SafetensorsFile>& files() const { return files_; }

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> which_file_;
};

struct NamedTensor {
  std::string name;
  core::Tensor tensor;  // contiguous, f32/f16/bf16/f64/i8/i16/i32/i64/u8/bool
};

// Writes one .safetensors file atomically (temp + rename), in the layout the reference
// implementation produces and requires: the header is padded with spaces to a multiple of 8 bytes,
// and tensors are stored back to back with no gaps (its loader rejects gaps), ordered by element
// size, largest first, keeping the given order among equal sizes, so each tensor is aligned to its
// element size. `metadata` goes into "__metadata__"; "format": "pt" is added when absent because
// transformers refuses files without it. InvalidArgument for duplicate, empty or non-UTF-8 names,
// dtypes safetensors cannot store, and non-contiguous or non-CPU tensors.
core::Status WriteSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Returns the bytes WriteSafetensors would write for the same arguments (same layout and checks),
// for sending a model's weights without a file (e.g. to a rollout server). Holds the whole file in
// memory; the errors name "encoding safetensors" instead of a path.
core::StatusOr<std::string> EncodeSafetensors(
    const std::vector<NamedTensor>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// safetensors dtype strings ("F32", "BF16", ...) <-> DType. DTypeFromSafetensors: Unimplemented for
// dtypes of the format arle does not support, InvalidArgument for strings that are no dtype.
core::StatusOr<core::DType> DTypeFromSafetensors(std::string_view name);
core::StatusOr<std::string> DTypeToSafetensors(core::DType dtype);

}  // namespace arle::io
