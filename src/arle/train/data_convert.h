// Conversion of common instruction/chat dataset layouts (alpaca, dolly, sharegpt, chat) to
// arle's canonical chat JSONL: {"messages": [{"role", "content"}, ...], "tools"?: [...]}.
#pragma once

#include <nlohmann/json_fwd.hpp>  // declarations only; callers building JSON include json.hpp

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::train {

enum class DatasetFormat {
  kChat,      // {"messages": [{"role", "content", ...}], "tools"?}: validated, passed through
  kAlpaca,    // {"instruction", "input"?, "output", "system"?}
  kDolly,     // {"instruction", "context"?, "response"}
  kShareGpt,  // {"conversations": [{"from": "system"|"human"|"gpt", "value"}], "system"?}
};

// "chat", "alpaca", "dolly", "sharegpt".
core::StatusOr<DatasetFormat> ParseDatasetFormat(std::string_view name);

// Converts one record. The user turn of alpaca/dolly is the instruction, followed by "\n\n" and
// the input/context when that is non-empty. sharegpt roles: human/user -> user, gpt/assistant/
// chatgpt -> assistant, system -> system; a top-level "system" string becomes a first system
// message. chat keeps each message's fields (tool_calls, reasoning_content, ...) and "tools".
// InvalidArgument (naming the field) for a record that is not an object, a missing or non-string
// required field, an unknown role, or a conversation without an assistant message.
core::StatusOr<nlohmann::ordered_json> ConvertRecord(DatasetFormat format,
                                                     const nlohmann::ordered_json& record);

struct ConvertIssue {
  int64_t line = 0;     // 1-based line in the input
  std::string message;  // why the record was skipped
};

struct ConvertResult {
  std::string jsonl;                 // converted records, one JSON object per line
  int64_t n_converted = 0;
  std::vector<ConvertIssue> skipped;  // bad records, in line order (never dropped silently)
};

// Converts every non-blank line of `path` (JSON Lines; a file holding one JSON array of records
// is accepted too, with record i reported as line i + 1 of the array). Bad records are skipped
// and listed. Errors: NotFound/IoError for an unreadable file.
core::StatusOr<ConvertResult> ConvertDatasetFile(const std::string& path, DatasetFormat format);

}  // namespace arle::train
