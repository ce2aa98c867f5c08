// Internal to arle_server (never installed, and the one server header that brings nlohmann): the
// JSON field readers the OpenAI request parsers share — a reader over one object that records the
// keys it was asked for (so the rest can be rejected by name), typed getters with OpenAI's error
// wording, and the parameter groups several endpoints accept (sampling, messages, tools).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "arle/core/status.h"
#include "arle/server/openai_request.h"

namespace arle::server::openai_fields {

// Ordered, so messages and tools reach the chat template with their keys in the client's order
// (templates that iterate over a dict must see what transformers sees).
using Json = nlohmann::ordered_json;
// nullopt = OK.
using MaybeError = std::optional<ApiError>;

// Returns the error from the enclosing function when `expr` (a MaybeError) holds one.
#define ARLE_API_TRY(expr)                                                       \
  do {                                                                           \
    if (::arle::server::openai_fields::MaybeError arle_api_e_ = (expr)) {        \
      return std::move(*arle_api_e_);                                            \
    }                                                                            \
  } while (false)

// 400 invalid_request_error naming `param`.
ApiError Invalid(std::string message, std::string param);
// "Invalid type for 'P': expected E, but got a string instead."
ApiError TypeMismatch(const std::string& param, std::string_view expected, const Json& got);
// "Missing required parameter: 'P'."
ApiError Missing(const std::string& param);
// "'P' is not supported by arle: WHY"
ApiError Unsupported(const std::string& param, std::string_view why);
// Integers, or decimals with an integral value (5.0), as pydantic's lax mode accepts them.
bool AsInt64(const Json& v, int64_t* out);
// A Status as an ApiError: ResourceExhausted -> 503, Internal -> 500, anything else -> 400
// naming `param` (the API's name for status.field(), or what the error is about when the Status
// names no field). When `param` is not the field's own name (an API that spells it differently:
// completions' `logprobs` for top_logprobs, Responses' `max_output_tokens`), the message says
// which parameter it is about first. The Status's hint is appended in parentheses.
ApiError FromStatus(const core::Status& status, std::string param);
// (runtime field, request parameter): a name an API spells differently from the runtime structs.
using ParamRename = std::pair<std::string_view, std::string_view>;
using ParamRenames = std::span<const ParamRename>;
// Each API's renames of the fields a runtime Status names (Status::field()); used both when
// parsing (CheckSampling) and for engine errors (Protocol::ParamName).
inline constexpr ParamRename kChatRenames[] = {{"prompt", "messages"}};
inline constexpr ParamRename kCompletionRenames[] = {{"top_logprobs", "logprobs"}};
inline constexpr ParamRename kResponsesRenames[] = {{"prompt", "input"},
                                                    {"max_tokens", "max_output_tokens"}};
// The request parameter an API calls a runtime field: its rename, else the field's own name.
std::string ParamFor(std::string_view field, ParamRenames renames);

// Reads the keys of one JSON object; keys never asked for are "unrecognized".
class ObjectReader {
 public:
  ObjectReader(const Json& object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {}

  std::string Param(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : fmt::format("{}.{}", prefix_, key);
  }

  // The value of `key`, or nullptr when it is absent or null (OpenAI treats null as "not given").
  const Json* Get(std::string_view key) {
    known_.emplace(key);
    auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  MaybeError Float(std::string_view key, std::optional<double>* out) {
    const Json* v = Get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) return TypeMismatch(Param(key), "a number", *v);
    *out = v->get<double>();
    return std::nullopt;
  }
  MaybeError Int(std::string_view key, std::optional<int64_t>* out) {
    const Json* v = Get(key);
    if (!v) return std::nullopt;
    int64_t i = 0;
    if (!AsInt64(*v, &i)) return TypeMismatch(Param(key), "an integer", *v);
    *out = i;
    return std::nullopt;
  }
  // An integer that fits in 32 bits (a value outside is named, not wrapped).
  MaybeError Int32(std::string_view key, std::optional<int32_t>* out) {
    std::optional<int64_t> v;
    if (MaybeError e = Int(key, &v)) return e;
    if (!v) return std::nullopt;
    if (*v < std::numeric_limits<int32_t>::min() || *v > std::numeric_limits<int32_t>::max()) {
      return Invalid(fmt::format("Invalid value for '{}': {} is out of range for a 32-bit integer.",
                                 Param(key), *v),
                     Param(key));
    }
    *out = static_cast<int32_t>(*v);
    return std::nullopt;
  }
  MaybeError Bool(std::string_view key, std::optional<bool>* out) {
    const Json* v = Get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) return TypeMismatch(Param(key), "a boolean", *v);
    *out = v->get<bool>();
    return std::nullopt;
  }
  MaybeError String(std::string_view key, std::optional<std::string>* out) {
    const Json* v = Get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) return TypeMismatch(Param(key), "a string", *v);
    *out = v->get<std::string>();
    return std::nullopt;
  }
  // A parameter arle does not implement: fine when absent or null, an error otherwise.
  MaybeError RejectIfGiven(std::string_view key, std::string_view why) {
    if (Get(key)) return Unsupported(Param(key), why);
    return std::nullopt;
  }

  // The first key that no getter asked for.
  MaybeError CheckUnknown() const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (!known_.count(it.key())) {
        const std::string param = Param(it.key());
        return Invalid(fmt::format("Unrecognized request argument supplied: {}", param), param);
      }
    }
    return std::nullopt;
  }

 private:
  const Json& object_;
  std::string prefix_;
  std::set<std::string, std::less<>> known_;
};


// The body as a JSON object (400 for malformed JSON or another type).
ApiOr<Json> ParseBody(std::string_view body);
// `model` must be the served one (404 model_not_found); `required`: absent is a 400.
MaybeError CheckModel(ObjectReader& r, const ParseContext& ctx, bool required);
// temperature, top_p, top_k, min_p, the three penalties, seed: types only (the ranges are
// SamplingParams::Validate's, see CheckSampling); and arle's `logprobs_mode` (vLLM's
// --logprobs-mode names, per request: raw_logprobs, processed_logprobs, or tempered_logprobs,
// runtime::LogprobsMode::kTempered, which an RL trainer's importance ratios use).
MaybeError ReadSampling(ObjectReader& r, runtime::SamplingParams* s);
// SamplingParams::Validate over what the request set, its error naming the API's parameter (see
// FromStatus and ParamFor). Each parser calls it once, after reading every sampling field.
MaybeError CheckSampling(const runtime::SamplingParams& s, const ParseContext& ctx,
                         ParamRenames renames = {});
// A JSON array of token ids in [0, n_vocab).
MaybeError ReadTokenIdList(const Json& v, const std::string& param, int32_t n_vocab,
                           std::vector<int32_t>* out);
// n (with_n), stop and stop_token_ids (with_stop), logit_bias (its keys and value types; the
// ranges are CheckSampling's), ignore_eos, stream, stream_options, user.
MaybeError ReadCommon(ObjectReader& r, const ParseContext& ctx, GenerationParams* p, bool with_n,
                      bool with_stop);
// An integer >= 1 under `key`.
MaybeError ReadMaxTokens(ObjectReader& r, std::string_view key, std::optional<int64_t>* out,
                         int64_t min = 1);

// Flattens OpenAI content (a string or a list of parts whose type is one of `text_types`) into one
// string, parts joined by "\n" as vLLM does for string-content templates.
MaybeError FlattenContent(const Json& content, const std::string& param,
                          std::initializer_list<std::string_view> text_types, std::string* out);
// Chat messages -> the array the chat template sees (see ChatRequest::messages_json).
MaybeError NormalizeMessages(const Json& messages, Json* out);
// Validates `tools` (function tools only) and collects their names.
MaybeError CheckTools(const Json& tools, std::vector<std::string>* names);
// chat_template_kwargs (an object) plus a top-level enable_thinking (which wins), as JSON text.
MaybeError ReadTemplateKwargs(ObjectReader& r, std::string* out);
// response_format: {"type": "text"} only.
MaybeError ReadResponseFormat(ObjectReader& r);
// store (false only) and metadata (not supported).
MaybeError ReadStoreAndMetadata(ObjectReader& r);

}  // namespace arle::server::openai_fields
