// libFuzzer target: the OpenAI request parsers the server runs on request bodies (chat completions,
// completions, responses, tokenize, detokenize) on arbitrary bytes. An accepted request must hold
// what the rest of the server relies on (valid sampling parameters, token ids in the vocabulary,
// JSON texts that parse, n in range); an error must be a 400 or 404 whose envelope can be built.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/check.h"
#include "arle/server/http_server.h"
#include "arle/server/openai_request.h"

namespace {

using arle::server::ApiError;
using arle::server::ApiOr;
using arle::server::GenerationParams;
using arle::server::ParseContext;

constexpr int32_t kVocab = 1000;

const ParseContext& Context() {
  static const ParseContext* ctx = [] {
    auto* c = new ParseContext;
    c->served_model_name = "m";
    c->n_vocab = kVocab;
    return c;
  }();
  return *ctx;
}

void CheckError(const ApiError& e) {
  ARLE_CHECK(e.status == 400 || e.status == 404) << e.status << " " << e.message;
  ARLE_CHECK(!e.message.empty());
  (void)arle::server::ErrorBody(e.status, e.message, e.param, e.code, e.type);
}

void CheckJson(const std::string& text, bool array) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ARLE_CHECK(!j.is_discarded()) << text;
  ARLE_CHECK(array ? j.is_array() : j.is_object()) << text;
}

void CheckIds(const std::vector<int32_t>& ids) {
  for (int32_t id : ids) ARLE_CHECK(id >= 0 && id < kVocab) << id;
}

void CheckParams(const GenerationParams& p) {
  const arle::core::Status st = p.sampling.Validate(kVocab);
  ARLE_CHECK(st.ok()) << st.ToString();
  ARLE_CHECK(p.n >= 1 && p.n <= arle::server::kMaxSamples) << p.n;
  ARLE_CHECK(!p.max_tokens || *p.max_tokens >= 1);
  ARLE_CHECK(p.stop_strings.size() <= 16);
  for (const std::string& s : p.stop_strings) ARLE_CHECK(!s.empty());
  CheckIds(p.stop_token_ids);
  ARLE_CHECK(p.stream || !p.include_usage);
}

template <typename T, typename Check>
void Run(const ApiOr<T>& r, Check check) {
  if (!r.ok()) return CheckError(r.error());
  check(r.value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace arle::server;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  Run(ParseChatRequest(body, Context()), [](const ChatRequest& r) {
    CheckParams(r.params);
    CheckJson(r.messages_json, /*array=*/true);
    CheckJson(r.template_kwargs_json, /*array=*/false);
    if (!r.tools_json.empty()) CheckJson(r.tools_json, /*array=*/true);
    ARLE_CHECK(r.logprobs || r.params.sampling.top_logprobs == 0);
    (void)ForcedToolPrefix(r.tool_choice, r.tool_choice_name, "<tool_call>");
  });
  Run(ParseCompletionRequest(body, Context()), [](const CompletionRequest& r) {
    CheckParams(r.params);
    ARLE_CHECK(!r.prompts.empty());
    for (const CompletionPrompt& p : r.prompts) CheckIds(p.tokens);
    ARLE_CHECK(r.params.max_tokens.has_value());
  });
  Run(ParseResponsesRequest(body, Context()), [](const ResponsesRequest& r) {
    CheckParams(r.params);
    ARLE_CHECK_EQ(r.params.n, 1);
    CheckJson(r.messages_json, /*array=*/true);
    CheckJson(r.template_kwargs_json, /*array=*/false);
  });
  Run(ParseTokenizeRequest(body, Context()), [](const TokenizeRequest& r) {
    if (r.is_chat) CheckJson(r.messages_json, /*array=*/true);
  });
  Run(ParseDetokenizeRequest(body, Context()), [](const DetokenizeRequest& r) { CheckIds(r.tokens); });
  return 0;
}
