// JSON Lines input shared by the train/ data readers: a file's non-blank lines with their
// 1-based line numbers, so every error can name FILE:LINE.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::train {

struct JsonlLine {
  int64_t number = 0;  // 1-based line number in the file
  std::string text;    // without the line break (a trailing '\r' is dropped too)
};

// The non-blank lines of `path` (a file of JSON Lines, or .gz of one). NotFound/IoError naming
// the file when it cannot be read.
core::StatusOr<std::vector<JsonlLine>> ReadJsonlLines(const std::string& path);
// The non-blank lines of bytes already read.
std::vector<JsonlLine> SplitJsonlLines(std::string_view bytes);

}  // namespace arle::train
