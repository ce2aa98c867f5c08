// JSON field readers shared by the OpenAI request parsers: errors, the object reader's body and
// model checks, sampling and the other parameter groups (see openai_fields.h).
#include "arle/server/openai_fields.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "arle/runtime/stop_strings.h"

namespace arle::server::openai_fields {

ApiError Invalid(std::string message, std::string param) {
  ApiError e;
  e.status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  e.type = "invalid_request_error";
  return e;
}

namespace {

std::string_view JsonTypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a decimal";
    default:
      return "an unsupported value";
  }
}

}  // namespace

ApiError TypeMismatch(const std::string& param, std::string_view expected, const Json& got) {
  return Invalid(fmt::format("Invalid type for '{}': expected {}, but got {} instead.", param,
                             expected, JsonTypeName(got)),
                 param);
}

ApiError Missing(const std::string& param) {
  return Invalid(fmt::format("Missing required parameter: '{}'.", param), param);
}

ApiError Unsupported(const std::string& param, std::string_view why) {
  return Invalid(fmt::format("'{}' is not supported by arle: {}", param, why), param);
}

// Integers, or decimals with an integral value (5.0), as pydantic's lax mode accepts them.
bool AsInt64(const Json& v, int64_t* out) {
  if (v.is_number_integer() && !v.is_number_unsigned()) {
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::floor(d) != d || !(std::fabs(d) < 9.2e18)) return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}


ApiError FromStatus(const core::Status& status, std::string param) {
  ApiError e;
  e.message = status.message();
  if (status.code() == core::StatusCode::kResourceExhausted) {
    e.status = 503;
    return e;
  }
  if (status.code() == core::StatusCode::kInternal) {
    e.status = 500;
    return e;
  }
  e.status = 400;
  if (!status.field().empty() && !param.empty() && param != status.field()) {
    e.message = fmt::format("Invalid value for '{}': {}", param, e.message);
  }
  if (!status.hint().empty()) e.message += fmt::format(" ({})", status.hint());
  e.param = std::move(param);
  e.type = "invalid_request_error";
  return e;
}

std::string ParamFor(std::string_view field, ParamRenames renames) {
  for (const auto& [from, to] : renames) {
    if (field == from) return std::string(to);
  }
  return std::string(field);
}

ApiOr<Json> ParseBody(std::string_view body) {
  Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    // Say where it broke: nlohmann's exception text has the byte offset. Any json::exception:
    // a number too large for a double is out_of_range (406), not a parse_error (found by
    // fuzz_openai_request; it escaped here and became a 500).
    std::string detail;
    try {
      Json again = Json::parse(body);
    } catch (const Json::exception& e) {
      detail = e.what();
    }
    return Invalid(fmt::format("We could not parse the JSON body of your request. The API expects "
                               "a JSON payload, but what was sent was not valid JSON: {}",
                               detail),
                   "");
  }
  if (!json.is_object()) {
    return Invalid(fmt::format("The request body must be a JSON object, got {}.", JsonTypeName(json)),
                   "");
  }
  return json;
}

MaybeError CheckModel(ObjectReader& r, const ParseContext& ctx, bool required) {
  std::optional<std::string> model;
  ARLE_API_TRY(r.String("model", &model));
  if (!model) {
    if (required) return Missing("model");
    return std::nullopt;
  }
  if (*model != ctx.served_model_name) {
    ApiError e;
    e.status = 404;
    e.message = fmt::format("The model `{}` does not exist. This server serves `{}`.", *model,
                            ctx.served_model_name);
    e.param = "model";
    e.code = "model_not_found";
    e.type = "invalid_request_error";
    return e;
  }
  return std::nullopt;
}

// Sampling knobs shared by every generation endpoint (OpenAI names plus vLLM's extensions).
MaybeError ReadSampling(ObjectReader& r, runtime::SamplingParams* s) {
  const std::pair<std::string_view, float*> floats[] = {
      {"temperature", &s->temperature},
      {"top_p", &s->top_p},
      {"min_p", &s->min_p},
      {"presence_penalty", &s->presence_penalty},
      {"frequency_penalty", &s->frequency_penalty},
      {"repetition_penalty", &s->repetition_penalty}};
  for (const auto& [key, field] : floats) {
    std::optional<double> v;
    ARLE_API_TRY(r.Float(key, &v));
    if (v) *field = static_cast<float>(*v);
  }
  std::optional<int32_t> top_k;
  ARLE_API_TRY(r.Int32("top_k", &top_k));
  if (top_k) s->top_k = *top_k;
  // OpenAI's seed is any 64-bit integer; the RNG takes its two's-complement bits.
  std::optional<int64_t> seed;
  ARLE_API_TRY(r.Int("seed", &seed));
  if (seed) s->seed = static_cast<uint64_t>(*seed);
  // vLLM's --logprobs-mode names, per request (an arle extension): what `logprobs` describe.
  std::optional<std::string> mode;
  ARLE_API_TRY(r.String("logprobs_mode", &mode));
  if (mode) {
    if (*mode == "raw_logprobs") {
      s->logprobs_mode = runtime::LogprobsMode::kRaw;
    } else if (*mode == "processed_logprobs") {
      s->logprobs_mode = runtime::LogprobsMode::kProcessed;
    } else if (*mode == "tempered_logprobs") {
      s->logprobs_mode = runtime::LogprobsMode::kTempered;
    } else {
      return Invalid(fmt::format("Invalid 'logprobs_mode': '{}' (expected raw_logprobs, "
                                 "processed_logprobs or tempered_logprobs).",
                                 *mode),
                     "logprobs_mode");
    }
  }
  return std::nullopt;
}

MaybeError CheckSampling(const runtime::SamplingParams& s, const ParseContext& ctx,
                         ParamRenames renames) {
  const core::Status st = s.Validate(ctx.n_vocab);
  if (st.ok()) return std::nullopt;
  return FromStatus(st, ParamFor(st.field(), renames));
}

MaybeError ReadTokenIdList(const Json& v, const std::string& param, int32_t n_vocab,
                           std::vector<int32_t>* out) {
  if (!v.is_array()) return TypeMismatch(param, "an array of token ids", v);
  out->clear();
  for (size_t k = 0; k < v.size(); ++k) {
    int64_t id = 0;
    if (!AsInt64(v[k], &id)) {
      return TypeMismatch(fmt::format("{}[{}]", param, k), "an integer", v[k]);
    }
    if (id < 0 || id >= n_vocab) {
      return Invalid(fmt::format("{}[{}] = {} is not a token id of this model (vocabulary size {})",
                                 param, k, id, n_vocab),
                     param);
    }
    out->push_back(static_cast<int32_t>(id));
  }
  return std::nullopt;
}

// n, stop, stop_token_ids, logit_bias, ignore_eos, stream, stream_options, user.
MaybeError ReadCommon(ObjectReader& r, const ParseContext& ctx, GenerationParams* p, bool with_n,
                      bool with_stop) {
  if (with_n) {
    std::optional<int64_t> n;
    ARLE_API_TRY(r.Int("n", &n));
    if (n) {
      if (*n < 1 || *n > kMaxSamples) {
        return Invalid(fmt::format("n must be in [1, {}], got {}", kMaxSamples, *n), "n");
      }
      p->n = static_cast<int>(*n);
    }
  }
  if (with_stop) {
    if (const Json* stop = r.Get("stop")) {
      if (stop->is_string()) {
        p->stop_strings = {stop->get<std::string>()};
      } else if (stop->is_array()) {
        for (size_t k = 0; k < stop->size(); ++k) {
          if (!(*stop)[k].is_string()) {
            return TypeMismatch(fmt::format("stop[{}]", k), "a string", (*stop)[k]);
          }
          p->stop_strings.push_back((*stop)[k].get<std::string>());
        }
      } else {
        return TypeMismatch("stop", "a string or an array of strings", *stop);
      }
      core::Status st = runtime::ValidateStopStrings(p->stop_strings);
      if (!st.ok()) return Invalid(fmt::format("Invalid 'stop': {}", st.message()), "stop");
    }
    if (const Json* ids = r.Get("stop_token_ids")) {
      ARLE_API_TRY(ReadTokenIdList(*ids, "stop_token_ids", ctx.n_vocab, &p->stop_token_ids));
    }
  }
  if (const Json* bias = r.Get("logit_bias")) {
    if (!bias->is_object()) return TypeMismatch("logit_bias", "an object", *bias);
    for (auto it = bias->begin(); it != bias->end(); ++it) {
      const std::string& key = it.key();
      int32_t id = -1;
      auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size() || key.empty()) {
        return Invalid(fmt::format("Invalid key in 'logit_bias': '{}' is not a token id (keys are "
                                   "token ids written as strings, e.g. \"1234\")",
                                   key),
                       "logit_bias");
      }
      if (!it.value().is_number()) {
        return TypeMismatch(fmt::format("logit_bias.{}", key), "a number", it.value());
      }
      // A value beyond float's range becomes inf, which CheckSampling's range refuses.
      p->sampling.logit_bias.emplace_back(id, static_cast<float>(it.value().get<double>()));
    }
  }
  std::optional<bool> b;
  ARLE_API_TRY(r.Bool("ignore_eos", &b));
  if (b) p->ignore_eos = *b;
  b.reset();
  ARLE_API_TRY(r.Bool("stream", &b));
  if (b) p->stream = *b;
  if (const Json* so = r.Get("stream_options")) {
    if (!so->is_object()) return TypeMismatch("stream_options", "an object", *so);
    if (!p->stream) {
      return Invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                     "stream_options");
    }
    ObjectReader sr(*so, "stream_options");
    std::optional<bool> include_usage;
    ARLE_API_TRY(sr.Bool("include_usage", &include_usage));
    p->include_usage = include_usage.value_or(false);
    ARLE_API_TRY(sr.CheckUnknown());
  }
  std::optional<std::string> user;
  ARLE_API_TRY(r.String("user", &user));
  if (user) p->user = *user;
  return std::nullopt;
}

MaybeError ReadMaxTokens(ObjectReader& r, std::string_view key, std::optional<int64_t>* out,
                         int64_t min) {
  std::optional<int64_t> v;
  ARLE_API_TRY(r.Int(key, &v));
  if (!v) return std::nullopt;
  if (*v < min) {
    return Invalid(fmt::format("{} must be >= {}, got {}", key, min, *v), std::string(key));
  }
  *out = v;
  return std::nullopt;
}

// Flattens OpenAI content (a string or a list of text parts) into one string, as vLLM does for

}  // namespace arle::server::openai_fields
