// HttpServer on Boost.Beast/Asio: an acceptor plus one state machine per connection, each on its own
// strand, run by a small pool of I/O threads. Responses are serialized here (fixed length or
// chunked) and queued on the connection's strand, so ResponseWriters on any thread never block.
#include "arle/server/http_server.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <exception>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "arle/core/check.h"
#include "arle/core/logging.h"

namespace arle::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kHeaderLimit = 16 * 1024;
// While a response is pending the socket is read in small pieces only to notice a disconnect;
// bytes a pipelining client sends meanwhile are kept for the next request, up to this much.
constexpr size_t kWatchReadSize = 4096;
constexpr size_t kMaxPipelinedBytes = 1 << 20;
// After an error response that closes the connection (413, 400) unread request bytes are drained
// for this long so the close does not turn into a RST that destroys the response in flight.
constexpr auto kLingerTime = std::chrono::seconds(1);
// Stop(): after the deadline, how long to wait for cancelled connections and the I/O threads.
constexpr auto kShutdownGrace = std::chrono::seconds(2);

thread_local bool tls_on_io_thread = false;

std::string ToStdString(beast::string_view s) { return std::string(s.data(), s.size()); }

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Compares without an early exit so the time taken does not reveal how much of a key matched.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() != b.size() ? 1u : 0u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

// ---- Response serialization --------------------------------------------------------------------

bool IsValidHeader(std::string_view name, std::string_view value) {
  if (name.empty() || name.find_first_of(":\r\n \t") != std::string_view::npos) return false;
  return value.find_first_of("\r\n") == std::string_view::npos;
}

// Headers this file owns; a handler's copy would contradict the framing.
bool IsReservedHeader(std::string_view name) {
  const std::string lower = ToLower(name);
  return lower == "content-length" || lower == "transfer-encoding" || lower == "connection" ||
         lower == "server" || lower == "content-type";
}

int CheckedStatus(int status) {
  if (status >= 200 && status <= 599) return status;
  ARLE_LOG_WARN("HTTP handler used invalid status {}; sending 500 instead", status);
  return 500;
}

bool StatusHasBody(int status) { return status >= 200 && status != 204 && status != 304; }

// Status line and headers without the blank line that ends them.
std::string ResponseHead(int status, bool http11, bool keep_alive, std::string_view content_type,
                         const Headers& extra) {
  beast::string_view reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  if (reason == "<unknown-status>") reason = "Unknown";
  std::string out = fmt::format("HTTP/1.{} {} {}\r\nServer: arle\r\n", http11 ? 1 : 0, status,
                                std::string_view(reason.data(), reason.size()));
  if (!content_type.empty() && IsValidHeader("Content-Type", content_type)) {
    out += fmt::format("Content-Type: {}\r\n", content_type);
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (!http11) {
    out += "Connection: keep-alive\r\n";
  }
  for (const auto& [name, value] : extra) {
    if (!IsValidHeader(name, value) || IsReservedHeader(name)) {
      ARLE_LOG_DEBUG("HTTP: dropping response header '{}'", name);
      continue;
    }
    out += fmt::format("{}: {}\r\n", name, value);
  }
  return out;
}

std::string FullResponse(int status, bool http11, bool keep_alive, std::string_view content_type,
                         std::string_view body, const Headers& extra) {
  status = CheckedStatus(status);
  const bool has_body = StatusHasBody(status);
  std::string out = ResponseHead(status, http11, keep_alive, has_body ? content_type : "", extra);
  if (has_body) out += fmt::format("Content-Length: {}\r\n", body.size());
  out += "\r\n";
  if (has_body) out += body;
  return out;
}

std::string Chunk(std::string_view data) {
  std::string out = fmt::format("{:x}\r\n", data.size());
  out.reserve(out.size() + data.size() + 2);
  out += data;
  out += "\r\n";
  return out;
}

// ---- Shared state ------------------------------------------------------------------------------

// Shared by the server and every ResponseWriter (which may outlive the server). Writers post to
// the io_context only while `running`, checked under `mu`, so nothing reaches a stopped one.
struct SharedState {
  std::mutex mu;
  bool running = false;            // guarded by mu
  net::io_context* ioc = nullptr;  // guarded by mu; valid while running
  std::atomic<bool> stopping{false};
};

// What a writer hands to its connection's strand.
struct Outgoing {
  std::string bytes;
  bool last = false;         // the response is complete after these bytes
  bool close_after = false;  // close the connection once the response is written
  bool abort = false;        // the response cannot be completed: close the connection now
};

struct RouteEntry {
  Handler handler;
  bool auth = true;
};

class Connection;
class ConnWriter;

// Everything the connections need from the server. Lives as long as the HttpServer; connections
// touch it only on I/O threads, which Stop() joins before it goes away.
struct ServerCore {
  explicit ServerCore(HttpServerOptions opts)
      : options(std::move(opts)),
        shared(std::make_shared<SharedState>()),
        ioc(std::max(1, options.n_io_threads)),
        acceptor(net::make_strand(ioc)),
        accept_retry(acceptor.get_executor()) {}

  void BeginRequest() { n_in_flight.fetch_add(1); }
  void EndRequest() {
    if (n_in_flight.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(wait_mu);
      wait_cv.notify_all();
    }
  }
  void Register(const std::shared_ptr<Connection>& conn);
  void Unregister(Connection* conn) {
    std::lock_guard<std::mutex> lock(conns_mu);
    conns.erase(conn);
  }
  std::vector<std::shared_ptr<Connection>> Connections() {
    std::vector<std::shared_ptr<Connection>> out;
    std::lock_guard<std::mutex> lock(conns_mu);
    for (auto& [ptr, weak] : conns) {
      if (auto conn = weak.lock()) out.push_back(std::move(conn));
    }
    return out;
  }

  // Routing, auth and the handler call; on the connection's strand.
  void Handle(const HttpRequest& request, const std::shared_ptr<ConnWriter>& writer);
  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  void RunLoop();

  const HttpServerOptions options;
  std::map<std::string, std::map<std::string, RouteEntry>> routes;  // path -> method -> route
  std::shared_ptr<SharedState> shared;
  std::atomic<int64_t> n_in_flight{0};

  std::mutex conns_mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns;  // guarded by conns_mu

  std::mutex wait_mu;  // with wait_cv: Stop() waits for n_in_flight == 0 and for the threads
  std::condition_variable wait_cv;
  int n_running_threads = 0;  // guarded by wait_mu

  // Declared after everything the handlers it may still own at destruction could touch.
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor;
  net::steady_timer accept_retry;
  std::vector<std::thread> threads;
  int port = 0;

  std::mutex lifecycle_mu;
  enum class State { kIdle, kRunning, kStopped } state = State::kIdle;  // guarded by lifecycle_mu
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
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(static_cast<std::uint64_t>(core_->options.max_body_bytes));
    ArmTimer(core_->options.idle_timeout);
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (closed_) return;
    if (ec) return OnReadError(ec);
    const auto length = parser_->content_length();
    if (length && *length > core_->options.max_body_bytes) {
      return RespondAndClose(413, BodyTooLargeMessage());
    }
    if (parser_->is_done()) return Dispatch();
    const auto& msg = parser_->get();
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

  std::string BodyTooLargeMessage() const {
    return fmt::format("request body too large: the limit is {} bytes",
                       core_->options.max_body_bytes);
  }

  void OnReadError(beast::error_code ec) {
    DisarmTimer();
    const auto& http_category = http::make_error_code(http::error::bad_method).category();
    if (ec == http::error::body_limit) return RespondAndClose(413, BodyTooLargeMessage());
    if (ec == http::error::header_limit) {
      return RespondAndClose(431, fmt::format("request headers too large: the limit is {} bytes",
                                              kHeaderLimit));
    }
    if (ec.category() == http_category && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
      return RespondAndClose(400, fmt::format("malformed HTTP request: {}", ec.message()));
    }
    // EOF between requests, a reset, a timeout: nothing to answer.
    Close();
  }

  void Dispatch() {
    DisarmTimer();
    auto& msg = parser_->get();
    HttpRequest request;
    request.method = ToStdString(msg.method_string());
    request.target = ToStdString(msg.target());
    request.path = request.target.substr(0, request.target.find('?'));
    for (const auto& field : msg) {
      auto [it, inserted] =
          request.headers.emplace(ToLower(ToStdString(field.name_string())), std::string());
      if (!inserted) it->second += ", ";
      it->second += ToStdString(field.value());
    }
    request.body = std::move(msg.body());
    request.remote = remote_;
    const bool http11 = msg.version() >= 11;
    const bool keep_alive = msg.keep_alive() && !core_->shared->stopping.load();
    parser_.reset();

    StartRequest(keep_alive);
    auto writer = std::make_shared<ConnWriter>(core_->shared, weak_from_this(), request_id_,
                                               http11, keep_alive);
    writer_ = writer;
    bg_mode_ = BackgroundMode::kWatch;
    if (!bg_pending_) StartBackgroundRead();
    ARLE_LOG_DEBUG("HTTP {} {} {}", remote_, request.method, request.target);
    core_->Handle(request, writer);
  }

  void StartRequest(bool keep_alive) {
    ++request_id_;
    request_active_ = true;
    last_queued_ = false;
    close_after_ = !keep_alive;
    core_->BeginRequest();
  }

  // An error found while reading the request: answer it and close, since the rest of the
  // request cannot be framed.
  void RespondAndClose(int status, std::string message) {
    StartRequest(/*keep_alive=*/false);
    Outgoing out;
    out.bytes = FullResponse(status, /*http11=*/true, /*keep_alive=*/false, "application/json",
                             ErrorBody(status, message), {});
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

// ---- ServerCore methods ------------------------------------------------------------------------

void ServerCore::Register(const std::shared_ptr<Connection>& conn) {
  std::lock_guard<std::mutex> lock(conns_mu);
  conns.emplace(conn.get(), conn);
}

void ServerCore::Handle(const HttpRequest& request, const std::shared_ptr<ConnWriter>& writer) {
  const auto path_it = routes.find(request.path);
  if (path_it == routes.end()) {
    return SendError(*writer, 404, fmt::format("Invalid URL ({} {})", request.method, request.path));
  }
  const auto method_it = path_it->second.find(request.method);
  if (method_it == path_it->second.end()) {
    std::string allow;
    for (const auto& [method, route] : path_it->second) {
      if (!allow.empty()) allow += ", ";
      allow += method;
    }
    return SendError(*writer, 405,
                     fmt::format("Method {} is not allowed for {} (allowed: {})", request.method,
                                 request.path, allow),
                     {}, {}, {{"Allow", allow}});
  }
  const RouteEntry& route = method_it->second;
  if (route.auth && !options.api_key.empty()) {
    const Headers challenge = {{"WWW-Authenticate", "Bearer"}};
    const auto auth_it = request.headers.find("authorization");
    if (auth_it == request.headers.end()) {
      return SendError(*writer, 401,
                       "Missing API key: send it as the header \"Authorization: Bearer <key>\"", {},
                       {}, challenge);
    }
    std::string_view value = auth_it->second;
    constexpr std::string_view kScheme = "bearer ";
    const bool is_bearer =
        value.size() >= kScheme.size() && ToLower(value.substr(0, kScheme.size())) == kScheme;
    std::string_view key = is_bearer ? value.substr(kScheme.size()) : std::string_view();
    while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.remove_prefix(1);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
    if (!is_bearer || !ConstantTimeEquals(key, options.api_key)) {
      return SendError(*writer, 401, "Incorrect API key provided", {}, "invalid_api_key",
                       challenge);
    }
  }
  try {
    route.handler(request, writer);
  } catch (const std::exception& e) {
    ARLE_LOG_ERROR("HTTP handler for {} {} threw: {}", request.method, request.path, e.what());
    SendError(*writer, 500, "internal server error");
  } catch (...) {
    ARLE_LOG_ERROR("HTTP handler for {} {} threw a non-std exception", request.method,
                   request.path);
    SendError(*writer, 500, "internal server error");
  }
}

void ServerCore::DoAccept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void ServerCore::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (!acceptor.is_open()) return;  // closed by Stop()
  if (ec) {
    // E.g. out of file descriptors: back off instead of spinning on the error.
    ARLE_LOG_WARN("HTTP accept failed: {}", ec.message());
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor.is_open()) DoAccept();
    });
    return;
  }
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);  // SSE events must not wait for Nagle
  auto conn = std::make_shared<Connection>(this, std::move(socket));
  Register(conn);
  // Checked after Register so a connection is either seen by Stop() or closed here.
  if (shared->stopping.load()) {
    conn->PostForceClose();
  } else {
    conn->Start();
  }
  DoAccept();
}

void ServerCore::RunLoop() {
  tls_on_io_thread = true;
  for (;;) {
    try {
      ioc.run();
      break;
    } catch (const std::exception& e) {
      ARLE_LOG_ERROR("HTTP I/O thread caught an exception: {}", e.what());
    } catch (...) {
      ARLE_LOG_ERROR("HTTP I/O thread caught a non-std exception");
    }
  }
  std::lock_guard<std::mutex> lock(wait_mu);
  --n_running_threads;
  wait_cv.notify_all();
}

}  // namespace

// ---- HttpServer --------------------------------------------------------------------------------

struct HttpServer::Impl : ServerCore {
  using ServerCore::ServerCore;
};

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }

void HttpServer::Route(std::string method, std::string path, Handler handler, bool auth) {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  ARLE_CHECK(impl_->state == ServerCore::State::kIdle) << "HttpServer::Route after Start";
  ARLE_CHECK(handler) << "HttpServer::Route " << method << " " << path << " without a handler";
  auto& methods = impl_->routes[path];
  ARLE_CHECK(methods.find(method) == methods.end())
      << "HttpServer::Route " << method << " " << path << " registered twice";
  methods.emplace(std::move(method), RouteEntry{std::move(handler), auth});
}

core::Status HttpServer::Start() {
  ServerCore& core = *impl_;
  std::lock_guard<std::mutex> lock(core.lifecycle_mu);
  if (core.state != ServerCore::State::kIdle) {
    return core::FailedPreconditionError("the HTTP server was already started",
                                         "create a new HttpServer to serve again");
  }
  const HttpServerOptions& opt = core.options;
  const std::string where = fmt::format("{}:{}", opt.host, opt.port);
  if (opt.port < 0 || opt.port > 65535) {
    return core::InvalidArgumentError(fmt::format("invalid port {}", opt.port),
                                      "use a port in 1..65535, or 0 for any free port");
  }
  beast::error_code ec;
  tcp::resolver resolver(core.ioc);
  const auto results = resolver.resolve(opt.host, std::to_string(opt.port),
                                        tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return core::InvalidArgumentError(
        fmt::format("cannot resolve the host '{}': {}", opt.host, ec ? ec.message() : "no address"),
        "use an IP address such as 127.0.0.1 (local only) or 0.0.0.0 (all interfaces)");
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  auto fail = [&](std::string_view what, std::string hint) {
    beast::error_code ignored;
    core.acceptor.close(ignored);
    return core::IoError(fmt::format("cannot listen on {}: {}: {}", where, what, ec.message()),
                         std::move(hint));
  };
  core.acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("open", "");
  core.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("set SO_REUSEADDR", "");
  core.acceptor.bind(endpoint, ec);
  if (ec) {
    return fail("bind", ec == net::error::address_in_use
                            ? "another process uses this port: pick another one with --port"
                            : "check that the address belongs to this machine");
  }
  core.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen", "");
  core.port = core.acceptor.local_endpoint(ec).port();
  if (ec) return fail("read the bound port", "");

  {
    std::lock_guard<std::mutex> shared_lock(core.shared->mu);
    core.shared->running = true;
    core.shared->ioc = &core.ioc;
  }
  core.work.emplace(net::make_work_guard(core.ioc));
  core.DoAccept();
  const int n_threads = std::max(1, opt.n_io_threads);
  {
    std::lock_guard<std::mutex> wait_lock(core.wait_mu);
    core.n_running_threads = n_threads;
  }
  for (int i = 0; i < n_threads; ++i) core.threads.emplace_back([&core] { core.RunLoop(); });
  core.state = ServerCore::State::kRunning;
  ARLE_LOG_DEBUG("HTTP server listening on {}:{}", endpoint.address().to_string(), core.port);
  return core::OkStatus();
}

int HttpServer::port() const { return impl_->port; }

int64_t HttpServer::n_in_flight() const { return impl_->n_in_flight.load(); }

void HttpServer::Stop(std::chrono::milliseconds deadline) {
  ServerCore& core = *impl_;
  ARLE_CHECK(!tls_on_io_thread) << "HttpServer::Stop called on an I/O thread would wait for itself";
  std::lock_guard<std::mutex> lock(core.lifecycle_mu);
  if (core.state != ServerCore::State::kRunning) return;
  const auto end = Clock::now() + deadline;

  // 1. Stop accepting; idle connections close, busy ones close after their response.
  core.shared->stopping.store(true);
  net::post(core.acceptor.get_executor(), [&core] {
    beast::error_code ignored;
    core.acceptor.close(ignored);
    core.accept_retry.cancel();
  });
  for (auto& conn : core.Connections()) conn->PostBeginShutdown();
  auto wait_in_flight = [&core](Clock::time_point until) {
    std::unique_lock<std::mutex> wait_lock(core.wait_mu);
    return core.wait_cv.wait_until(wait_lock, until, [&core] { return core.n_in_flight.load() <= 0; });
  };
  wait_in_flight(end);

  // 2. Past the deadline: close everything; open streams get OnClose on their strands.
  for (auto& conn : core.Connections()) conn->PostForceClose();
  if (!wait_in_flight(Clock::now() + kShutdownGrace)) {
    ARLE_LOG_WARN("HTTP server: {} requests still in flight after closing every connection",
                  core.n_in_flight.load());
  }

  // 3. No more posts from writers; let the I/O threads drain and exit.
  {
    std::lock_guard<std::mutex> shared_lock(core.shared->mu);
    core.shared->running = false;
    core.shared->ioc = nullptr;
  }
  core.work.reset();
  {
    std::unique_lock<std::mutex> wait_lock(core.wait_mu);
    if (!core.wait_cv.wait_for(wait_lock, kShutdownGrace,
                               [&core] { return core.n_running_threads == 0; })) {
      ARLE_LOG_WARN("HTTP server: I/O threads still busy at shutdown; stopping them");
      core.ioc.stop();
    }
  }
  for (auto& thread : core.threads) thread.join();
  core.threads.clear();
  core.state = ServerCore::State::kStopped;
}

}  // namespace arle::server
