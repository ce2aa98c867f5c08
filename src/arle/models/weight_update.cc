#include "arle/models/weight_update.h"

#include <span>

#include "arle/io/safetensors.h"

namespace arle::models {

core::StatusOr<std::string> EncodeWeightUpdate(const std::vector<NamedWeight>& weights,
                                               const std::string& config_json, int64_t step) {
  std::vector<io::NamedTensor> tensors;
  tensors.reserve(weights.size());
  for (const NamedWeight& w : weights) tensors.push_back({w.name, w.tensor});
  return io::EncodeSafetensors(tensors, {{"config", config_json}, {"step", std::to_string(step)}});
}

core::StatusOr<DecodedWeightUpdate> DecodeWeightUpdate(std::string_view bytes) {
  auto file = io::SafetensorsFile::Parse(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      "the weight update");
  if (!file.ok()) {
    return core::InvalidArgumentError(
        "the body must be a safetensors file of the model's weights: " + file.status().message());
  }
  DecodedWeightUpdate out;
  const auto config = file->metadata().find("config");
  if (config == file->metadata().end()) {
    return core::InvalidArgumentError(
        "the safetensors metadata has no \"config\" (the sender's config.json text)");
  }
  out.config_json = config->second;
  if (const auto step = file->metadata().find("step"); step != file->metadata().end()) {
    out.step = step->second;
  }
  out.weights.reserve(file->entries().size());
  for (const io::SafetensorsEntry& entry : file->entries()) {
    ARLE_ASSIGN_OR_RETURN(core::Tensor t, file->GetTensor(entry.name));
    out.weights.push_back({entry.name, t});
  }
  return out;
}

}  // namespace arle::models
