// Dataset layout conversion to canonical chat JSONL (see data_convert.h).
#include "arle/train/data_convert.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "arle/io/compressed.h"
#include "arle/io/json_fields.h"
#include "arle/train/jsonl.h"

namespace arle::train {
namespace {

using Json = nlohmann::ordered_json;

core::StatusOr<std::string> RequiredString(const Json& record, const char* key) {
  const auto it = record.find(key);
  if (it == record.end() || it->is_null()) {
    return core::InvalidArgumentError(std::string("missing field \"") + key + "\"");
  }
  if (!it->is_string()) {
    return core::InvalidArgumentError(std::string("field \"") + key + "\" must be a string");
  }
  return it->get<std::string>();
}

core::StatusOr<std::string> OptionalString(const Json& record, const char* key) {
  const auto it = record.find(key);
  if (it == record.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return core::InvalidArgumentError(std::string("field \"") + key + "\" must be a string");
  }
  return it->get<std::string>();
}

Json Message(std::string role, std::string content) {
  return Json{{"role", std::move(role)}, {"content", std::move(content)}};
}

// Instruction-style records: [system?], user (instruction + "\n\n" + extra), assistant.
core::StatusOr<Json> FromInstruction(const Json& record, const char* extra_key,
                                     const char* answer_key) {
  ARLE_ASSIGN_OR_RETURN(std::string instruction, RequiredString(record, "instruction"));
  ARLE_ASSIGN_OR_RETURN(std::string extra, OptionalString(record, extra_key));
  ARLE_ASSIGN_OR_RETURN(std::string answer, RequiredString(record, answer_key));
  ARLE_ASSIGN_OR_RETURN(std::string system, OptionalString(record, "system"));
  Json messages = Json::array();
  if (!system.empty()) messages.push_back(Message("system", system));
  messages.push_back(Message("user", extra.empty() ? instruction : instruction + "\n\n" + extra));
  messages.push_back(Message("assistant", answer));
  return Json{{"messages", std::move(messages)}};
}

core::StatusOr<Json> FromShareGpt(const Json& record) {
  const auto conv = record.find("conversations");
  if (conv == record.end() || !conv->is_array()) {
    return core::InvalidArgumentError("missing \"conversations\" array");
  }
  ARLE_ASSIGN_OR_RETURN(std::string system, OptionalString(record, "system"));
  Json messages = Json::array();
  if (!system.empty()) messages.push_back(Message("system", system));
  for (size_t i = 0; i < conv->size(); ++i) {
    const Json& turn = (*conv)[i];
    const std::string where = "conversations[" + std::to_string(i) + "]";
    if (!turn.is_object()) return core::InvalidArgumentError(where + " must be an object");
    auto from = RequiredString(turn, "from");
    if (!from.ok()) return from.status().WithContext(where);
    auto value = RequiredString(turn, "value");
    if (!value.ok()) return value.status().WithContext(where);
    std::string role;
    if (*from == "human" || *from == "user") {
      role = "user";
    } else if (*from == "gpt" || *from == "assistant" || *from == "chatgpt") {
      role = "assistant";
    } else if (*from == "system") {
      role = "system";
    } else {
      return core::InvalidArgumentError(where + ": unknown \"from\" value \"" + *from + "\"",
                                        "expected human, gpt or system");
    }
    messages.push_back(Message(std::move(role), std::move(value).value()));
  }
  return Json{{"messages", std::move(messages)}};
}

core::StatusOr<Json> FromChat(const Json& record) {
  const auto messages = record.find("messages");
  if (messages == record.end() || !messages->is_array()) {
    return core::InvalidArgumentError("missing \"messages\" array");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return core::InvalidArgumentError(where + " must be an object");
    auto role = RequiredString(m, "role");
    if (!role.ok()) return role.status().WithContext(where);
    const auto content = m.find("content");
    const bool has_calls = m.contains("tool_calls");
    if ((content == m.end() || content->is_null()) && !has_calls) {
      return core::InvalidArgumentError(where + ": missing field \"content\"");
    }
    if (content != m.end() && !content->is_null() && !content->is_string() &&
        !content->is_array()) {
      return core::InvalidArgumentError(where + ": \"content\" must be a string or a list of parts");
    }
  }
  Json out{{"messages", *messages}};
  if (record.contains("tools") && !record["tools"].is_null()) {
    if (!record["tools"].is_array()) return core::InvalidArgumentError("\"tools\" must be an array");
    out["tools"] = record["tools"];
  }
  return out;
}

}  // namespace

core::StatusOr<DatasetFormat> ParseDatasetFormat(std::string_view name) {
  if (name == "chat") return DatasetFormat::kChat;
  if (name == "alpaca") return DatasetFormat::kAlpaca;
  if (name == "dolly") return DatasetFormat::kDolly;
  if (name == "sharegpt") return DatasetFormat::kShareGpt;
  return core::InvalidArgumentError("unknown dataset format \"" + std::string(name) + "\"",
                                    "use chat, alpaca, dolly or sharegpt");
}

core::StatusOr<Json> ConvertRecord(DatasetFormat format, const Json& record) {
  if (!record.is_object()) {
    return core::InvalidArgumentError("a record must be a JSON object, got " +
                                      std::string(io::JsonTypeName(nlohmann::json(record))));
  }
  core::StatusOr<Json> out = core::InternalError("unhandled format");
  switch (format) {
    case DatasetFormat::kChat: out = FromChat(record); break;
    case DatasetFormat::kAlpaca: out = FromInstruction(record, "input", "output"); break;
    case DatasetFormat::kDolly: out = FromInstruction(record, "context", "response"); break;
    case DatasetFormat::kShareGpt: out = FromShareGpt(record); break;
  }
  if (!out.ok()) return out;
  bool has_assistant = false;
  for (const Json& m : (*out)["messages"]) has_assistant |= m.value("role", "") == "assistant";
  if (!has_assistant) {
    return core::InvalidArgumentError("the conversation has no assistant message");
  }
  return out;
}

core::StatusOr<ConvertResult> ConvertDatasetFile(const std::string& path, DatasetFormat format) {
  ConvertResult result;
  std::vector<std::pair<int64_t, Json>> records;
  std::vector<JsonlLine> lines;
  // A whole-file JSON array (alpaca_data.json, dolly's exports) or JSON Lines.
  ARLE_ASSIGN_OR_RETURN(std::string bytes, io::ReadMaybeGzipFile(path));
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && bytes[first] == '[') {
    Json all = Json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    if (all.is_discarded()) {
      return core::DataLossError(path + ": starts with '[' but is not a valid JSON array");
    }
    for (size_t i = 0; i < all.size(); ++i) {
      records.emplace_back(static_cast<int64_t>(i + 1), std::move(all[i]));
    }
  } else {
    lines = SplitJsonlLines(bytes);
    for (JsonlLine& line : lines) {
      Json record = Json::parse(line.text, nullptr, /*allow_exceptions=*/false);
      if (record.is_discarded()) {
        result.skipped.push_back({line.number, "not valid JSON"});
        continue;
      }
      records.emplace_back(line.number, std::move(record));
    }
  }
  for (auto& [number, record] : records) {
    auto converted = ConvertRecord(format, record);
    if (!converted.ok()) {
      result.skipped.push_back({number, converted.status().message()});
      continue;
    }
    result.jsonl += converted->dump(-1, ' ', false, Json::error_handler_t::replace);
    result.jsonl += '\n';
    ++result.n_converted;
  }
  std::stable_sort(result.skipped.begin(), result.skipped.end(),
                   [](const ConvertIssue& a, const ConvertIssue& b) { return a.line < b.line; });
  return result;
}

}  // namespace arle::train
