// Internal to arle_server: the server state that http_server.cc (accept loop, routing, Start/Stop)
// and http_connection.cc (one state machine per connection) share.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "arle/server/http_router.h"
#include "arle/server/http_server.h"
#include "arle/server/http_wire.h"

namespace arle::server::http_internal {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// ---- Request parsing (http_parse.cc), shared by connections and ParseHttpRequest ----

using RequestParser = http::request_parser<http::string_body>;
// Sets the header (kHeaderLimit) and body limits every request is parsed with.
void ConfigureRequestParser(RequestParser& parser, size_t max_body_bytes);
// After the header: whether the declared Content-Length is over the limit (-> 413 before the body
// is read).
bool DeclaresBodyTooLarge(const RequestParser& parser, size_t max_body_bytes);
std::string BodyTooLargeMessage(size_t max_body_bytes);
// The request as the routes see it (path = target without the query, header names lower-cased
// and repeated headers joined with ", ").
HttpRequest ToHttpRequest(http::request<http::string_body>&& msg, std::string remote);
// The answer to a failed read: (413 | 431 | 400, message), or nullopt when the connection just
// closes (EOF between requests, a reset, a timeout).
std::optional<std::pair<int, std::string>> ReadErrorResponse(beast::error_code ec,
                                                             size_t max_body_bytes);

// Shared by the server and every ResponseWriter (which may outlive the server). Writers post to
// the io_context only while `running`, checked under `mu`, so nothing reaches a stopped one.
struct SharedState {
  std::mutex mu;
  bool running = false;            // guarded by mu
  net::io_context* ioc = nullptr;  // guarded by mu; valid while running
  std::atomic<bool> stopping{false};
};


class Connection;

// A request refused before its handler runs: what its error envelope says.
struct Refusal {
  int status = 0;
  std::string message;
  std::string code;  // "" -> JSON null
  Headers headers;   // extra response headers
};

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

  // Routing (fills request.path_params), auth and the handler call; on the connection's strand.
  void Handle(HttpRequest request, const std::shared_ptr<ResponseWriter>& writer);
  // The body limit of a request to (method, path), known once its header is parsed: its route's
  // own, else options.max_body_bytes. Sets *route to the route when one has its own limit (else
  // null: without per-route limits nothing is routed before the body). Thread-safe.
  size_t BodyLimit(std::string_view method, std::string_view path,
                   const Router::Entry** route) const;
  // The 401 for a request to `route` whose Authorization header (nullopt: absent) lacks the API
  // key, or nullopt when it may go on (no key set, a route without auth, or the right key).
  std::optional<Refusal> CheckApiKey(const Router::Entry& route,
                                     std::optional<std::string_view> authorization) const;
  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  void RunLoop();

  const HttpServerOptions options;
  Router router;
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

// ---- Connections (http_connection.cc) ----

// Takes an accepted socket: a connection on its own strand, registered with `core`, that starts
// reading requests (or closes at once when the server is already stopping).
void OpenConnection(ServerCore* core, tcp::socket socket);
// Stop(): an idle connection closes now, a busy one after its response.
void BeginShutdown(const std::shared_ptr<Connection>& conn);
// Closes now; a response in flight is cut off and its writer told.
void ForceClose(const std::shared_ptr<Connection>& conn);

}  // namespace arle::server::http_internal
