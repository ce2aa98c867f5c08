// TrainControl (the routes of `arle train --control-port`) and TrainControlProxy (`arle serve
// --train-control-url`): thin HTTP over train::TrainMonitor and ServeClient.
#include "apps/arle/train_control.h"

#include <fmt/format.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "arle/io/http_client.h"

namespace arle::app {

using io::HttpResponse;
using io::ParseServerUrl;
using io::ServeClient;
using io::ServerUrl;
namespace {

constexpr char kJson[] = "application/json";
constexpr char kAccepted[] = "{\"accepted\":true}";
// Requests waiting for the proxy's thread beyond the one in flight; more get 503 (each waits at
// most the timeout, so the queue bounds a client's wait too).
constexpr size_t kMaxQueued = 8;

// The value of `name` in the query of `target` ("/p?a=1&b=2"), or nullopt when absent.
std::optional<std::string_view> QueryValue(std::string_view target, std::string_view name) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  }
  return std::nullopt;
}

// A non-negative decimal integer that fits int64 (at most 18 digits), else nullopt.
std::optional<int64_t> ParseSeq(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

// ---- TrainControl ----------------------------------------------------------------------------

TrainControl::TrainControl(int64_t steps, std::string out, std::atomic<bool>* stop)
    : monitor_(steps, std::move(out), static_cast<int64_t>(getpid())), stop_(stop) {}

core::StatusOr<std::unique_ptr<TrainControl>> TrainControl::Start(int port, int64_t steps,
                                                                  std::string out,
                                                                  std::atomic<bool>* stop) {
  std::unique_ptr<TrainControl> c(new TrainControl(steps, std::move(out), stop));
  server::HttpServerOptions options;
  options.host = "127.0.0.1";  // control without a key: never reachable from another machine
  options.port = port;
  options.n_io_threads = 1;
  options.max_body_bytes = 64 << 10;
  c->http_ = std::make_unique<server::HttpServer>(options);
  TrainControl* self = c.get();
  using server::HttpRequest;
  using server::ResponseWriter;
  c->http_->Route("GET", "/v1/train/status",
                  [self](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
                    w->Send(200, kJson, self->monitor_.StatusJson());
                  });
  c->http_->Route("GET", "/v1/train/events",
                  [self](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
                    int64_t after = 0;
                    if (auto v = QueryValue(r.target, "after_seq")) {
                      std::optional<int64_t> parsed = ParseSeq(*v);
                      if (!parsed) {
                        return server::SendError(
                            *w, 400,
                            fmt::format("after_seq must be a non-negative integer, got '{}'", *v),
                            "after_seq");
                      }
                      after = *parsed;
                    }
                    w->Send(200, kJson, self->monitor_.EventsJson(after));
                  });
  c->http_->Route("POST", "/v1/train/stop",
                  [self](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
                    self->stop_->store(true);
                    self->monitor_.SetState(train::RunState::kStopping);
                    w->Send(202, kJson, kAccepted);
                  });
  c->http_->Route("POST", "/v1/train/save",
                  [self](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
                    self->save_now_.store(true);
                    w->Send(202, kJson, kAccepted);
                  });
  if (core::Status st = c->http_->Start(); !st.ok()) {
    // The server's hint names --port; this flag is another.
    return st.WithContext("--control-port")
        .WithHint("is another run or server using it? pick another --control-port (0 = any free)");
  }
  return c;
}

TrainControl::~TrainControl() {
  Finish(core::InternalError("the command ended before the run returned"));
}

int TrainControl::port() const { return http_->port(); }

train::TrainCallbacks TrainControl::Wrap(train::TrainCallbacks inner) {
  inner.stop = stop_;
  inner.save_now = &save_now_;
  return monitor_.Wrap(std::move(inner));
}

void TrainControl::Finish(const core::Status& result) {
  if (finished_) return;
  finished_ = true;
  if (result.ok()) {
    monitor_.SetState(train::RunState::kFinished);
  } else {
    monitor_.SetState(train::RunState::kFailed, result.message());
  }
  if (http_) http_->Stop(std::chrono::seconds(1));
}

// ---- TrainControlProxy -----------------------------------------------------------------------

struct TrainControlProxy::Impl {
  struct Job {
    std::string method, target, body;
    std::shared_ptr<server::ResponseWriter> writer;
  };

  std::optional<ServerUrl> url;  // nullopt: unconfigured
  std::chrono::milliseconds timeout{0};
  std::atomic<bool> cancel{false};
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> queue;  // guarded by mu
  bool stopping = false;  // guarded by mu
  std::thread worker;

  void Handle(const server::HttpRequest& r, std::shared_ptr<server::ResponseWriter> w) {
    if (!url) {
      return server::SendError(
          *w, 404,
          fmt::format("{} {}: no training run is attached to this server", r.method, r.path), {},
          "train_control_unconfigured");
    }
    bool stopped = false;
    {
      std::lock_guard lock(mu);
      stopped = stopping;
      if (!stopping && queue.size() < kMaxQueued) {
        queue.push_back({r.method, r.target, r.body, std::move(w)});
        cv.notify_one();
        return;
      }
    }
    server::SendError(*w, 503,
                      stopped ? "the server is shutting down"
                              : "too many requests are waiting for the training run's control port",
                      {}, "train_control_busy", {{"Retry-After", "1"}});
  }

  void Run() {
    ServeClient client(*url, /*api_key=*/"", timeout, &cancel);
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) break;
        job = std::move(queue.front());
        queue.pop_front();
      }
      if (!job.writer->IsOpen()) continue;  // the client left while waiting
      const auto start = std::chrono::steady_clock::now();
      core::StatusOr<HttpResponse> answer =
          job.method == "POST" ? client.Post(job.target, job.body) : client.Get(job.target);
      if (answer.ok()) {
        job.writer->Send(answer->status,
                         answer->content_type.empty() ? std::string(kJson) : answer->content_type,
                         std::move(answer->body));
        continue;
      }
      // ServeClient bounds connecting and every wait by `timeout`; a failure that took that long
      // was the upstream not answering.
      const bool timed_out = std::chrono::steady_clock::now() - start >= timeout;
      server::SendError(
          *job.writer, timed_out ? 504 : 502,
          fmt::format("the training run's control port at {} {}: {}", url->ToString(),
                      timed_out ? "did not answer in time" : "is unreachable",
                      answer.status().message()),
          {}, timed_out ? "train_control_timeout" : "train_control_unreachable");
    }
    std::lock_guard lock(mu);
    for (Job& job : queue) {
      server::SendError(*job.writer, 503, "the server is shutting down");
    }
    queue.clear();
  }
};

TrainControlProxy::TrainControlProxy(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

core::StatusOr<std::unique_ptr<TrainControlProxy>> TrainControlProxy::Create(
    std::string_view url, std::chrono::milliseconds timeout) {
  auto impl = std::make_shared<Impl>();
  impl->timeout = timeout;
  if (!url.empty()) {
    auto parsed = ParseServerUrl(url);
    if (!parsed.ok()) {
      return parsed.status().WithContext("--train-control-url");
    }
    impl->url = std::move(parsed).value();
    impl->worker = std::thread([p = impl.get()] { p->Run(); });
  }
  return std::unique_ptr<TrainControlProxy>(new TrainControlProxy(std::move(impl)));
}

TrainControlProxy::~TrainControlProxy() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cancel.store(true);
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
}

void TrainControlProxy::RegisterRoutes(server::HttpServer& server) {
  // The handlers keep the state alive; the worker is joined by the destructor, after which a
  // late request (none once the server has stopped) would only be answered 503.
  std::shared_ptr<Impl> impl = impl_;
  for (const char* method : {"GET", "POST"}) {
    server.Route(method, "/v1/train/{rest...}",
                 [impl](const server::HttpRequest& r, std::shared_ptr<server::ResponseWriter> w) {
                   impl->Handle(r, std::move(w));
                 });
  }
}

}  // namespace arle::app
