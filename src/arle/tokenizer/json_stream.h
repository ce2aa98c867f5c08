// Internal: streaming (SAX) parse of tokenizer.json. model.vocab and model.merges (hundreds of
// thousands of entries) go straight into flat vectors; the rest of the document becomes a small DOM.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "arle/core/status.h"

namespace arle::tokenizer::internal {

struct StreamedMerge {
  std::string a, b;
  bool well_formed = true;  // false: a string merge without a separating space (kept whole in `a`)
};

struct StreamedModel {
  bool has_vocab = false;
  std::vector<std::pair<std::string, int64_t>> vocab;  // in file order
  bool has_merges = false;
  std::vector<StreamedMerge> merges;
};

// Parses `text`. DataLoss for invalid JSON (naming `source` and the byte offset), InvalidArgument
// when vocab/merges entries have the wrong types. `root` receives everything except model.vocab and
// model.merges (absent there when they were streamed).
core::Status ParseTokenizerJsonStreaming(std::string_view text, const std::string& source,
                                         nlohmann::json* root, StreamedModel* model);

}  // namespace arle::tokenizer::internal
