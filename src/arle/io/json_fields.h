// Typed reading of JSON files such as config.json and generation_config.json: parsing a JSON
// object and reading its fields with errors that name the file and the field. For .cc files only
// (it includes nlohmann/json.hpp; their library links nlohmann_json, header-only).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "arle/core/status.h"

namespace arle::io {

// "an integer", "a string", "null", ... for error messages.
std::string_view JsonTypeName(const nlohmann::json& j);

// An integer that fits int64. Some converters write integers as 4096.0; exact integral floats
// are accepted. nullopt for anything else.
std::optional<int64_t> JsonToInt(const nlohmann::json& v);

// Parses `text` as one JSON object. DataLoss for text that is not JSON, InvalidArgument for JSON
// that is not an object; both name `source`.
core::StatusOr<nlohmann::json> ParseJsonObject(std::string_view text, const std::string& source);

// Token ids as transformers writes bos/eos_token_id: null for none, an int for one, else a list.
nlohmann::json TokenIdsToJson(const std::vector<int64_t>& ids);

// Typed access to the fields of one JSON object. Errors are InvalidArgument naming `source` and
// the field as `prefix` + key ("rope_scaling.factor"). `object` and `source` must outlive this.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, const std::string& source, std::string prefix = {})
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  // Present and not null.
  bool Has(std::string_view key) const;

  // "SOURCE: missing required field "KEY"".
  core::Status Missing(std::string_view key) const;
  // "SOURCE: field "KEY" must be EXPECTED, got TYPE". REQUIRES: the key is present.
  core::Status WrongType(std::string_view key, std::string_view expected) const;

  // Required (Missing when absent or null) and optional (`fallback` when absent or null) fields.
  core::StatusOr<int64_t> Int(std::string_view key) const;
  core::StatusOr<int64_t> IntOr(std::string_view key, int64_t fallback) const;
  core::StatusOr<double> Number(std::string_view key) const;
  core::StatusOr<double> NumberOr(std::string_view key, double fallback) const;
  core::StatusOr<bool> BoolOr(std::string_view key, bool fallback) const;
  core::StatusOr<std::optional<std::string>> OptString(std::string_view key) const;
  // An int, a list of ints, or null/absent (empty).
  core::StatusOr<std::vector<int64_t>> IntList(std::string_view key) const;

  const nlohmann::json& object() const { return object_; }
  const std::string& source() const { return source_; }

 private:
  const nlohmann::json& object_;
  const std::string& source_;
  std::string prefix_;
};

}  // namespace arle::io
