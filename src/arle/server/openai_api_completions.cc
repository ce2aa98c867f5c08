// /v1/completions: the request's preparation (one engine request per prompt, echo) and its
// Protocol — plain text choices with the legacy logprobs format and vLLM's return_token_ids,
// streamed as text_completion chunks or returned whole.
#include <fmt/format.h>

#include <iterator>
#include <limits>
#include <utility>

#include "arle/core/logging.h"
#include "arle/server/openai_fields.h"
#include "arle/server/openai_protocol.h"
#include "arle/tokenizer/unicode.h"

namespace arle::server::openai_internal {
namespace {

struct CompletionChoiceState {
  bool started = false;  // the echo (if any) went out with the first event
  std::string text;      // non-stream
  std::optional<CompletionLogprobs> logprobs;  // non-stream
  int64_t text_offset = 0;
  std::vector<int32_t> token_ids;  // return_token_ids, non-stream: every generated id
  bool sent_prompt_ids = false;    // return_token_ids, stream: prompt_token_ids went out
};

// One prompt of the request.
struct PromptState {
  std::string echo_text;
  std::vector<int32_t> prompt_ids;  // return_token_ids only
  // echo + logprobs: the prompt's tokens and their scores (from the request's first event; every
  // choice of the prompt echoes them).
  std::vector<int32_t> echo_ids;
  std::vector<runtime::PromptTokenLogprob> echo_scores;
};

// The echoed prompt's logprobs entries: the first token has none (null, as OpenAI and vLLM give
// it), each later one its score given the tokens before it.
CompletionLogprobs PromptLogprobs(const tokenizer::Tokenizer& tokenizer,
                                  const PromptState& prompt) {
  std::vector<runtime::SampledToken> scored;
  runtime::SampledToken first;
  first.id = prompt.echo_ids.front();
  first.logprob = std::numeric_limits<float>::quiet_NaN();
  scored.push_back(first);
  for (const runtime::PromptTokenLogprob& p : prompt.echo_scores) {
    scored.push_back({.id = p.id, .logprob = p.logprob, .top_logprobs = p.top_logprobs});
  }
  CompletionLogprobs out;
  int64_t offset = 0;
  AppendCompletionLogprobs(TokenLogprobs(tokenizer, scored), &offset, &out);
  out.top_logprobs.front().clear();  // null with the logprob
  return out;
}

void Append(CompletionLogprobs&& from, CompletionLogprobs* to) {
  auto append = [](auto& dst, auto& src) {
    dst.insert(dst.end(), std::make_move_iterator(src.begin()), std::make_move_iterator(src.end()));
  };
  append(to->tokens, from.tokens);
  append(to->token_logprobs, from.token_logprobs);
  append(to->top_logprobs, from.top_logprobs);
  append(to->text_offset, from.text_offset);
}

class CompletionProtocol final : public Protocol {
 public:
  CompletionProtocol(const tokenizer::Tokenizer& tokenizer, ResponseMeta meta,
                     const CompletionRequest& req)
      : tokenizer_(tokenizer),
        meta_(std::move(meta)),
        stream_(req.params.stream),
        include_usage_(req.params.include_usage),
        want_logprobs_(req.logprobs.has_value()),
        return_token_ids_(req.return_token_ids),
        n_(static_cast<size_t>(req.params.n)) {}

  std::vector<PromptState> prompts;
  std::vector<CompletionChoiceState> choices;  // prompts.size() * n

  std::string ParamName(std::string_view field) const override {
    return openai_fields::ParamFor(field, openai_fields::kCompletionRenames);
  }

  std::string StreamStart() override { return ""; }

  std::string OnEvent(size_t ci, const runtime::EngineOutput& out, ChoiceStatus& status) override {
    CompletionChoiceState& c = choices[ci];
    PromptState& prompt = prompts[ci / n_];
    if (!out.prompt_logprobs.empty()) prompt.echo_scores = out.prompt_logprobs;
    const bool final = out.finish_reason != runtime::FinishReason::kNone;
    std::string piece;
    std::optional<CompletionLogprobs> lp_delta;
    if (want_logprobs_) lp_delta.emplace();
    if (!c.started) {
      c.started = true;
      piece = prompt.echo_text;
      c.text_offset = tokenizer::Utf8CodePointCount(prompt.echo_text);
      if (want_logprobs_ && !prompt.echo_ids.empty()) {
        lp_delta = PromptLogprobs(tokenizer_, prompt);
      }
    }
    piece += out.text;
    if (want_logprobs_) {
      AppendCompletionLogprobs(TokenLogprobs(tokenizer_, out.tokens), &c.text_offset, &*lp_delta);
    }
    std::vector<int32_t> ids;
    if (return_token_ids_) {
      for (const runtime::SampledToken& t : out.tokens) ids.push_back(t.id);
    }
    if (!stream_) {
      c.text += piece;
      c.token_ids.insert(c.token_ids.end(), ids.begin(), ids.end());
      if (lp_delta) {
        if (!c.logprobs) c.logprobs.emplace();
        Append(std::move(*lp_delta), &*c.logprobs);
      }
      return "";
    }
    // Token ids go out even while their text is held back (a partial character or a possible
    // stop string), so a client sees every generated id once.
    const bool ids_due = return_token_ids_ && (!ids.empty() || !c.sent_prompt_ids);
    const bool has_logprobs = want_logprobs_ && !lp_delta->tokens.empty();
    if (piece.empty() && !has_logprobs && !final && !ids_due) return "";
    CompletionChoice chunk;
    chunk.index = static_cast<int>(ci);
    chunk.text = std::move(piece);
    if (final) chunk.finish_reason = status.finish_reason;
    chunk.logprobs = std::move(lp_delta);
    if (return_token_ids_) {
      if (!c.sent_prompt_ids) chunk.prompt_token_ids = prompt.prompt_ids;
      c.sent_prompt_ids = true;
      chunk.token_ids = std::move(ids);
    }
    return SseData(CompletionChunkJson(meta_, chunk, include_usage_));
  }

  std::string StreamEnd(const Usage& usage, std::span<const ChoiceStatus>) override {
    std::string out;
    if (include_usage_) out += SseData(CompletionUsageChunkJson(meta_, usage));
    out += kSseDone;
    return out;
  }

  std::string Body(const Usage& usage, std::span<const ChoiceStatus> statuses) override {
    std::vector<CompletionChoice> out;
    for (size_t i = 0; i < choices.size(); ++i) {
      CompletionChoiceState& c = choices[i];
      CompletionChoice cc;
      cc.index = static_cast<int>(i);
      cc.text = std::move(c.text);
      cc.finish_reason = statuses[i].finish_reason;
      if (want_logprobs_) cc.logprobs = c.logprobs.value_or(CompletionLogprobs{});
      if (return_token_ids_) {
        cc.prompt_token_ids = prompts[i / n_].prompt_ids;
        cc.token_ids = std::move(c.token_ids);
      }
      out.push_back(std::move(cc));
    }
    return CompletionJson(meta_, out, usage);
  }

 private:
  const tokenizer::Tokenizer& tokenizer_;
  const ResponseMeta meta_;
  const bool stream_;
  const bool include_usage_;
  const bool want_logprobs_;
  const bool return_token_ids_;
  const size_t n_;
};

}  // namespace

ApiOr<CallPlan> PrepareCompletion(const Shared& shared, const HttpRequest& request) {
  ApiOr<CompletionRequest> parsed = ParseCompletionRequest(request.body, shared.parse_context);
  if (!parsed.ok()) return parsed.error();
  CompletionRequest& req = *parsed;
  if (!req.params.user.empty()) ARLE_LOG_DEBUG("completion request from user {}", req.params.user);

  const tokenizer::Tokenizer& tok = shared.engine.tokenizer();
  auto protocol = std::make_unique<CompletionProtocol>(tok, MakeMeta(shared, "cmpl-"), req);
  CallPlan plan;
  plan.n = req.params.n;
  plan.stream = req.params.stream;
  for (size_t k = 0; k < req.prompts.size(); ++k) {
    CompletionPrompt& p = req.prompts[k];
    std::vector<int32_t> tokens = p.is_tokens ? p.tokens : tok.Encode(p.text);
    const std::string param = req.prompts.size() > 1 ? fmt::format("prompt[{}]", k) : "prompt";
    PromptState state;
    if (req.echo) state.echo_text = p.is_tokens ? tok.Decode(p.tokens) : p.text;
    runtime::EngineRequest engine_request;
    if (auto e = MakeEngineRequest(shared, req.params, std::move(tokens), param, "max_tokens",
                                   "prompt", &engine_request)) {
      return *e;
    }
    if (req.return_token_ids) state.prompt_ids = engine_request.prompt_tokens;
    if (req.echo && req.logprobs.has_value()) {
      // The prompt's log-probs from its second token on (the first has no context).
      state.echo_ids = engine_request.prompt_tokens;
      engine_request.prompt_logprobs =
          runtime::PromptLogprobsParams{.from = 1, .top_logprobs = *req.logprobs, .on_logits = {}};
    }
    plan.requests.push_back(std::move(engine_request));
    protocol->prompts.push_back(std::move(state));
  }
  protocol->choices.resize(req.prompts.size() * static_cast<size_t>(req.params.n));
  plan.protocol = std::move(protocol);
  return plan;
}

}  // namespace arle::server::openai_internal
