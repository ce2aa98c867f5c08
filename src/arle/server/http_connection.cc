// One HTTP/1.1 connection on its own strand: reads and parses requests (Beast) with their route's
// body limit, hands each to the server's router with a ResponseWriter, and writes what the writer
// queues, in order. While a response is pending it keeps reading in small pieces to notice a
// disconnect.
#include <fmt/format.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <exception>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>

#include "arle/core/logging.h"
#include "arle/server/http_parse.h"
#include "arle/server/http_server_internal.h"
#include "arle/server/http_wire.h"

namespace arle::server::http_internal {
namespace {

// While a response is pending the socket is read in small pieces only to notice a disconnect;
// bytes a pipelining client sends meanwhile are kept for the next request, up to this much.
constexpr size_t kWatchReadSize = 4096;
constexpr size_t kMaxPipelinedBytes = 1 << 20;
// After an error response that closes the connection (413, 400) unread request bytes are drained
// for this long so the close does not turn into a RST that destroys the response in flight.
constexpr auto kLingerTime = std::chrono::seconds(1);
// The header is read with no body limit: the limit is the route's, known once the header is in.
constexpr size_t kNoBodyLimit = std::numeric_limits<size_t>::max();

std::string_view ToStringView(beast::string_view s) { return {s.data(), s.size()}; }

// The values of header `field` joined with ", " as ToHttpRequest joins them, or nullopt when
// absent.
std::optional<std::string> JoinedHeader(const http::request_header<>& header, http::field field) {
  std::optional<std::string> joined;
  for (auto [it, end] = header.equal_range(field); it != end; ++it) {
    if (joined) {
      *joined += ", ";
    } else {
      joined.emplace();
    }
    *joined += ToStringView(it->value());
  }
  return joined;
}

}  // namespace

// What a writer hands to its connection's strand.
struct Outgoing {
  std::string bytes;
  bool last = false;         // the response is complete after these bytes
  bool close_after = false;  // close the connection once the response is written
  bool abort = false;        // the response cannot be completed: close the connection now
};

// ---- ResponseWriter ----------------------------------------------------------------------------

class ConnWriter final : public ResponseWriter {
 public:
  ConnWriter(std::shared_ptr<SharedState> shared, std::weak_ptr<Connection> conn,
             uint64_t request_id, bool http11, bool keep_alive)
      : shared_(std::move(shared)),
        conn_(std::move(conn)),
        request_id_(request_id),
        http11_(http11),
        keep_alive_(keep_alive) {}
  ~ConnWriter() override;

  void Send(int status, std::string content_type, std::string body, Headers headers) override;
  void StartStream(int status, std::string content_type) override;
  void Write(std::string data) override;
  void Finish() override;
  bool IsOpen() const override { return open_.load(); }
  void OnClose(std::function<void()> callback) override;
  void Post(std::function<void()> task) override;

  // On the connection's strand: the connection closed (client gone, timeout or shutdown).
  void NotifyClosed();

 private:
  enum class State { kNone, kStreaming, kDone };
  void Deliver(Outgoing out);  // REQUIRES: mu_ held (keeps posts in call order)
  bool KeepAlive() const { return keep_alive_ && !shared_->stopping.load(); }

  const std::shared_ptr<SharedState> shared_;
  const std::weak_ptr<Connection> conn_;
  const uint64_t request_id_;
  const bool http11_;
  const bool keep_alive_;
  std::atomic<bool> open_{true};

  std::mutex mu_;
  State state_ = State::kNone;             // guarded by mu_
  std::function<void()> on_close_;         // guarded by mu_
  bool closed_unfinished_ = false;         // guarded by mu_: closed before the response completed
  bool close_fired_ = false;               // guarded by mu_
};

void RunCloseCallback(const std::function<void()>& callback) {
  try {
    callback();
  } catch (const std::exception& e) {
    ARLE_LOG_ERROR("HTTP OnClose callback threw: {}", e.what());
  } catch (...) {
    ARLE_LOG_ERROR("HTTP OnClose callback threw a non-std exception");
  }
}

// ---- Connection --------------------------------------------------------------------------------

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore* core, tcp::socket socket)
      : core_(core),
        socket_(std::move(socket)),
        executor_(socket_.get_executor()),
        timer_(executor_) {
    beast::error_code ec;
    const tcp::endpoint ep = socket_.remote_endpoint(ec);
    if (!ec) {
      remote_ = ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                                     : fmt::format("{}:{}", ep.address().to_string(), ep.port());
    }
  }

  void Start() {
    net::post(executor_, [self = shared_from_this()] { self->ReadRequest(); });
  }
  // Thread-safe: from writers on any thread.
  void PostOutgoing(uint64_t request_id, Outgoing out) {
    net::post(executor_, [self = shared_from_this(), request_id, out = std::move(out)]() mutable {
      self->Enqueue(request_id, std::move(out));
    });
  }
  // Thread-safe: a writer's Post() while the connection lives.
  void PostTask(std::function<void()> task) { net::post(executor_, std::move(task)); }
  // Stop(): idle connections close now, busy ones after their response.
  void PostBeginShutdown() {
    net::post(executor_, [self = shared_from_this()] {
      if (!self->request_active_) self->Close();
    });
  }
  void PostForceClose() {
    net::post(executor_, [self = shared_from_this()] { self->Close(); });
  }

 private:
  // What a read that runs while no request is being parsed is for.
  enum class BackgroundMode {
    kWatch,        // a response is pending: notice a disconnect, keep pipelined bytes
    kNextRequest,  // the response is done: parse the next request once this read returns
    kLinger,       // closing after shutdown(send): discard until EOF or the linger timer
  };

  void ReadRequest() {
    if (closed_) return;
    if (core_->shared->stopping.load()) {
      Close();
      return;
    }
    parser_.emplace();
    ConfigureRequestParser(*parser_, kNoBodyLimit);
    body_limit_ = core_->options.max_body_bytes;
    ArmTimer(core_->options.idle_timeout);
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (closed_) return;
    if (ec) return OnReadError(ec);
    const auto& msg = parser_->get();
    const std::string_view target = ToStringView(msg.target());
    const Router::Entry* route = nullptr;
    body_limit_ = core_->BodyLimit(ToStringView(msg.method_string()),
                                   target.substr(0, target.find('?')), &route);
    if (route != nullptr && body_limit_ > core_->options.max_body_bytes) {
      // Only a client with the key may make the server read (and hold) a body this large.
      if (auto refusal =
              core_->CheckApiKey(*route, JoinedHeader(msg, http::field::authorization))) {
        return RespondAndClose(refusal->status, std::move(refusal->message), refusal->code,
                               refusal->headers);
      }
    }
    if (DeclaresBodyTooLarge(*parser_, body_limit_)) {
      return RespondAndClose(413, BodyTooLargeMessage(body_limit_));
    }
    parser_->body_limit(static_cast<std::uint64_t>(body_limit_));
    if (parser_->is_done()) return Dispatch();
    if (msg.version() >= 11 && beast::iequals(msg[http::field::expect], "100-continue")) {
      // curl and others wait (about a second) for this before sending a large body.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(socket_, net::buffer(kContinue),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (self->closed_) return;
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    ArmTimer(core_->options.idle_timeout);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (self->closed_) return;
                       if (ec) return self->OnReadError(ec);
                       self->Dispatch();
                     });
  }

  void OnReadError(beast::error_code ec) {
    DisarmTimer();
    if (auto answer = ReadErrorResponse(ec, body_limit_)) {
      return RespondAndClose(answer->first, std::move(answer->second));
    }
    // EOF between requests, a reset, a timeout: nothing to answer.
    Close();
  }

  void Dispatch() {
    DisarmTimer();
    const auto& msg = parser_->get();
    const bool http11 = msg.version() >= 11;
    const bool keep_alive = msg.keep_alive() && !core_->shared->stopping.load();
    HttpRequest request = ToHttpRequest(parser_->release(), remote_);
    parser_.reset();

    StartRequest(keep_alive);
    auto writer = std::make_shared<ConnWriter>(core_->shared, weak_from_this(), request_id_,
                                               http11, keep_alive);
    writer_ = writer;
    bg_mode_ = BackgroundMode::kWatch;
    if (!bg_pending_) StartBackgroundRead();
    ARLE_LOG_DEBUG("HTTP {} {} {}", remote_, request.method, request.target);
    core_->Handle(std::move(request), writer);
  }

  void StartRequest(bool keep_alive) {
    ++request_id_;
    request_active_ = true;
    last_queued_ = false;
    close_after_ = !keep_alive;
    core_->BeginRequest();
  }

  // An error found while reading the request (or a refusal before its body): answer it and close,
  // since the rest of the request cannot be framed. `code` and `headers` as for SendError.
  void RespondAndClose(int status, std::string message, std::string_view code = {},
                       const Headers& headers = {}) {
    StartRequest(/*keep_alive=*/false);
    Outgoing out;
    out.bytes = FullResponse(status, /*http11=*/true, /*keep_alive=*/false, "application/json",
                             ErrorBody(status, message, {}, code), headers);
    out.last = true;
    out.close_after = true;
    Enqueue(request_id_, std::move(out));
  }

  void Enqueue(uint64_t request_id, Outgoing out) {
    // Late or stale writers (a finished response, an earlier request) are ignored here.
    if (closed_ || !request_active_ || request_id != request_id_ || last_queued_) return;
    if (out.abort) return Close();
    if (!out.bytes.empty()) out_.push_back(std::move(out.bytes));
    if (out.close_after) close_after_ = true;
    if (out.last) last_queued_ = true;
    if (write_pending_) return;
    if (!out_.empty()) {
      DoWrite();
    } else if (last_queued_) {
      OnResponseDone();
    }
  }

  void DoWrite() {
    write_pending_ = true;
    writing_.assign(std::make_move_iterator(out_.begin()), std::make_move_iterator(out_.end()));
    out_.clear();
    std::vector<net::const_buffer> buffers;
    buffers.reserve(writing_.size());
    for (const std::string& s : writing_) buffers.push_back(net::buffer(s));
    // A client that stops reading cannot pin the connection (and its queue) forever.
    ArmTimer(core_->options.idle_timeout);
    net::async_write(socket_, buffers, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(beast::error_code ec) {
    write_pending_ = false;
    writing_.clear();
    if (closed_) return;
    if (ec) return Close();
    DisarmTimer();
    if (!out_.empty()) {
      DoWrite();
    } else if (last_queued_) {
      OnResponseDone();
    }
  }

  void OnResponseDone() {
    request_active_ = false;
    writer_.reset();
    core_->EndRequest();
    if (close_after_ || core_->shared->stopping.load()) return GracefulClose();
    if (bg_pending_) {
      // Two reads may not run at once: stop the watch read; its completion starts the parser.
      bg_mode_ = BackgroundMode::kNextRequest;
      beast::error_code ignored;
      socket_.cancel(ignored);
      return;
    }
    ReadRequest();
  }

  void StartBackgroundRead() {
    bg_pending_ = true;
    socket_.async_read_some(buffer_.prepare(kWatchReadSize),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->OnBackgroundRead(ec, n);
                            });
  }

  void OnBackgroundRead(beast::error_code ec, size_t n) {
    bg_pending_ = false;
    if (closed_) return;
    if (ec == net::error::operation_aborted && bg_mode_ == BackgroundMode::kNextRequest) {
      return ReadRequest();
    }
    if (ec) {
      // EOF or a reset: the client is gone. Close() tells a pending response's writer.
      ARLE_LOG_DEBUG("HTTP {} closed by the client ({})", remote_, ec.message());
      return Close();
    }
    switch (bg_mode_) {
      case BackgroundMode::kLinger:  // prepared but not committed: the bytes are dropped
        return StartBackgroundRead();
      case BackgroundMode::kWatch:
        buffer_.commit(n);
        if (buffer_.size() < kMaxPipelinedBytes) StartBackgroundRead();
        return;
      case BackgroundMode::kNextRequest:
        buffer_.commit(n);
        return ReadRequest();
    }
  }

  void GracefulClose() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    bg_mode_ = BackgroundMode::kLinger;
    ArmTimer(kLingerTime);
    if (!bg_pending_) StartBackgroundRead();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    DisarmTimer();
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    out_.clear();
    core_->Unregister(this);
    if (request_active_) {
      request_active_ = false;
      // The callback runs before the request stops counting, so Stop() returns after it ran.
      if (auto writer = writer_.lock()) writer->NotifyClosed();
      core_->EndRequest();
    }
    writer_.reset();
  }

  void ArmTimer(Clock::duration timeout) {
    if (timeout <= Clock::duration::zero()) return DisarmTimer();
    const uint64_t generation = ++timer_generation_;
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      if (ec || self->closed_ || generation != self->timer_generation_) return;
      ARLE_LOG_DEBUG("HTTP {} timed out", self->remote_);
      self->Close();
    });
  }

  void DisarmTimer() {
    ++timer_generation_;
    timer_.cancel();
  }

  ServerCore* const core_;
  tcp::socket socket_;
  const net::any_io_executor executor_;  // the connection's strand
  net::steady_timer timer_;              // idle, write-stall and linger timeouts
  uint64_t timer_generation_ = 0;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  size_t body_limit_ = 0;  // of the request being read: its route's, or the server's
  bool closed_ = false;

  // The current request (at most one: pipelined requests wait in buffer_).
  uint64_t request_id_ = 0;
  bool request_active_ = false;  // dispatched, response not fully written
  bool last_queued_ = false;     // the response's last bytes are queued
  bool close_after_ = false;
  std::weak_ptr<ConnWriter> writer_;

  std::deque<std::string> out_;   // queued, not yet writing
  std::vector<std::string> writing_;  // owned by the async_write in flight
  bool write_pending_ = false;

  bool bg_pending_ = false;
  BackgroundMode bg_mode_ = BackgroundMode::kWatch;
};

// ---- ConnWriter methods (need Connection) -------------------------------------------------------

ConnWriter::~ConnWriter() {
  std::lock_guard<std::mutex> lock(mu_);
  if (conn_.expired()) return;  // the connection is gone: nobody to answer
  if (state_ == State::kNone) {
    // The handler dropped the request: answer rather than leave the client waiting forever.
    ARLE_LOG_WARN("HTTP handler released a request without responding; sending 500");
    Outgoing out;
    const bool keep_alive = KeepAlive();
    out.bytes = FullResponse(500, http11_, keep_alive, "application/json",
                             ErrorBody(500, "the server dropped this request without a response"),
                             {});
    out.last = true;
    out.close_after = !keep_alive;
    Deliver(std::move(out));
  } else if (state_ == State::kStreaming) {
    // A stream that was never finished: closing tells the client it is truncated.
    Outgoing out;
    out.abort = true;
    Deliver(std::move(out));
  }
}

void ConnWriter::Deliver(Outgoing out) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  if (!shared_->running) return;
  if (auto conn = conn_.lock()) conn->PostOutgoing(request_id_, std::move(out));
}

void ConnWriter::Send(int status, std::string content_type, std::string body, Headers headers) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNone) return;
  state_ = State::kDone;
  const bool keep_alive = KeepAlive();
  Outgoing out;
  out.bytes = FullResponse(status, http11_, keep_alive, content_type, body, headers);
  out.last = true;
  out.close_after = !keep_alive;
  Deliver(std::move(out));
}

void ConnWriter::StartStream(int status, std::string content_type) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNone) return;
  state_ = State::kStreaming;
  status = CheckedStatus(status);
  Outgoing out;
  // HTTP/1.0 has no chunked encoding: the body ends when the connection closes.
  const bool keep_alive = http11_ && KeepAlive();
  Headers extra;
  if (content_type.starts_with("text/event-stream")) extra.emplace_back("Cache-Control", "no-cache");
  out.bytes = ResponseHead(status, http11_, keep_alive, content_type, extra);
  if (http11_) out.bytes += "Transfer-Encoding: chunked\r\n";
  out.bytes += "\r\n";
  out.close_after = !keep_alive;
  Deliver(std::move(out));
}

void ConnWriter::Write(std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  // An empty chunk would end a chunked body, so it is skipped.
  if (state_ != State::kStreaming || data.empty()) return;
  Outgoing out;
  out.bytes = http11_ ? Chunk(data) : std::move(data);
  Deliver(std::move(out));
}

void ConnWriter::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kStreaming) return;
  state_ = State::kDone;
  Outgoing out;
  if (http11_) out.bytes = "0\r\n\r\n";
  out.last = true;
  Deliver(std::move(out));
}

void ConnWriter::OnClose(std::function<void()> callback) {
  if (!callback) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (close_fired_) return;
    if (!closed_unfinished_) {
      on_close_ = std::move(callback);
      return;
    }
    close_fired_ = true;  // the close happened before the callback was set: fire it now
  }
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (shared_->running) {
      net::post(*shared_->ioc, [callback = std::move(callback)] { RunCloseCallback(callback); });
      return;
    }
  }
  RunCloseCallback(callback);  // the server is gone: no I/O thread is left to run it
}

void ConnWriter::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (shared_->running) {
      if (auto conn = conn_.lock()) {
        conn->PostTask(std::move(task));
      } else {
        net::post(*shared_->ioc, std::move(task));
      }
      return;
    }
  }
  task();  // the server has stopped: no I/O thread is left to run it
}

void ConnWriter::NotifyClosed() {
  std::function<void()> callback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_.store(false);
    if (state_ == State::kDone || close_fired_) return;
    closed_unfinished_ = true;
    if (!on_close_) return;
    close_fired_ = true;
    callback = std::move(on_close_);
  }
  RunCloseCallback(callback);
}

void OpenConnection(ServerCore* core, tcp::socket socket) {
  auto conn = std::make_shared<Connection>(core, std::move(socket));
  core->Register(conn);
  // Checked after Register so a connection is either seen by Stop() or closed here.
  if (core->shared->stopping.load()) {
    conn->PostForceClose();
  } else {
    conn->Start();
  }
}

void BeginShutdown(const std::shared_ptr<Connection>& conn) { conn->PostBeginShutdown(); }

void ForceClose(const std::shared_ptr<Connection>& conn) { conn->PostForceClose(); }

}  // namespace arle::server::http_internal
