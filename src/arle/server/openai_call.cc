// Call: the lifecycle of one generation request. Engine events are copied into a mailbox on the
// engine thread and drained on the connection's strand; events that arrive before every
// submission is accepted wait there, so an HTTP error can still be sent when a later Submit fails.
#include "arle/server/openai_call.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "arle/core/check.h"
#include "arle/server/openai_fields.h"

namespace arle::server::openai_internal {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

void SendApiError(ResponseWriter& writer, const ApiError& e) {
  writer.Send(e.status, "application/json", ErrorBody(e.status, e.message, e.param, e.code, e.type),
              e.headers);
}

Call::Call(std::shared_ptr<Shared> shared, std::shared_ptr<ResponseWriter> writer, CallPlan plan,
           Clock::time_point arrival)
    : shared_(std::move(shared)),
      writer_(std::move(writer)),
      arrival_(arrival),
      protocol_(std::move(plan.protocol)),
      requests_(std::move(plan.requests)),
      n_(static_cast<size_t>(plan.n)),
      stream_(plan.stream),
      choices_(requests_.size() * n_),
      cached_tokens_(requests_.size(), 0) {
  ARLE_CHECK(protocol_ != nullptr && !requests_.empty() && n_ >= 1) << "an unprepared CallPlan";
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
  for (size_t j = 0; j < requests_.size(); ++j) {
    std::shared_ptr<Call> self = shared_from_this();
    auto id = shared_->engine.Submit(
        requests_[j], [self, j](const runtime::EngineOutput& out) { self->OnOutput(j, out); });
    if (!id.ok()) {
      {
        std::lock_guard lock(mu_);
        failed_ = true;
        mailbox_.clear();
      }
      for (uint64_t i : EngineIds()) shared_->engine.Cancel(i);
      ApiError e =
          openai_fields::FromStatus(id.status(), protocol_->ParamName(id.status().field()));
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
  if (stream_) {
    writer_->StartStream(200, "text/event-stream");
    writer_->Write(protocol_->StreamStart());
  }
  bool drain = false;
  {
    std::lock_guard lock(mu_);
    started_ = true;
    drain = !mailbox_.empty() && !draining_;
    draining_ |= drain;
  }
  // The handler runs on the connection's strand already: drain what arrived meanwhile here.
  if (drain) Drain();
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

void Call::OnOutput(size_t submission, const runtime::EngineOutput& out) {
  const Clock::time_point at = Clock::now();  // latency metrics use the engine's time, not ours
  {
    std::lock_guard lock(mu_);
    if (failed_) return;
    mailbox_.push_back(Event{submission, out, at});
    if (!started_ || draining_) return;
    draining_ = true;
  }
  ScheduleDrain();
}

void Call::ScheduleDrain() {
  writer_->Post([self = shared_from_this()] { self->Drain(); });
}

void Call::Drain() {
  for (;;) {
    std::deque<Event> batch;
    {
      std::lock_guard lock(mu_);
      if (mailbox_.empty()) {
        draining_ = false;
        return;
      }
      batch.swap(mailbox_);
    }
    for (const Event& event : batch) Process(event);
  }
}

void Call::Process(const Event& event) {
  const runtime::EngineOutput& out = event.out;
  const size_t ci = event.submission * n_ + static_cast<size_t>(out.index);
  ARLE_CHECK(ci < choices_.size()) << "engine sample index " << out.index << " out of range";
  ChoiceStatus& c = choices_[ci];
  if (c.finished) return;
  if (!out.tokens.empty()) {
    if (!first_token_) {
      first_token_ = event.at;
      shared_->metrics.ObserveTimeToFirstToken(Seconds(event.at - arrival_));
    }
    if (c.last_token) {
      const double per_token =
          Seconds(event.at - *c.last_token) / static_cast<double>(out.tokens.size());
      for (size_t k = 0; k < out.tokens.size(); ++k) {
        shared_->metrics.ObserveInterTokenLatency(per_token);
      }
    }
    c.last_token = event.at;
  }
  const bool final = out.finish_reason != runtime::FinishReason::kNone;
  if (final) c.finish_reason = std::string(runtime::FinishReasonName(out.finish_reason));
  std::string sse = protocol_->OnEvent(ci, out, c);
  if (stream_ && !sse.empty()) writer_->Write(std::move(sse));
  if (!final) return;
  c.finished = true;
  c.n_generated = out.n_generated_tokens;
  int64_t& cached = cached_tokens_[event.submission];
  cached = std::max(cached, out.n_cached_prompt_tokens);
  shared_->metrics.RecordFinish(c.finish_reason);
  if (++n_finished_ == choices_.size()) Complete();
}

void Call::Complete() {
  Usage usage;
  for (size_t j = 0; j < requests_.size(); ++j) {
    usage.prompt_tokens += static_cast<int64_t>(requests_[j].prompt_tokens.size());
    usage.cached_tokens += cached_tokens_[j];
  }
  bool aborted = false;
  for (const ChoiceStatus& c : choices_) {
    usage.completion_tokens += c.n_generated;
    aborted |= c.finish_reason == "abort";
  }
  protocol_->AddUsage(&usage);
  shared_->metrics.ObserveEndToEndLatency(Seconds(Clock::now() - arrival_));
  const bool open = writer_->IsOpen() && !closed_.load();
  if (stream_) {
    writer_->Write(protocol_->StreamEnd(usage, choices_));
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
  std::string body = protocol_->Body(usage, choices_);
  Finalize(200);
  writer_->Send(200, "application/json", std::move(body));
}

void Call::Finalize(int http_status) {
  shared_->metrics.RecordRequest(http_status);
  std::lock_guard lock(shared_->mu);
  shared_->active.erase(serial_);
}

}  // namespace arle::server::openai_internal
