// Presets for `arle model init`: Hugging Face config.json contents for random-weight models of
// real shapes (qwen3-0.6b, qwen3-4b from the published configs) and a tiny one per architecture.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::convert {

// Returns config.json text for (arch, preset) with `overrides_json` (a JSON object of config.json
// fields, may be empty) merged on top. InvalidArgument for unknown pairs or bad override JSON.
core::StatusOr<std::string> PresetConfigJson(std::string_view arch, std::string_view preset,
                                             std::string_view overrides_json);
std::vector<std::string> PresetNames(std::string_view arch);

}  // namespace arle::convert
