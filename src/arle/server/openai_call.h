// Internal to arle_server: one generation request in flight (Call), the same for every API — it
// submits the prepared engine requests, moves engine events off the engine thread onto the
// connection's strand, where its Protocol (openai_protocol.h) turns them into SSE chunks or the
// final JSON, and cancels the engine requests when the client disconnects.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "arle/runtime/engine.h"
#include "arle/server/http_server.h"
#include "arle/server/openai_protocol.h"

namespace arle::server::openai_internal {

// Sends `e` as OpenAI's error envelope.
void SendApiError(ResponseWriter& writer, const ApiError& e);

// One generation request.
//
// Threads: the engine callback (engine thread) only copies the event into the Call's mailbox and,
// when no drain is pending, asks the writer to run Drain() on the connection's strand
// (ResponseWriter::Post). Drain() processes the mailbox in order, one drainer at a time, so the
// Protocol and the per-choice state need no lock: detokenized logprob texts, the output parser
// and JSON/SSE building all run there. Disconnects (OnClose, an I/O thread) only cancel engine
// requests. Locks: mu_ guards the mailbox and the flags; ids_mu_ guards only the engine ids, so a
// disconnect reported from inside a write can cancel without mu_.
class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(std::shared_ptr<Shared> shared, std::shared_ptr<ResponseWriter> writer, CallPlan plan,
       Clock::time_point arrival);

  // Registers, submits every prompt, and starts the response. Errors are sent to the client.
  // Called once, from the route handler.
  void Run();

  // Cancels the engine requests (client gone, or shutdown). Never takes mu_.
  void Cancel(bool client_gone);

 private:
  // One engine event as the engine thread hands it over: copied, nothing derived.
  struct Event {
    size_t submission = 0;
    runtime::EngineOutput out;
    Clock::time_point at;
  };

  std::vector<uint64_t> EngineIds() const;

  // Engine thread: queues the event; schedules a drain unless one is pending or Run() has not
  // finished submitting.
  void OnOutput(size_t submission, const runtime::EngineOutput& out);
  // Asks the writer to run Drain() (on the connection's strand). REQUIRES: draining_ was just
  // set by the caller, under mu_ (released before calling).
  void ScheduleDrain();
  // Processes queued events until the mailbox is empty, then clears draining_.
  void Drain();
  void Process(const Event& event);
  // Every choice finished: the end of the stream or the whole body.
  void Complete();
  // Records the outcome and leaves the active set.
  void Finalize(int http_status);

  const std::shared_ptr<Shared> shared_;
  const std::shared_ptr<ResponseWriter> writer_;
  const Clock::time_point arrival_;
  uint64_t serial_ = 0;

  // The request, as prepared; touched by Run() before it sets started_, then by the drainer.
  const std::unique_ptr<Protocol> protocol_;
  std::vector<runtime::EngineRequest> requests_;  // prompt tokens read by Complete()
  const size_t n_;
  const bool stream_;
  std::vector<ChoiceStatus> choices_;     // requests_.size() * n_
  std::vector<int64_t> cached_tokens_;    // per request, from the final events
  std::optional<Clock::time_point> first_token_;
  size_t n_finished_ = 0;

  std::mutex mu_;
  std::deque<Event> mailbox_;  // guarded by mu_
  bool started_ = false;       // guarded by mu_: every Submit succeeded; events may be drained
  bool failed_ = false;        // guarded by mu_: a Submit failed, the error was sent; events dropped
  bool draining_ = false;      // guarded by mu_: a Drain() is scheduled or running
  std::atomic<bool> closed_{false};  // the client went away
  mutable std::mutex ids_mu_;
  std::vector<uint64_t> engine_ids_;  // guarded by ids_mu_
};

}  // namespace arle::server::openai_internal
