// TensorDump: writes named f32 activations of a forward as raw little-endian `<name>.f32` files
// plus a manifest.json ({"tensors": [{"name", "file", "shape", "dtype"}], ...}) so they can be
// diffed layer by layer against PyTorch. Disabled (a no-op) when the directory is empty.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arle/core/status.h"
#include "arle/core/tensor.h"

namespace arle::models {

class TensorDump {
 public:
  explicit TensorDump(std::string dir) : dir_(std::move(dir)) {}
  bool enabled() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }

  // Starts a forward: forgets the previous manifest (files of the same name are overwritten).
  void Begin(int64_t forward_index, int64_t n_past, int64_t n_tokens);
  // Writes `t` (f32, contiguous) as <dir>/<name>.f32 and records it. The first failure is kept
  // and returned by End; later writes are skipped.
  void Add(const std::string& name, const core::Tensor& t);
  // Writes manifest.json; returns the first error of this forward.
  core::Status End();

 private:
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
  };
  std::string dir_;
  int64_t forward_index_ = 0, n_past_ = 0, n_tokens_ = 0;
  std::vector<Entry> entries_;
  core::Status status_;
};

}  // namespace arle::models
