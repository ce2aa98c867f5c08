// JsonFields and the JSON helpers of json_fields.h. nlohmann's exceptions stay here: parse errors
// become Status values.
#include "arle/io/json_fields.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace arle::io {

using nlohmann::json;

std::string_view JsonTypeName(const json& j) {
  if (j.is_number_integer()) return "an integer";
  if (j.is_number_float()) return "a float";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_array()) return "an array";
  if (j.is_object()) return "an object";
  if (j.is_null()) return "null";
  return "an unknown JSON value";
}

std::optional<int64_t> JsonToInt(const json& v) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::trunc(d) == d && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

core::StatusOr<json> ParseJsonObject(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return core::DataLossError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  if (!j.is_object()) {
    return core::InvalidArgumentError(fmt::format("{}: expected a JSON object", source));
  }
  return j;
}

json TokenIdsToJson(const std::vector<int64_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}

bool JsonFields::Has(std::string_view key) const {
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

core::Status JsonFields::Missing(std::string_view key) const {
  return core::InvalidArgumentError(
      fmt::format("{}: missing required field \"{}{}\"", source_, prefix_, key));
}

core::Status JsonFields::WrongType(std::string_view key, std::string_view expected) const {
  return core::InvalidArgumentError(fmt::format("{}: field \"{}{}\" must be {}, got {}", source_,
                                                prefix_, key, expected,
                                                JsonTypeName(object_.at(key))));
}

core::StatusOr<int64_t> JsonFields::Int(std::string_view key) const {
  if (!Has(key)) return Missing(key);
  auto v = JsonToInt(object_.at(key));
  if (!v) return WrongType(key, "an integer that fits int64");
  return *v;
}

core::StatusOr<int64_t> JsonFields::IntOr(std::string_view key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return Int(key);
}

core::StatusOr<double> JsonFields::Number(std::string_view key) const {
  if (!Has(key)) return Missing(key);
  const json& v = object_.at(key);
  if (!v.is_number()) return WrongType(key, "a number");
  return v.get<double>();
}

core::StatusOr<double> JsonFields::NumberOr(std::string_view key, double fallback) const {
  if (!Has(key)) return fallback;
  return Number(key);
}

core::StatusOr<bool> JsonFields::BoolOr(std::string_view key, bool fallback) const {
  if (!Has(key)) return fallback;
  const json& v = object_.at(key);
  if (!v.is_boolean()) return WrongType(key, "a boolean");
  return v.get<bool>();
}

core::StatusOr<std::optional<std::string>> JsonFields::OptString(std::string_view key) const {
  if (!Has(key)) return std::optional<std::string>();
  const json& v = object_.at(key);
  if (!v.is_string()) return WrongType(key, "a string");
  return std::optional<std::string>(v.get<std::string>());
}

core::StatusOr<std::vector<int64_t>> JsonFields::IntList(std::string_view key) const {
  std::vector<int64_t> out;
  if (!Has(key)) return out;
  const json& v = object_.at(key);
  if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      auto id = JsonToInt(v[i]);
      if (!id) {
        return core::InvalidArgumentError(
            fmt::format("{}: field \"{}{}[{}]\" must be an integer, got {}", source_, prefix_, key,
                        i, JsonTypeName(v[i])));
      }
      out.push_back(*id);
    }
    return out;
  }
  ARLE_ASSIGN_OR_RETURN(int64_t id, Int(key));
  out.push_back(id);
  return out;
}

}  // namespace arle::io
