// TrainMonitor: a training run's live state for observers — the latest step, evaluation and
// checkpoint, the run's state, and a bounded ring of numbered events — published by the training
// thread through TrainCallbacks and read as JSON by others (`arle train --control-port`).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>

#include "arle/train/run.h"

namespace arle::train {

// starting: before the first step has finished (model load, data); running; stopping: a stop was
// requested and is honoured after the current step (checkpoint, then return); finished / failed:
// RunTraining returned (final: later SetState calls are ignored).
enum class RunState { kStarting, kRunning, kStopping, kFinished, kFailed };
std::string_view RunStateName(RunState state);

// Thread-safe: every method may be called from any thread. One mutex guards everything; the
// publishers hold it for a copy of a few numbers and one small JSON text, readers for building
// their answer, so neither side waits on the other for long. The training thread never blocks on
// a reader's network.
class TrainMonitor {
 public:
  static constexpr size_t kDefaultEventCapacity = 1024;

  // `steps`: the run's total updates; `out`: its directory; `pid`: shown in the status.
  // REQUIRES: event_capacity >= 1.
  TrainMonitor(int64_t steps, std::string out, int64_t pid,
               size_t event_capacity = kDefaultEventCapacity);

  // Publishing. Each adds one event ("step", "eval", "save"), numbered by the next seq (1, 2, ...,
  // in call order); the oldest event is dropped beyond the capacity. The first step moves the
  // state from starting to running.
  void OnStep(const StepReport& report);
  void OnEval(const EvalReport& report);
  void OnSave(const std::string& step_dir);
  // Adds a "state" event when the state changes (with `error` for kFailed). Transitions out of
  // kFinished/kFailed are ignored, and so is kRunning once stopping (a step after the request).
  void SetState(RunState state, std::string error = {});
  RunState state() const;

  // Callbacks that publish here first and then call `inner`'s (which may be empty). After a
  // step, a set `inner.stop` moves the state to stopping (Ctrl-C reaches the monitor this way).
  // `stop` and `save_now` are passed through. The monitor must outlive the callbacks.
  TrainCallbacks Wrap(TrainCallbacks inner);

  // {"state", "step", "steps", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "eta_s",
  //  "out", "latest_checkpoint", "last_eval": {"step","loss","ppl"} | null, "metrics", "pid",
  //  "error"}. A loop with its own metrics (RL) shows the last step's StepReport::metrics_json as
  //  "metrics" (else null) and an evaluation's EvalReport::metrics_json in place of loss and ppl;
  //  its step and eval events carry the same members.
  // Step fields are null before the first step; elapsed_s counts from the monitor's creation;
  // eta_s extrapolates the mean time per step of this process (a resume counts its own steps).
  std::string StatusJson() const;

  // {"events": [...], "next_seq", "truncated"}: the kept events with seq > after_seq, oldest
  // first. truncated: events after `after_seq` have already left the ring (the answer starts at
  // the oldest kept). next_seq: the seq to pass next time — the last event's, or when there is
  // none, min(after_seq, last_seq()) (so a client ahead of this run, e.g. of an earlier process,
  // resynchronizes). REQUIRES: after_seq >= 0.
  std::string EventsJson(int64_t after_seq) const;

  int64_t last_seq() const;  // 0 before any event
  size_t event_capacity() const { return capacity_; }

 private:
  struct Event {
    int64_t seq;
    std::string json;  // the whole object, "seq" included
  };
  // REQUIRES: mu_ held. `fields_json` is a JSON object's members without braces.
  void PushLocked(std::string_view type, const std::string& fields_json);
  void SetStateLocked(RunState state, std::string error);

  const int64_t steps_;
  const std::string out_;
  const int64_t pid_;
  const size_t capacity_;
  const std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();

  mutable std::mutex mu_;
  RunState state_ = RunState::kStarting;
  std::string error_;
  bool has_step_ = false;
  StepReport last_step_;
  int64_t first_step_ = 0;  // the first step this process reported (a resume starts late)
  bool has_eval_ = false;
  EvalReport last_eval_;
  std::string latest_checkpoint_;
  int64_t next_seq_ = 1;
  std::deque<Event> events_;
};

}  // namespace arle::train
