// Hugging Face generation_config.json: the bos/eos token ids a model's generation stops on (every
// family reads them the same way; sampling defaults in the file are not used).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::io {

struct GenerationConfig {
  std::optional<int64_t> bos_token_id;  // present when the file has a non-null bos_token_id
  std::vector<int64_t> eos_token_ids;   // eos_token_id as written (an int or a list), file order
};

// Parses generation_config.json text. eos_token_id may be an int, a list of ints or null/absent;
// bos_token_id an int or null/absent; other fields are ignored. Errors name `source` (and the
// field): DataLoss for text that is not JSON, InvalidArgument for a non-object or a wrong type.
// Ranges are the caller's to check.
core::StatusOr<GenerationConfig> ParseGenerationConfig(std::string_view json_text,
                                                       const std::string& source);

// generation_config.json text: bos_token_id when >= 0, eos_token_id when there are ids (an int
// for one, a list for several), as transformers writes them.
std::string GenerationConfigJson(int64_t bos_token_id, const std::vector<int64_t>& eos_token_ids);

}  // namespace arle::io
