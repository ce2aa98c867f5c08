// TrainMonitor: the run's snapshot and event ring behind one mutex; events are stored as their
// JSON text so a reader only concatenates.
#include "arle/train/train_monitor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "arle/core/check.h"

namespace arle::train {
namespace {

using Json = nlohmann::ordered_json;

// A loss can be NaN or infinite in a diverging run; JSON has neither, so both become null (as
// nlohmann would write them) rather than an error.
Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// An evaluation as the events and the status show it: step, loss and ppl (and tokens in
// events), or step and the loop's own metrics when it has them.
Json EvalJson(const EvalReport& r, bool with_tokens = true) {
  Json j = {{"step", r.step}};
  if (!r.metrics_json.empty()) {
    const Json metrics = Json::parse(r.metrics_json);  // items() must not outlive it
    for (const auto& [k, v] : metrics.items()) j[k] = v;
    return j;
  }
  j["loss"] = Number(r.loss);
  j["ppl"] = Number(r.ppl);
  if (with_tokens) j["tokens"] = r.tokens;
  return j;
}

// The members of an object without its braces, to splice after "seq" and "type".
std::string Members(const Json& j) {
  std::string s = Dump(j);
  return s.size() > 2 ? s.substr(1, s.size() - 2) : std::string();
}

}  // namespace

std::string_view RunStateName(RunState state) {
  switch (state) {
    case RunState::kStarting:
      return "starting";
    case RunState::kRunning:
      return "running";
    case RunState::kStopping:
      return "stopping";
    case RunState::kFinished:
      return "finished";
    case RunState::kFailed:
      return "failed";
  }
  return "unknown";
}

TrainMonitor::TrainMonitor(int64_t steps, std::string out, int64_t pid, size_t event_capacity)
    : steps_(steps), out_(std::move(out)), pid_(pid), capacity_(event_capacity) {
  ARLE_CHECK(capacity_ >= 1) << "TrainMonitor needs room for one event";
  std::lock_guard lock(mu_);
  PushLocked("state", Members(Json{{"state", RunStateName(state_)}}));
}

void TrainMonitor::PushLocked(std::string_view type, const std::string& fields_json) {
  const int64_t seq = next_seq_++;
  std::string json = Dump(Json{{"seq", seq}, {"type", type}, {"time", UnixSeconds()}});
  if (!fields_json.empty()) {
    json.back() = ',';  // the closing '}'
    json.append(fields_json);
    json.push_back('}');
  }
  events_.push_back({seq, std::move(json)});
  if (events_.size() > capacity_) events_.pop_front();
}

void TrainMonitor::OnStep(const StepReport& r) {
  std::string fields = Members(Json{{"step", r.step},
                                    {"loss", Number(r.loss)},
                                    {"lr", Number(r.lr)},
                                    {"grad_norm", Number(r.grad_norm)},
                                    {"tokens", r.tokens},
                                    {"tokens_per_s", Number(r.tokens_per_s)},
                                    {"elapsed_s", Number(r.elapsed_s)}});
  if (!r.metrics_json.empty()) {
    Json all = Json::parse("{" + fields + "}");
    const Json metrics = Json::parse(r.metrics_json);  // items() must not outlive it
    for (const auto& [k, v] : metrics.items()) all[k] = v;
    fields = Members(all);
  }
  std::lock_guard lock(mu_);
  if (!has_step_) first_step_ = r.step;
  has_step_ = true;
  last_step_ = r;
  PushLocked("step", fields);
  if (state_ == RunState::kStarting) SetStateLocked(RunState::kRunning, {});
}

void TrainMonitor::OnEval(const EvalReport& r) {
  const std::string fields = Members(EvalJson(r));
  std::lock_guard lock(mu_);
  has_eval_ = true;
  last_eval_ = r;
  PushLocked("eval", fields);
}

void TrainMonitor::OnSave(const std::string& step_dir) {
  std::lock_guard lock(mu_);
  latest_checkpoint_ = step_dir;
  // The checkpoint is of the last reported step (RunTraining saves after reporting it).
  PushLocked("save", Members(Json{{"step", has_step_ ? Json(last_step_.step) : Json(nullptr)},
                                  {"dir", step_dir}}));
}

void TrainMonitor::SetState(RunState state, std::string error) {
  std::lock_guard lock(mu_);
  SetStateLocked(state, std::move(error));
}

void TrainMonitor::SetStateLocked(RunState state, std::string error) {
  if (state_ == state || state_ == RunState::kFinished || state_ == RunState::kFailed) return;
  if (state_ == RunState::kStopping && state == RunState::kRunning) return;
  state_ = state;
  Json fields = {{"state", RunStateName(state)}};
  if (state == RunState::kFailed) {
    error_ = std::move(error);
    fields["error"] = error_;
  }
  PushLocked("state", Members(fields));
}

RunState TrainMonitor::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

int64_t TrainMonitor::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

TrainCallbacks TrainMonitor::Wrap(TrainCallbacks inner) {
  TrainCallbacks cb;
  cb.stop = inner.stop;
  cb.save_now = inner.save_now;
  const std::atomic<bool>* stop = inner.stop;
  cb.on_step = [this, stop, f = std::move(inner.on_step)](const StepReport& r) {
    OnStep(r);
    if (stop != nullptr && stop->load()) SetState(RunState::kStopping);
    if (f) f(r);
  };
  cb.on_eval = [this, f = std::move(inner.on_eval)](const EvalReport& r) {
    OnEval(r);
    if (f) f(r);
  };
  cb.on_save = [this, f = std::move(inner.on_save)](const std::string& dir) {
    OnSave(dir);
    if (f) f(dir);
  };
  return cb;
}

std::string TrainMonitor::StatusJson() const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - created_).count();
  std::lock_guard lock(mu_);
  Json j;
  j["state"] = RunStateName(state_);
  j["step"] = has_step_ ? Json(last_step_.step) : Json(nullptr);
  j["steps"] = steps_;
  j["loss"] = has_step_ ? Number(last_step_.loss) : Json(nullptr);
  j["lr"] = has_step_ ? Number(last_step_.lr) : Json(nullptr);
  j["grad_norm"] = has_step_ ? Number(last_step_.grad_norm) : Json(nullptr);
  j["tokens_per_s"] = has_step_ ? Number(last_step_.tokens_per_s) : Json(nullptr);
  j["elapsed_s"] = elapsed;
  Json eta = nullptr;
  if (has_step_ && state_ != RunState::kFinished && state_ != RunState::kFailed) {
    // elapsed_s of a step counts from the first step's start, so this is the mean per step.
    const double per_step =
        last_step_.elapsed_s / static_cast<double>(last_step_.step - first_step_ + 1);
    eta = Number(per_step * static_cast<double>(std::max<int64_t>(0, steps_ - last_step_.step)));
  } else if (state_ == RunState::kFinished) {
    eta = 0.0;
  }
  j["eta_s"] = eta;
  j["out"] = out_;
  j["latest_checkpoint"] = latest_checkpoint_.empty() ? Json(nullptr) : Json(latest_checkpoint_);
  j["last_eval"] = has_eval_ ? EvalJson(last_eval_, /*with_tokens=*/false) : Json(nullptr);
  j["metrics"] = has_step_ && !last_step_.metrics_json.empty()
                     ? Json::parse(last_step_.metrics_json)
                     : Json(nullptr);
  j["pid"] = pid_;
  j["error"] = error_.empty() ? Json(nullptr) : Json(error_);
  return Dump(j);
}

std::string TrainMonitor::EventsJson(int64_t after_seq) const {
  ARLE_CHECK(after_seq >= 0) << "after_seq " << after_seq;
  std::lock_guard lock(mu_);
  const int64_t last = next_seq_ - 1;
  const int64_t oldest = events_.empty() ? next_seq_ : events_.front().seq;
  // Events after_seq + 1 .. oldest - 1 existed and are gone.
  const bool truncated = after_seq + 1 < oldest;
  std::string out = "{\"events\":[";
  int64_t next = std::min(after_seq, last);
  bool first = true;
  // Seqs are consecutive, so the first wanted event's index is arithmetic.
  const int64_t skip = std::max<int64_t>(0, after_seq + 1 - oldest);
  for (size_t i = static_cast<size_t>(std::min<int64_t>(skip, static_cast<int64_t>(events_.size())));
       i < events_.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += events_[i].json;
    next = events_[i].seq;
  }
  out += "],\"next_seq\":" + std::to_string(next) +
         ",\"truncated\":" + (truncated ? "true" : "false") + "}";
  return out;
}

}  // namespace arle::train
