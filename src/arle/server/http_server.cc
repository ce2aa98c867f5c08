// HttpServer on Boost.Beast/Asio: an acceptor plus one state machine per connection
// (http_connection.cc), each on its own strand, run by a small pool of I/O threads. This file
// holds the accept loop, routing with API-key checks, and Start/Stop.
#include "arle/server/http_server.h"

#include <fmt/format.h>

#include <exception>
#include <optional>
#include <string_view>
#include <utility>

#include "arle/core/check.h"
#include "arle/core/logging.h"
#include "arle/server/http_server_internal.h"
#include "arle/server/http_wire.h"

namespace arle::server {
namespace http_internal {
namespace {

// Stop(): after the deadline, how long to wait for cancelled connections and the I/O threads.
constexpr auto kShutdownGrace = std::chrono::seconds(2);

thread_local bool tls_on_io_thread = false;

}  // namespace

// ---- ServerCore methods ------------------------------------------------------------------------

void ServerCore::Register(const std::shared_ptr<Connection>& conn) {
  std::lock_guard<std::mutex> lock(conns_mu);
  conns.emplace(conn.get(), conn);
}

void ServerCore::Handle(HttpRequest request, const std::shared_ptr<ResponseWriter>& writer) {
  Router::Match match = router.Find(request.method, request.path);
  if (!match.entry && match.allow.empty()) {
    return SendError(*writer, 404, fmt::format("Invalid URL ({} {})", request.method, request.path));
  }
  if (!match.entry) {
    return SendError(*writer, 405,
                     fmt::format("Method {} is not allowed for {} (allowed: {})", request.method,
                                 request.path, match.allow),
                     {}, {}, {{"Allow", match.allow}});
  }
  request.path_params = std::move(match.params);
  const Router::Entry& route = *match.entry;
  const auto auth_it = request.headers.find("authorization");
  const auto authorization = auth_it == request.headers.end()
                                 ? std::nullopt
                                 : std::optional<std::string_view>(auth_it->second);
  if (auto refusal = CheckApiKey(route, authorization)) {
    return SendError(*writer, refusal->status, refusal->message, {}, refusal->code,
                     std::move(refusal->headers));
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

size_t ServerCore::BodyLimit(std::string_view method, std::string_view path,
                             const Router::Entry** route) const {
  *route = nullptr;
  // Most servers give no route its own limit: then nothing is routed twice.
  if (!router.has_body_limits()) return options.max_body_bytes;
  const Router::Entry* entry = router.Find(method, path).entry;
  if (entry == nullptr || entry->max_body_bytes == 0) return options.max_body_bytes;
  *route = entry;
  return entry->max_body_bytes;
}

std::optional<Refusal> ServerCore::CheckApiKey(
    const Router::Entry& route, std::optional<std::string_view> authorization) const {
  if (!route.auth || options.api_key.empty()) return std::nullopt;
  const Headers challenge = {{"WWW-Authenticate", "Bearer"}};
  if (!authorization) {
    return Refusal{401, "Missing API key: send it as the header \"Authorization: Bearer <key>\"",
                   "", challenge};
  }
  std::string_view value = *authorization;
  constexpr std::string_view kScheme = "bearer ";
  const bool is_bearer =
      value.size() >= kScheme.size() && ToLower(value.substr(0, kScheme.size())) == kScheme;
  std::string_view key = is_bearer ? value.substr(kScheme.size()) : std::string_view();
  while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.remove_prefix(1);
  while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
  if (!is_bearer || !ConstantTimeEquals(key, options.api_key)) {
    return Refusal{401, "Incorrect API key provided", "invalid_api_key", challenge};
  }
  return std::nullopt;
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
  OpenConnection(this, std::move(socket));
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

}  // namespace http_internal

namespace net = http_internal::net;
namespace beast = http_internal::beast;
using http_internal::Clock;
using http_internal::kShutdownGrace;
using http_internal::ServerCore;
using http_internal::tcp;
using http_internal::tls_on_io_thread;

// ---- HttpServer --------------------------------------------------------------------------------

struct HttpServer::Impl : ServerCore {
  using ServerCore::ServerCore;
};

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }

void HttpServer::Route(std::string method, std::string path, Handler handler, bool auth,
                       size_t max_body_bytes) {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  ARLE_CHECK(impl_->state == ServerCore::State::kIdle) << "HttpServer::Route after Start";
  impl_->router.Add(std::move(method), std::move(path), {std::move(handler), auth, max_body_bytes});
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
  for (auto& conn : core.Connections()) http_internal::BeginShutdown(conn);
  auto wait_in_flight = [&core](Clock::time_point until) {
    std::unique_lock<std::mutex> wait_lock(core.wait_mu);
    return core.wait_cv.wait_until(wait_lock, until, [&core] { return core.n_in_flight.load() <= 0; });
  };
  wait_in_flight(end);

  // 2. Past the deadline: close everything; open streams get OnClose on their strands.
  for (auto& conn : core.Connections()) http_internal::ForceClose(conn);
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
