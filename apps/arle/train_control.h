// `arle train pretrain|sft --control-port N`: a running training's HTTP control routes on
// 127.0.0.1 (status, events, stop, save) over a train::TrainMonitor; and `arle serve
// --train-control-url URL`: the same routes proxied from the OpenAI server.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "arle/core/status.h"
#include "arle/server/http_server.h"
#include "arle/train/run.h"
#include "arle/train/train_monitor.h"

namespace arle::app {

// Routes (no API key; 127.0.0.1 only):
//   GET  /v1/train/status             -> 200 TrainMonitor::StatusJson()
//   GET  /v1/train/events?after_seq=N -> 200 TrainMonitor::EventsJson(N) (N defaults to 0; not a
//                                        non-negative integer -> 400, param "after_seq")
//   POST /v1/train/stop               -> 202 {"accepted": true}: sets the stop flag (after the
//                                        current step: a checkpoint, then the run returns)
//   POST /v1/train/save               -> 202 {"accepted": true}: a checkpoint after the current step
//   anything else under /v1/train/    -> 404 (405 for a known path with the wrong method), in
//                                        OpenAI's error envelope.
// The server runs from Start() until Finish() or destruction. Thread-safe: the HTTP threads only
// read the monitor and set atomics.
class TrainControl {
 public:
  // Binds 127.0.0.1:`port` (0 = any free port; see port()) before anything is trained or
  // written. `stop` is the run's stop flag (shared with Ctrl-C); it must outlive this object.
  // Errors: the port is in use (IoError naming it).
  static core::StatusOr<std::unique_ptr<TrainControl>> Start(int port, int64_t steps,
                                                             std::string out,
                                                             std::atomic<bool>* stop);
  ~TrainControl();  // Finish(InternalError) when not finished: the run did not reach its end
  TrainControl(const TrainControl&) = delete;
  TrainControl& operator=(const TrainControl&) = delete;

  int port() const;
  train::TrainMonitor& monitor() { return monitor_; }

  // `inner` publishing to the monitor first, with `stop` and this object's save flag.
  train::TrainCallbacks Wrap(train::TrainCallbacks inner);

  // The run returned `result`: the state becomes finished or failed (its message), then the
  // server stops (answers in flight get up to a second). Idempotent.
  void Finish(const core::Status& result);

 private:
  TrainControl(int64_t steps, std::string out, std::atomic<bool>* stop);

  train::TrainMonitor monitor_;
  std::atomic<bool>* stop_;
  std::atomic<bool> save_now_{false};
  std::unique_ptr<server::HttpServer> http_;
  bool finished_ = false;
};

// `arle serve`'s GET and POST /v1/train/{...}: with an upstream URL (http://host:port, as
// `arle train --control-port` serves), the method, path, query and body go there and its status,
// content type and body come back. Errors in OpenAI's envelope: no URL configured -> 404 code
// "train_control_unconfigured"; upstream unreachable -> 502 code "train_control_unreachable";
// no answer within `timeout` -> 504 code "train_control_timeout"; more than a few requests
// waiting for the upstream -> 503. Upstream calls run one at a time on the proxy's own thread,
// never on the server's I/O threads. The routes need the API key when the server has one.
// Thread-safe. Destroy it after the HttpServer has stopped.
class TrainControlProxy {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};

  // `url` empty: the routes answer train_control_unconfigured. Errors: a malformed or https URL
  // (InvalidArgument / Unimplemented naming it).
  static core::StatusOr<std::unique_ptr<TrainControlProxy>> Create(
      std::string_view url, std::chrono::milliseconds timeout = kDefaultTimeout);
  ~TrainControlProxy();  // cancels a call in flight, answers queued ones 503, joins the thread
  TrainControlProxy(const TrainControlProxy&) = delete;
  TrainControlProxy& operator=(const TrainControlProxy&) = delete;

  void RegisterRoutes(server::HttpServer& server);

  struct Impl;

 private:
  explicit TrainControlProxy(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace arle::app
