// Debug dump of named activations (ARLE_DUMP_DIR / LoadOptions::dump_dir).
#include "arle/models/tensor_dump.h"

#include <bit>
#include <string_view>

#include <nlohmann/json.hpp>

#include "arle/core/file_util.h"

namespace arle::models {

void TensorDump::Begin(int64_t forward_index, int64_t n_past, int64_t n_tokens) {
  forward_index_ = forward_index;
  n_past_ = n_past;
  n_tokens_ = n_tokens;
  entries_.clear();
  status_ = core::OkStatus();
  if (enabled()) status_ = core::MakeDirs(dir_);
}

void TensorDump::Add(const std::string& name, const core::Tensor& t) {
  if (!enabled() || !status_.ok()) return;
  ARLE_CHECK(t.dtype() == core::DType::kF32 && t.is_contiguous()) << name << " " << t.ToString();
  static_assert(std::endian::native == std::endian::little, "dump files are little-endian");
  const std::string_view bytes(static_cast<const char*>(t.data()), static_cast<size_t>(t.nbytes()));
  status_ = core::WriteFileAtomic(core::JoinPath(dir_, name + ".f32"), bytes);
  entries_.push_back({name, std::vector<int64_t>(t.shape().begin(), t.shape().end())});
}

core::Status TensorDump::End() {
  if (!enabled()) return core::OkStatus();
  if (status_.ok()) {
    nlohmann::json j;
    j["forward_index"] = forward_index_;
    j["n_past"] = n_past_;
    j["n_tokens"] = n_tokens_;
    j["tensors"] = nlohmann::json::array();
    for (const Entry& e : entries_) {
      j["tensors"].push_back(
          {{"name", e.name}, {"file", e.name + ".f32"}, {"dtype", "f32"}, {"shape", e.shape}});
    }
    status_ = core::WriteFileAtomic(core::JoinPath(dir_, "manifest.json"), j.dump(1));
  }
  return status_.ok() ? status_ : status_.WithContext("dumping tensors to " + dir_);
}

}  // namespace arle::models
