// The wire form of a weight update (an RL trainer pushing its weights to a rollout server,
// POST /v1/admin/weights): one safetensors file holding every weight by its Hugging Face name,
// with the sender's config.json text under the metadata key "config" and, optionally, its step
// under "step". Model::SetWeights applies a decoded update.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"
#include "arle/models/model.h"

namespace arle::models {

struct DecodedWeightUpdate {
  std::string config_json;
  std::optional<std::string> step;
  std::vector<NamedWeight> weights;  // views into the decoded bytes
};

// The update's bytes. InvalidArgument for duplicate names or tensors safetensors cannot store.
core::StatusOr<std::string> EncodeWeightUpdate(const std::vector<NamedWeight>& weights,
                                               const std::string& config_json, int64_t step);

// Parses `bytes`, which must outlive the result (its tensors view them). InvalidArgument naming
// the problem for bytes that are no safetensors file or lack the "config" metadata.
core::StatusOr<DecodedWeightUpdate> DecodeWeightUpdate(std::string_view bytes);

}  // namespace arle::models
