// RequestStream: one request on the engine, its events read on the caller's thread. The engine
// thread only queues each event, so the reader may be slow (a terminal, a parser); the blocking
// reads make a lone request (arle run, bench, the agent) a plain loop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "arle/core/status.h"
#include "arle/runtime/engine.h"

namespace arle::runtime {

class RequestStream {
 public:
  // Submits `request`. Errors are Engine::Submit's. The engine must outlive the stream.
  static core::StatusOr<std::unique_ptr<RequestStream>> Submit(Engine& engine,
                                                               EngineRequest request);
  RequestStream(const RequestStream&) = delete;
  RequestStream& operator=(const RequestStream&) = delete;
  // Cancels the request if it is still running.
  ~RequestStream();

  // The next event, waiting for it; nullopt once every sample's final event has been read.
  std::optional<EngineOutput> Next();
  // Asks the engine to stop the request; its final events (finish_reason kAbort) still come.
  void Cancel();
  uint64_t id() const { return id_; }

  // When things happened on the engine thread (not when the reader got to them).
  using Clock = std::chrono::steady_clock;
  Clock::time_point submitted() const { return submitted_; }
  // The event with the first token, and the last final event; set once Next has returned them.
  std::optional<Clock::time_point> first_token() const { return first_token_; }
  std::optional<Clock::time_point> finished() const { return finished_; }

 private:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<EngineOutput, Clock::time_point>> queue;  // with when it was sent
  };
  RequestStream(Engine& engine, int n_samples) : engine_(engine), n_open_(n_samples) {}
  Engine& engine_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  uint64_t id_ = 0;
  int n_open_;  // samples whose final event has not been read
  Clock::time_point submitted_;
  std::optional<Clock::time_point> first_token_, finished_;
};

}  // namespace arle::runtime
