// What the three API preparers share: response ids, prompt encoding, the engine request with its
// context checks, output parsers by model family, and logprob texts.
#include "arle/server/openai_protocol.h"

#include <fmt/format.h>

#include <utility>

namespace arle::server::openai_internal {
namespace {

// Families whose parser knows <think> and <tool_call> (runtime/output_parser.h).
bool IsTaggedFamily(std::string_view family) {
  for (std::string_view tagged : {"qwen3", "qwen2", "qwen", "hermes"}) {
    if (family == tagged) return true;
  }
  return false;
}

ApiError ContextError(int64_t max_ctx, int64_t n_prompt, std::optional<int64_t> max_tokens,
                      std::string_view prompt_param, std::string_view max_tokens_param,
                      std::string_view what) {
  ApiError e;
  e.type = "invalid_request_error";
  e.code = "context_length_exceeded";
  if (!max_tokens) {
    e.message = fmt::format(
        "This model's maximum context length is {} tokens. However, your {} has {} tokens, which "
        "leaves no room to generate. Please reduce the length of the {}.",
        max_ctx, what, n_prompt, what);
    e.param = prompt_param;
  } else {
    e.message = fmt::format(
        "This model's maximum context length is {} tokens. However, you requested {} tokens ({} in "
        "the {}, {} in the completion). Please reduce the length of the {} or completion.",
        max_ctx, n_prompt + *max_tokens, n_prompt, what, *max_tokens, what);
    e.param = max_tokens_param;
  }
  return e;
}

// A chat-template prompt as tokens.
std::vector<int32_t> EncodeChat(const Shared& shared, const std::string& prompt) {
  tokenizer::EncodeOptions options;
  options.add_special_tokens = false;  // the template writes its own special tokens
  return shared.engine.tokenizer().Encode(prompt, options);
}

}  // namespace

ResponseMeta MakeMeta(const Shared& shared, std::string_view id_prefix) {
  ResponseMeta meta;
  meta.id = RandomId(id_prefix);
  meta.created = UnixNow();
  meta.model = shared.options.served_model_name;
  meta.system_fingerprint = shared.options.system_fingerprint;
  return meta;
}

std::optional<ApiError> MakeEngineRequest(const Shared& shared, const GenerationParams& params,
                                          std::vector<int32_t> tokens,
                                          std::string_view prompt_param,
                                          std::string_view max_tokens_param, std::string_view what,
                                          runtime::EngineRequest* out) {
  const int64_t max_ctx = shared.engine.max_context_tokens();
  const auto n_prompt = static_cast<int64_t>(tokens.size());
  if (n_prompt == 0) {
    ApiError e;
    e.type = "invalid_request_error";
    e.message = fmt::format("The {} is empty (it encodes to no tokens and this model's tokenizer "
                            "adds no BOS token).",
                            what);
    e.param = prompt_param;
    return e;
  }
  // A request that only scores its prompt (max_tokens 0) may fill the context.
  if (n_prompt > max_ctx || (n_prompt == max_ctx && params.max_tokens != 0)) {
    return ContextError(max_ctx, n_prompt, std::nullopt, prompt_param, max_tokens_param, what);
  }
  if (params.max_tokens && n_prompt + *params.max_tokens > max_ctx) {
    return ContextError(max_ctx, n_prompt, params.max_tokens, prompt_param, max_tokens_param, what);
  }
  out->prompt_tokens = std::move(tokens);
  out->sampling = params.sampling;
  out->stop = shared.options.default_stop;
  out->stop.max_context_tokens = max_ctx;
  out->stop.max_tokens = params.max_tokens;
  out->stop.ignore_eos = params.ignore_eos;
  out->stop.stop_token_ids = params.stop_token_ids;
  out->stop_strings = params.stop_strings;
  out->n = params.n;
  return std::nullopt;
}

std::optional<ApiError> PlanChatPrompt(const Shared& shared, const GenerationParams& params,
                                       const std::string& prompt, std::string_view prompt_param,
                                       std::string_view max_tokens_param, CallPlan* plan) {
  plan->n = params.n;
  plan->stream = params.stream;
  runtime::EngineRequest request;
  if (auto e = MakeEngineRequest(shared, params, EncodeChat(shared, prompt), prompt_param,
                                 max_tokens_param, prompt_param, &request)) {
    return e;
  }
  plan->requests.push_back(std::move(request));
  return std::nullopt;
}

bool ReasoningOpen(std::string_view family, std::string_view prompt) {
  return IsTaggedFamily(family) && runtime::PromptEndsInsideReasoning(prompt);
}

bool HasToolParser(std::string_view family) { return family != "plain"; }

core::StatusOr<std::unique_ptr<runtime::OutputParser>> MakeOutputParser(
    const std::string& family, bool parse_tools, bool start_in_reasoning) {
  runtime::OutputParserOptions options;
  options.start_in_reasoning = start_in_reasoning;
  // Ids must be unique across a conversation: clients send them back with the tool results.
  options.call_id_prefix = RandomId("call_").substr(0, 21) + "_";
  if (!parse_tools && IsTaggedFamily(family)) {
    runtime::TaggedParserConfig config;
    config.tool_open.clear();
    return runtime::MakeTaggedOutputParser(config, options);
  }
  return runtime::CreateOutputParser(family, options);
}

std::vector<TokenLogprob> TokenLogprobs(const tokenizer::Tokenizer& tokenizer,
                                        const std::vector<runtime::SampledToken>& tokens) {
  std::vector<TokenLogprob> out;
  out.reserve(tokens.size());
  for (const runtime::SampledToken& t : tokens) out.push_back(MakeTokenLogprob(tokenizer, t));
  return out;
}

}  // namespace arle::server::openai_internal
