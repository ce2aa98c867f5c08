// Call: the lifecycle of one generation request. Engine callbacks (engine thread) and disconnects
// (I/O thread) meet under the Call's mutex; events that arrive before every submission is accepted
// wait in a backlog, so an HTTP error can still be sent when a later Submit fails.
#include "arle/server/openai_call.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "arle/core/logging.h"
#include "arle/tokenizer/unicode.h"

namespace arle::server::openai_internal {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The parameter an engine/runtime validation message starts with, if it is one ("top_p must be
// in ..."), so even a backstop error names it.
std::string ParamFromMessage(std::string_view message) {
  static constexpr std::string_view kParams[] = {
      "temperature",      "top_p",           "top_k",      "min_p",          "repetition_penalty",
      "presence_penalty", "frequency_penalty", "logit_bias", "top_logprobs",   "max_tokens",
      "stop_token_ids",   "stop",            "n",          "prompt"};
  const std::string_view first = message.substr(0, message.find(' '));
  for (std::string_view p : kParams) {
    if (first == p) return std::string(p);
  }
  return "";
}

}  // namespace

void SendApiError(ResponseWriter& writer, const ApiError& e) {
  writer.Send(e.status, "application/json", ErrorBody(e.status, e.message, e.param, e.code, e.type),
              e.headers);
}

ApiError FromStatus(const core::Status& status, std::string param) {
  ApiError e;
  if (status.code() == core::StatusCode::kResourceExhausted) {
    e.status = 503;
    e.message = status.message();
    return e;
  }
  if (status.code() == core::StatusCode::kInternal) {
    e.status = 500;
    e.message = status.message();
    return e;
  }
  e.status = 400;
  e.message = status.message();
  if (!status.hint().empty()) e.message += fmt::format(" ({})", status.hint());
  e.param = param.empty() ? ParamFromMessage(status.message()) : std::move(param);
  e.type = "invalid_request_error";
  return e;
}

void Call::Run() {
  {
    std::lock_guard lock(shared_->mu);
    serial_ = shared_->next_call++;
    shared_->active[serial_] = weak_from_this();
  }
  std::weak_ptr<Call> weak = weak_from_this();
  writer_->OnClose([weak] {
    if (auto self = weak.lock()) self->Cancel(/*client_gone=*/true);
  });
  for (size_t j = 0; j < submissions.size(); ++j) {
    std::shared_ptr<Call> self = shared_from_this();
    auto id = shared_->engine.Submit(
        submissions[j].request,
        [self, j](const runtime::EngineOutput& out) { self->OnOutput(j, out); });
    if (!id.ok()) {
      {
        std::lock_guard lock(mu_);
        failed_ = true;
      }
      for (uint64_t i : EngineIds()) shared_->engine.Cancel(i);
      ApiError e = FromStatus(id.status(), api_ == Api::kCompletion ? "prompt" : "messages");
      if (e.status == 503) {
        e.message = fmt::format("The server is overloaded: {} Retry later.", e.message);
        e.headers.emplace_back("Retry-After", std::to_string(shared_->options.retry_after_seconds));
      }
      Finalize(e.status);
      SendApiError(*writer_, e);
      return;
    }
    std::lock_guard lock(ids_mu_);
    engine_ids_.push_back(*id);
  }
  {
    std::lock_guard lock(mu_);
    started_ = true;
    if (stream) {
      writer_->StartStream(200, "text/event-stream");
      WriteStreamStart();
    }
    for (auto& [j, out] : backlog_) Process(j, out);
    backlog_.clear();
  }
  // A disconnect during submission may have missed the ids submitted after it.
  if (closed_.load()) Cancel(/*client_gone=*/true);
}

void Call::Cancel(bool client_gone) {
  if (client_gone) closed_.store(true);
  for (uint64_t id : EngineIds()) shared_->engine.Cancel(id);
}

std::vector<uint64_t> Call::EngineIds() const {
  std::lock_guard lock(ids_mu_);
  return engine_ids_;
}

void Call::OnOutput(size_t j, const runtime::EngineOutput& out) {
  std::lock_guard lock(mu_);
  if (!started_) {
    backlog_.emplace_back(j, out);
    return;
  }
  Process(j, out);
}

// The role chunk goes first, as OpenAI and vLLM send it, before any token.
void Call::WriteStreamStart() {
  if (api_ == Api::kChat) {
    for (size_t i = 0; i < choices.size(); ++i) {
      ChatChunkChoice c;
      c.index = static_cast<int>(i);
      c.role = true;
      Write(SseData(ChatChunkJson(meta, c, include_usage)));
      choices[i].started = true;
    }
  } else if (api_ == Api::kResponses) {
    Write(responses->Start());
  }
}

void Call::Process(size_t j, const runtime::EngineOutput& out) {
  if (failed_) return;
  const size_t ci = j * static_cast<size_t>(n) + static_cast<size_t>(out.index);
  ARLE_CHECK(ci < choices.size()) << "engine sample index " << out.index << " out of range";
  ChoiceState& c = choices[ci];
  if (c.finished) return;
  const Clock::time_point now = Clock::now();
  if (!out.tokens.empty()) {
    if (!first_token_) {
      first_token_ = now;
      shared_->metrics.ObserveTimeToFirstToken(Seconds(now - arrival_));
    }
    if (c.last_token) {
      const double per_token = Seconds(now - *c.last_token) / static_cast<double>(out.tokens.size());
      for (size_t k = 0; k < out.tokens.size(); ++k) {
        shared_->metrics.ObserveInterTokenLatency(per_token);
      }
    }
    c.last_token = now;
  }
  std::vector<TokenLogprob> lps;
  if (want_logprobs) {
    const tokenizer::Tokenizer& tok = shared_->engine.tokenizer();
    for (const runtime::SampledToken& t : out.tokens) lps.push_back(MakeTokenLogprob(tok, t));
  }
  const bool final = out.finish_reason != runtime::FinishReason::kNone;
  switch (api_) {
    case Api::kChat:
      ProcessChat(static_cast<int>(ci), c, out, std::move(lps), final);
      break;
    case Api::kCompletion:
      ProcessCompletion(static_cast<int>(ci), c, out, lps, final);
      break;
    case Api::kResponses:
      ProcessResponses(c, out, final);
      break;
  }
  if (!final) return;
  c.finished = true;
  c.n_generated = out.n_generated_tokens;
  submissions[j].cached_tokens = std::max(submissions[j].cached_tokens, out.n_cached_prompt_tokens);
  shared_->metrics.RecordFinish(c.finish_reason);
  if (++n_finished_ == choices.size()) Complete();
}

void Call::ProcessChat(int index, ChoiceState& c, const runtime::EngineOutput& out,
                 std::vector<TokenLogprob> lps, bool final) {
  std::vector<runtime::OutputDelta> deltas;
  c.parser->Feed(out.text, &deltas);
  if (final) {
    c.parser->Flush(&deltas);
    const runtime::ParsedOutput& parsed = c.parser->result();
    if (parsed.malformed) {
      ARLE_LOG_DEBUG("{} choice {}: malformed model output: {}", meta.id, index,
                     fmt::join(parsed.problems, "; "));
    }
    c.finish_reason = std::string(runtime::FinishReasonName(out.finish_reason));
    // OpenAI reports "tool_calls" when the model called tools (not when it ran out of tokens).
    if (out.finish_reason == runtime::FinishReason::kStop && !parsed.tool_calls.empty()) {
      c.finish_reason = "tool_calls";
    }
  }
  for (TokenLogprob& t : lps) c.logprobs.push_back(std::move(t));
  if (!stream) return;

  auto take_logprobs = [&]() -> std::optional<std::vector<TokenLogprob>> {
    if (!want_logprobs || c.logprobs.empty()) return std::nullopt;
    return std::exchange(c.logprobs, {});
  };
  // Consecutive content (or reasoning) deltas go out as one chunk; each tool-call delta as its
  // own chunk, the way OpenAI streams them.
  size_t k = 0;
  while (k < deltas.size()) {
    ChatChunkChoice chunk;
    chunk.index = index;
    const runtime::OutputDeltaKind kind = deltas[k].kind;
    if (kind == runtime::OutputDeltaKind::kContent || kind == runtime::OutputDeltaKind::kReasoning) {
      std::string text;
      while (k < deltas.size() && deltas[k].kind == kind) text += deltas[k++].text;
      if (text.empty()) continue;
      (kind == runtime::OutputDeltaKind::kContent ? chunk.content : chunk.reasoning) = std::move(text);
    } else if (kind == runtime::OutputDeltaKind::kToolCallEnd) {
      ++k;
      continue;
    } else {
      chunk.tool_calls.push_back(deltas[k++]);
    }
    chunk.logprobs = take_logprobs();
    Write(SseData(ChatChunkJson(meta, chunk, include_usage)));
  }
  if (final) {
    ChatChunkChoice chunk;
    chunk.index = index;
    chunk.logprobs = take_logprobs();
    chunk.finish_reason = c.finish_reason;
    Write(SseData(ChatChunkJson(meta, chunk, include_usage)));
  }
}

void Call::ProcessCompletion(int index, ChoiceState& c, const runtime::EngineOutput& out,
                       const std::vector<TokenLogprob>& lps, bool final) {
  const Submission& sub = submissions[static_cast<size_t>(index / n)];
  if (final) c.finish_reason = std::string(runtime::FinishReasonName(out.finish_reason));
  std::string piece;
  if (!c.started) {
    c.started = true;
    piece = sub.echo_text;
    c.text_offset = tokenizer::Utf8CodePointCount(sub.echo_text);
  }
  piece += out.text;
  std::optional<CompletionLogprobs> lp_delta;
  if (want_logprobs) {
    lp_delta.emplace();
    AppendCompletionLogprobs(lps, &c.text_offset, &*lp_delta);
  }
  std::vector<int32_t> ids;
  if (return_token_ids) {
    for (const runtime::SampledToken& t : out.tokens) ids.push_back(t.id);
  }
  if (!stream) {
    c.text += piece;
    c.token_ids.insert(c.token_ids.end(), ids.begin(), ids.end());
    if (lp_delta) {
      if (!c.completion_logprobs) c.completion_logprobs.emplace();
      CompletionLogprobs& all = *c.completion_logprobs;
      auto append = [](auto& dst, auto& src) {
        dst.insert(dst.end(), std::make_move_iterator(src.begin()), std::make_move_iterator(src.end()));
      };
      append(all.tokens, lp_delta->tokens);
      append(all.token_logprobs, lp_delta->token_logprobs);
      append(all.top_logprobs, lp_delta->top_logprobs);
      append(all.text_offset, lp_delta->text_offset);
    }
    return;
  }
  // Token ids go out even while their text is held back (a partial character or a possible
  // stop string), so a client sees every generated id once.
  const bool ids_due = return_token_ids && (!ids.empty() || !c.sent_prompt_ids);
  if (piece.empty() && lps.empty() && !final && !ids_due) return;
  CompletionChoice chunk;
  chunk.index = index;
  chunk.text = std::move(piece);
  chunk.finish_reason = c.finish_reason;
  chunk.logprobs = std::move(lp_delta);
  if (return_token_ids) {
    if (!c.sent_prompt_ids) chunk.prompt_token_ids = sub.request.prompt_tokens;
    c.sent_prompt_ids = true;
    chunk.token_ids = std::move(ids);
  }
  Write(SseData(CompletionChunkJson(meta, chunk, include_usage)));
}

void Call::ProcessResponses(ChoiceState& c, const runtime::EngineOutput& out, bool final) {
  std::vector<runtime::OutputDelta> deltas;
  c.parser->Feed(out.text, &deltas);
  if (final) c.parser->Flush(&deltas);
  std::string sse;
  for (const runtime::OutputDelta& d : deltas) {
    if (d.kind == runtime::OutputDeltaKind::kReasoning) {
      sse += responses->ReasoningDelta(d.text);
      c.in_reasoning = true;
    } else if (d.kind == runtime::OutputDeltaKind::kContent) {
      sse += responses->TextDelta(d.text);
      c.in_reasoning = false;
    }
  }
  if (c.in_reasoning) c.n_reasoning_tokens += static_cast<int64_t>(out.tokens.size());
  if (final) c.finish_reason = std::string(runtime::FinishReasonName(out.finish_reason));
  if (stream && !sse.empty()) Write(std::move(sse));
}

void Call::Complete() {
  Usage usage;
  for (const Submission& s : submissions) {
    usage.prompt_tokens += static_cast<int64_t>(s.request.prompt_tokens.size());
    usage.cached_tokens += s.cached_tokens;
  }
  bool aborted = false;
  for (const ChoiceState& c : choices) {
    usage.completion_tokens += c.n_generated;
    usage.reasoning_tokens += c.n_reasoning_tokens;
    aborted |= c.finish_reason == "abort";
  }
  shared_->metrics.ObserveEndToEndLatency(Seconds(Clock::now() - arrival_));
  const bool open = writer_->IsOpen() && !closed_.load();
  if (stream) {
    if (api_ == Api::kChat) {
      if (include_usage) Write(SseData(ChatUsageChunkJson(meta, usage)));
      Write(std::string(kSseDone));
    } else if (api_ == Api::kCompletion) {
      if (include_usage) Write(SseData(CompletionUsageChunkJson(meta, usage)));
      Write(std::string(kSseDone));
    } else {
      Write(responses->Finish(choices[0].finish_reason, usage));
    }
    writer_->Finish();
    Finalize(open ? 200 : 499);
    return;
  }
  if (!open) {
    Finalize(499);
    return;
  }
  if (aborted) {
    ApiError e;
    e.status = 503;
    e.message = "The request was cancelled before it finished: the server is shutting down.";
    Finalize(503);
    SendApiError(*writer_, e);
    return;
  }
  std::string body;
  if (api_ == Api::kChat) {
    std::vector<ChatChoice> out;
    for (size_t i = 0; i < choices.size(); ++i) {
      ChoiceState& c = choices[i];
      const runtime::ParsedOutput& parsed = c.parser->result();
      ChatChoice cc;
      cc.index = static_cast<int>(i);
      cc.content = parsed.content;
      cc.reasoning = parsed.reasoning;
      cc.tool_calls = parsed.tool_calls;
      cc.finish_reason = c.finish_reason;
      if (want_logprobs) cc.logprobs = std::move(c.logprobs);
      out.push_back(std::move(cc));
    }
    body = ChatCompletionJson(meta, out, usage);
  } else if (api_ == Api::kCompletion) {
    std::vector<CompletionChoice> out;
    for (size_t i = 0; i < choices.size(); ++i) {
      ChoiceState& c = choices[i];
      CompletionChoice cc;
      cc.index = static_cast<int>(i);
      cc.text = std::move(c.text);
      cc.finish_reason = c.finish_reason;
      if (want_logprobs) cc.logprobs = c.completion_logprobs.value_or(CompletionLogprobs{});
      if (return_token_ids) {
        cc.prompt_token_ids = submissions[i / static_cast<size_t>(n)].request.prompt_tokens;
        cc.token_ids = std::move(c.token_ids);
      }
      out.push_back(std::move(cc));
    }
    body = CompletionJson(meta, out, usage);
  } else {
    (void)responses->Finish(choices[0].finish_reason, usage);
    body = responses->ResponseJson();
  }
  Finalize(200);
  writer_->Send(200, "application/json", std::move(body));
}

void Call::Finalize(int http_status) {
  shared_->metrics.RecordRequest(http_status);
  std::lock_guard lock(shared_->mu);
  shared_->active.erase(serial_);
}

}  // namespace arle::server::openai_internal
