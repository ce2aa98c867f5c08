// OpenAI response bodies built with nlohmann (ordered, so fields come out in OpenAI's order).
#include "arle/server/openai_response.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>

#include "arle/tokenizer/unicode.h"

namespace arle::server {
namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& j) {
  // Generated text is valid UTF-8 by construction; replace keeps a bug from throwing here.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A float logprob as the double with the same shortest decimal form (-0.1f -> -0.1, not
// -0.10000000149011612). OpenAI writes -9999.0 for tokens of zero probability.
double JsonLogprob(float v) {
  if (!std::isfinite(v)) return -9999.0;
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  *end = '\0';
  return std::strtod(buf, nullptr);
}

Json BytesArray(const std::string& bytes) {
  Json a = Json::array();
  for (unsigned char c : bytes) a.push_back(static_cast<int>(c));
  return a;
}

Json ChatLogprobsContent(const std::vector<TokenLogprob>& tokens) {
  Json content = Json::array();
  for (const TokenLogprob& t : tokens) {
    Json top = Json::array();
    for (const auto& [alt, lp] : t.top) {
      top.push_back({{"token", alt.token}, {"logprob", JsonLogprob(lp)}, {"bytes", BytesArray(alt.bytes)}});
    }
    content.push_back({{"token", t.text.token},
                       {"logprob", JsonLogprob(t.logprob)},
                       {"bytes", BytesArray(t.text.bytes)},
                       {"top_logprobs", std::move(top)}});
  }
  return content;
}

Json ChatLogprobs(const std::optional<std::vector<TokenLogprob>>& tokens) {
  if (!tokens) return nullptr;
  return {{"content", ChatLogprobsContent(*tokens)}, {"refusal", nullptr}};
}

Json UsageJson(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

Json Header(const ResponseMeta& meta, std::string_view object) {
  Json j = {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
  if (!meta.system_fingerprint.empty()) j["system_fingerprint"] = meta.system_fingerprint;
  return j;
}

Json FinishReason(const std::string& reason) {
  if (reason.empty()) return nullptr;
  return reason;
}

Json ToolCallsDelta(const std::vector<runtime::OutputDelta>& deltas) {
  Json calls = Json::array();
  for (const runtime::OutputDelta& d : deltas) {
    if (d.kind == runtime::OutputDeltaKind::kToolCallStart) {
      calls.push_back({{"index", d.tool_index},
                       {"id", d.id},
                       {"type", "function"},
                       {"function", {{"name", d.name}, {"arguments", ""}}}});
    } else if (d.kind == runtime::OutputDeltaKind::kToolCallArguments) {
      calls.push_back({{"index", d.tool_index}, {"function", {{"arguments", d.text}}}});
    }
  }
  return calls;
}

Json CompletionLogprobsJson(const std::optional<CompletionLogprobs>& lp) {
  if (!lp) return nullptr;
  Json token_logprobs = Json::array();
  Json top = Json::array();
  for (size_t i = 0; i < lp->token_logprobs.size(); ++i) {
    // NaN: an echoed prompt's first token, which has no logprob (null, as OpenAI gives it).
    if (std::isnan(lp->token_logprobs[i])) {
      token_logprobs.push_back(nullptr);
      top.push_back(nullptr);
      continue;
    }
    token_logprobs.push_back(JsonLogprob(lp->token_logprobs[i]));
    const auto& entry = lp->top_logprobs[i];
    Json m = Json::object();
    for (const auto& [tok, v] : entry) {
      if (!m.contains(tok)) m[tok] = JsonLogprob(v);
    }
    top.push_back(std::move(m));
  }
  return {{"tokens", lp->tokens},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top)},
          {"text_offset", lp->text_offset}};
}

Json CompletionChoiceJson(const CompletionChoice& c) {
  Json j = {{"index", c.index},
            {"text", c.text},
            {"logprobs", CompletionLogprobsJson(c.logprobs)},
            {"finish_reason", FinishReason(c.finish_reason)}};
  if (c.prompt_token_ids) j["prompt_token_ids"] = *c.prompt_token_ids;
  if (c.token_ids) j["token_ids"] = *c.token_ids;
  return j;
}

}  // namespace

TokenText TokenToText(const tokenizer::Tokenizer& tokenizer, int32_t id) {
  TokenText t;
  // Mid-sequence state: no leading-space stripping, so "▁the" reads " the".
  tokenizer::Tokenizer::DecodeState state;
  state.n_decoded = 1;
  state.strip_remaining = 0;
  tokenizer.DecodeAppend(id, /*skip_special=*/false, &state, &t.bytes);
  t.token = tokenizer::Utf8Lossy(t.bytes);
  return t;
}

TokenLogprob MakeTokenLogprob(const tokenizer::Tokenizer& tokenizer,
                              const runtime::SampledToken& sampled) {
  TokenLogprob t;
  t.text = TokenToText(tokenizer, sampled.id);
  t.logprob = sampled.logprob;
  t.top.reserve(sampled.top_logprobs.size());
  for (const auto& [id, lp] : sampled.top_logprobs) t.top.emplace_back(TokenToText(tokenizer, id), lp);
  return t;
}

std::string SseData(std::string_view json) { return fmt::format("data: {}\n\n", json); }

std::string SseEvent(std::string_view name, std::string_view json) {
  return fmt::format("event: {}\ndata: {}\n\n", name, json);
}

// ---- Chat ----

std::string ChatCompletionJson(const ResponseMeta& meta, const std::vector<ChatChoice>& choices,
                               const Usage& usage) {
  Json j = Header(meta, "chat.completion");
  Json cs = Json::array();
  for (const ChatChoice& c : choices) {
    Json message = {{"role", "assistant"}};
    // OpenAI: content is null when the answer is only tool calls.
    if (c.content.empty() && !c.tool_calls.empty()) {
      message["content"] = nullptr;
    } else {
      message["content"] = c.content;
    }
    message["refusal"] = nullptr;
    message["reasoning_content"] = c.reasoning.empty() ? Json(nullptr) : Json(c.reasoning);
    if (!c.tool_calls.empty()) {
      Json calls = Json::array();
      for (const runtime::ToolCall& t : c.tool_calls) {
        calls.push_back({{"id", t.id},
                         {"type", t.type},
                         {"function", {{"name", t.name}, {"arguments", t.arguments}}}});
      }
      message["tool_calls"] = std::move(calls);
    }
    cs.push_back({{"index", c.index},
                  {"message", std::move(message)},
                  {"logprobs", ChatLogprobs(c.logprobs)},
                  {"finish_reason", FinishReason(c.finish_reason)}});
  }
  j["choices"] = std::move(cs);
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

std::string ChatChunkJson(const ResponseMeta& meta, const ChatChunkChoice& choice,
                          bool with_usage_null) {
  Json j = Header(meta, "chat.completion.chunk");
  Json delta = Json::object();
  if (choice.role) {
    delta["role"] = "assistant";
    if (!choice.content) delta["content"] = "";
  }
  if (choice.content) delta["content"] = *choice.content;
  if (choice.reasoning) delta["reasoning_content"] = *choice.reasoning;
  if (!choice.tool_calls.empty()) {
    Json calls = ToolCallsDelta(choice.tool_calls);
    if (!calls.empty()) delta["tool_calls"] = std::move(calls);
  }
  Json c = {{"index", choice.index},
            {"delta", std::move(delta)},
            {"logprobs", ChatLogprobs(choice.logprobs)},
            {"finish_reason", FinishReason(choice.finish_reason)}};
  j["choices"] = Json::array({std::move(c)});
  if (with_usage_null) j["usage"] = nullptr;
  return Dump(j);
}

std::string ChatUsageChunkJson(const ResponseMeta& meta, const Usage& usage) {
  Json j = Header(meta, "chat.completion.chunk");
  j["choices"] = Json::array();
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

// ---- Completions ----

void AppendCompletionLogprobs(const std::vector<TokenLogprob>& tokens, int64_t* offset,
                              CompletionLogprobs* out) {
  for (const TokenLogprob& t : tokens) {
    out->tokens.push_back(t.text.token);
    out->token_logprobs.push_back(t.logprob);
    std::vector<std::pair<std::string, float>> top;
    top.reserve(t.top.size() + 1);
    bool has_sampled = false;
    for (const auto& [alt, lp] : t.top) {
      has_sampled |= alt.token == t.text.token;
      top.emplace_back(alt.token, lp);
    }
    if (!has_sampled) top.emplace_back(t.text.token, t.logprob);
    out->top_logprobs.push_back(std::move(top));
    out->text_offset.push_back(*offset);
    // Character (code point) offsets, as vLLM and OpenAI's Python-string offsets count.
    *offset += tokenizer::Utf8CodePointCount(t.text.token);
  }
}

std::string CompletionJson(const ResponseMeta& meta, const std::vector<CompletionChoice>& choices,
                           const Usage& usage) {
  Json j = Header(meta, "text_completion");
  Json cs = Json::array();
  for (const CompletionChoice& c : choices) cs.push_back(CompletionChoiceJson(c));
  j["choices"] = std::move(cs);
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

std::string CompletionChunkJson(const ResponseMeta& meta, const CompletionChoice& choice,
                                bool with_usage_null) {
  Json j = Header(meta, "text_completion");
  j["choices"] = Json::array({CompletionChoiceJson(choice)});
  if (with_usage_null) j["usage"] = nullptr;
  return Dump(j);
}

std::string CompletionUsageChunkJson(const ResponseMeta& meta, const Usage& usage) {
  Json j = Header(meta, "text_completion");
  j["choices"] = Json::array();
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

// ---- Responses ----

ResponsesBuilder::ResponsesBuilder(ResponseMeta meta, ResponsesSettings settings)
    : meta_(std::move(meta)), settings_(std::move(settings)) {
  // Item ids share the response's random part, so they are unique and easy to correlate.
  const std::string suffix = meta_.id.substr(meta_.id.find('_') + 1);
  reasoning_id_ = "rs_" + suffix;
  message_id_ = "msg_" + suffix;
}

namespace {

// One Responses API event: {"type", "sequence_number", ...fields}.
std::string EventSse(int64_t* sequence, std::string_view type, const Json& fields) {
  Json j = {{"type", type}, {"sequence_number", (*sequence)++}};
  for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = it.value();
  return SseEvent(type, Dump(j));
}

Json ReasoningItem(const std::string& id, const std::string& text, std::string_view status,
                   bool with_content) {
  Json content = Json::array();
  if (with_content) content.push_back({{"type", "reasoning_text"}, {"text", text}});
  return {{"id", id}, {"type", "reasoning"}, {"summary", Json::array()},
          {"content", std::move(content)}, {"status", status}};
}

Json OutputTextPart(const std::string& text) {
  return {{"type", "output_text"}, {"text", text}, {"annotations", Json::array()},
          {"logprobs", Json::array()}};
}

Json MessageItem(const std::string& id, const std::string& text, std::string_view status,
                 bool with_content) {
  Json content = Json::array();
  if (with_content) content.push_back(OutputTextPart(text));
  return {{"id", id}, {"type", "message"}, {"status", status}, {"role", "assistant"},
          {"content", std::move(content)}};
}

}  // namespace

std::string ResponsesBuilder::Start() {
  std::string out = EventSse(&sequence_, "response.created", Json({{"response", Json::parse(ResponseJson())}}));
  out += EventSse(&sequence_, "response.in_progress", Json({{"response", Json::parse(ResponseJson())}}));
  return out;
}

std::string ResponsesBuilder::OpenReasoning() {
  reasoning_state_ = ItemState::kOpen;
  reasoning_index_ = n_items_++;
  std::string out = EventSse(&sequence_, "response.output_item.added",
                          Json({{"output_index", reasoning_index_},
                                   {"item", ReasoningItem(reasoning_id_, "", "in_progress", false)}}));
  out += EventSse(&sequence_, "response.content_part.added",
               Json({{"item_id", reasoning_id_},
                        {"output_index", reasoning_index_},
                        {"content_index", 0},
                        {"part", {{"type", "reasoning_text"}, {"text", ""}}}}));
  return out;
}

std::string ResponsesBuilder::CloseReasoning() {
  reasoning_state_ = ItemState::kDone;
  std::string out = EventSse(&sequence_, "response.reasoning_text.done",
                          Json({{"item_id", reasoning_id_},
                                   {"output_index", reasoning_index_},
                                   {"content_index", 0},
                                   {"text", reasoning_}}));
  out += EventSse(&sequence_, "response.content_part.done",
               Json({{"item_id", reasoning_id_},
                        {"output_index", reasoning_index_},
                        {"content_index", 0},
                        {"part", {{"type", "reasoning_text"}, {"text", reasoning_}}}}));
  out += EventSse(&sequence_, "response.output_item.done",
               Json({{"output_index", reasoning_index_},
                        {"item", ReasoningItem(reasoning_id_, reasoning_, "completed", true)}}));
  return out;
}

std::string ResponsesBuilder::OpenMessage() {
  message_state_ = ItemState::kOpen;
  message_index_ = n_items_++;
  std::string out = EventSse(&sequence_, "response.output_item.added",
                          Json({{"output_index", message_index_},
                                   {"item", MessageItem(message_id_, "", "in_progress", false)}}));
  out += EventSse(&sequence_, "response.content_part.added",
               Json({{"item_id", message_id_},
                        {"output_index", message_index_},
                        {"content_index", 0},
                        {"part", OutputTextPart("")}}));
  return out;
}

std::string ResponsesBuilder::CloseMessage() {
  message_state_ = ItemState::kDone;
  const std::string item_status = status_ == "completed" ? "completed" : "incomplete";
  std::string out = EventSse(&sequence_, "response.output_text.done",
                          Json({{"item_id", message_id_},
                                   {"output_index", message_index_},
                                   {"content_index", 0},
                                   {"text", text_},
                                   {"logprobs", Json::array()}}));
  out += EventSse(&sequence_, "response.content_part.done",
               Json({{"item_id", message_id_},
                        {"output_index", message_index_},
                        {"content_index", 0},
                        {"part", OutputTextPart(text_)}}));
  out += EventSse(&sequence_, "response.output_item.done",
               Json({{"output_index", message_index_},
                        {"item", MessageItem(message_id_, text_, item_status, true)}}));
  return out;
}

std::string ResponsesBuilder::ReasoningDelta(std::string_view text) {
  if (text.empty() || message_state_ != ItemState::kNone) {
    // Reasoning after the answer started is not an OpenAI shape; keep it in the text instead.
    return message_state_ != ItemState::kNone ? TextDelta(text) : std::string();
  }
  std::string out;
  if (reasoning_state_ == ItemState::kNone) out += OpenReasoning();
  reasoning_.append(text);
  out += EventSse(&sequence_, "response.reasoning_text.delta", Json({{"item_id", reasoning_id_},
                                                         {"output_index", reasoning_index_},
                                                         {"content_index", 0},
                                                         {"delta", std::string(text)}}));
  return out;
}

std::string ResponsesBuilder::TextDelta(std::string_view text) {
  if (text.empty()) return "";
  std::string out;
  if (reasoning_state_ == ItemState::kOpen) out += CloseReasoning();
  if (message_state_ == ItemState::kNone) out += OpenMessage();
  text_.append(text);
  out += EventSse(&sequence_, "response.output_text.delta", Json({{"item_id", message_id_},
                                                      {"output_index", message_index_},
                                                      {"content_index", 0},
                                                      {"delta", std::string(text)},
                                                      {"logprobs", Json::array()}}));
  return out;
}

std::string ResponsesBuilder::Finish(std::string_view finish_reason, const Usage& usage) {
  if (finish_reason == "length") {
    status_ = "incomplete";
    incomplete_reason_ = "max_output_tokens";
  } else if (finish_reason == "abort") {
    status_ = "failed";
    error_message_ = "The response was cancelled before it finished: the server is shutting down.";
  } else {
    status_ = "completed";
  }
  std::string out;
  if (reasoning_state_ == ItemState::kOpen) out += CloseReasoning();
  if (message_state_ == ItemState::kNone) out += OpenMessage();
  if (message_state_ == ItemState::kOpen) out += CloseMessage();
  usage_ = usage;
  const std::string_view event = status_ == "incomplete" ? "response.incomplete"
                                 : status_ == "failed"   ? "response.failed"
                                                         : "response.completed";
  out += EventSse(&sequence_, event,
               Json({{"response", Json::parse(ResponseJson())}}));
  return out;
}

std::string ResponsesBuilder::ResponseJson() const {
  Json output = Json::array();
  // Items in creation order (reasoning, when present, comes first).
  std::vector<std::pair<int, Json>> items;
  if (reasoning_state_ != ItemState::kNone) {
    const bool done = reasoning_state_ == ItemState::kDone;
    items.emplace_back(reasoning_index_,
                       ReasoningItem(reasoning_id_, reasoning_, done ? "completed" : "in_progress",
                                     true));
  }
  if (message_state_ != ItemState::kNone) {
    std::string st = message_state_ == ItemState::kDone
                         ? (status_ == "completed" ? "completed" : "incomplete")
                         : "in_progress";
    items.emplace_back(message_index_, MessageItem(message_id_, text_, st, true));
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [idx, item] : items) output.push_back(std::move(item));

  Json usage = nullptr;
  if (usage_) {
    usage = {{"input_tokens", usage_->prompt_tokens},
             {"input_tokens_details", {{"cached_tokens", usage_->cached_tokens}}},
             {"output_tokens", usage_->completion_tokens},
             {"output_tokens_details", {{"reasoning_tokens", usage_->reasoning_tokens}}},
             {"total_tokens", usage_->prompt_tokens + usage_->completion_tokens}};
  }
  auto opt_num = [](const auto& v) { return v ? Json(*v) : Json(nullptr); };
  Json j = {{"id", meta_.id},
            {"object", "response"},
            {"created_at", meta_.created},
            {"status", status_},
            {"error", error_message_.empty()
                          ? Json(nullptr)
                          : Json({{"code", "server_error"}, {"message", error_message_}})},
            {"incomplete_details", incomplete_reason_.empty()
                                       ? Json(nullptr)
                                       : Json({{"reason", incomplete_reason_}})},
            {"instructions", settings_.instructions ? Json(*settings_.instructions) : Json(nullptr)},
            {"max_output_tokens", opt_num(settings_.max_output_tokens)},
            {"model", meta_.model},
            {"output", std::move(output)},
            {"parallel_tool_calls", true},
            {"previous_response_id", nullptr},
            {"reasoning", {{"effort", nullptr}, {"summary", nullptr}}},
            {"store", false},
            {"temperature", settings_.temperature.value_or(1.0)},
            {"text", {{"format", {{"type", "text"}}}}},
            {"tool_choice", "auto"},
            {"tools", Json::array()},
            {"top_p", settings_.top_p.value_or(1.0)},
            {"truncation", "disabled"},
            {"usage", std::move(usage)},
            {"user", settings_.user.empty() ? Json(nullptr) : Json(settings_.user)},
            {"metadata", Json::object()}};
  return Dump(j);
}

// ---- Misc ----

namespace {

Json ModelObject(std::string_view model, int64_t created, int64_t max_model_len) {
  return {{"id", model},          {"object", "model"}, {"created", created},
          {"owned_by", "arle"},   {"root", model},     {"parent", nullptr},
          {"max_model_len", max_model_len}};
}

}  // namespace

std::string ModelsJson(std::string_view model, int64_t created, int64_t max_model_len) {
  Json j = {{"object", "list"},
            {"data", Json::array({ModelObject(model, created, max_model_len)})}};
  return Dump(j);
}

std::string ModelJson(std::string_view model, int64_t created, int64_t max_model_len) {
  return Dump(ModelObject(model, created, max_model_len));
}

std::string TokenizeJson(const std::vector<int32_t>& tokens, int64_t max_model_len,
                         const std::vector<std::string>* token_strs) {
  Json j = {{"count", tokens.size()},
            {"max_model_len", max_model_len},
            {"tokens", tokens},
            {"token_strs", token_strs ? Json(*token_strs) : Json(nullptr)}};
  return Dump(j);
}

std::string DetokenizeJson(std::string_view prompt) {
  return Dump(Json{{"prompt", prompt}});
}

std::string RandomId(std::string_view prefix) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string id(prefix);
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  for (int i = 0; i < 24; ++i) id.push_back(kAlphabet[pick(rng)]);
  return id;
}

}  // namespace arle::server
