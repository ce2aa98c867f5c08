// HttpServer: asynchronous HTTP/1.1 on Boost.Beast/Asio (a small pool of I/O threads, no thread
// per connection) with keep-alive, chunked streaming (for SSE), request size limits, optional API
// key, routing with OpenAI-style error envelopes and graceful shutdown. Knows nothing of models:
// routes are plain handlers. Boost headers stay inside http_server.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path with query, e.g. "/v1/models?x=1"
  std::string path;    // target without the query (not percent-decoded)
  std::map<std::string, std::string> headers;  // names lower-cased
  // The matched route's path parameters ("/v1/models/{id...}" -> {"id", ...}), percent-decoded.
  std::map<std::string, std::string> path_params;
  std::string body;
  std::string remote;  // "ip:port" of the client
};

// Writes the response of one request. Obtained by the route handler; may be kept (shared_ptr) and
// used from any thread after the handler returns (e.g. from engine callbacks). Exactly one of
// Send() or StartStream() ... Finish() must be called; later calls are ignored. All methods are
// thread-safe and never block on the network (writes are queued on the connection's strand).
// Releasing the last reference without responding sends a 500; releasing it mid-stream (no
// Finish) closes the connection so the client sees a truncated body. A writer may outlive the
// server: its calls then do nothing.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // A complete response. `headers` are extra headers (e.g. Retry-After).
  virtual void Send(int status, std::string content_type, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  // Starts a streamed response (chunked transfer encoding), e.g. "text/event-stream".
  virtual void StartStream(int status, std::string content_type) = 0;
  // Queues one chunk of a started stream (for SSE: "data: ...\n\n").
  virtual void Write(std::string data) = 0;
  // Ends the stream (the connection stays open for the next request when keep-alive).
  virtual void Finish() = 0;
  // False once the client has closed the connection (detected while streaming too) or the
  // server has cancelled the stream at shutdown.
  virtual bool IsOpen() const = 0;
  // Called once, on an I/O thread, when the client disconnects before Finish() or when shutdown
  // cancels the stream. Set it before the first Write. The handler must cancel its work there.
  // Also for a pending Send() response. Set after the disconnect, it is called at once (on an I/O
  // thread; inline when the server has stopped). A client that half-closes its side while a
  // response is pending counts as gone.
  virtual void OnClose(std::function<void()> callback) = 0;
  // Runs `task` once, off the calling thread while the server runs: on the connection's strand
  // (after what was queued there before, and never concurrently with the connection's own work
  // or another task of it) while the connection is open, on an I/O thread after it closed. Once
  // the server has stopped, `task` runs inline on the caller's thread. For per-response work a
  // producer thread must not do itself (the OpenAI routes build SSE events from engine events
  // this way). The default implementation runs `task` inline.
  virtual void Post(std::function<void()> task) { task(); }
};

using Handler = std::function<void(const HttpRequest& request, std::shared_ptr<ResponseWriter>)>;

// Writes OpenAI's error envelope {"error":{"message","type","param","code"}} as a complete
// response. type defaults from the status (400 invalid_request_error, 401 authentication_error,
// 404 not_found_error, 405 invalid_request_error, 413 invalid_request_error, 429/503
// server_overloaded... see http_error.cc); param/code may be empty (then JSON null).
std::string ErrorBody(int status, std::string_view message, std::string_view param = {},
                      std::string_view code = {}, std::string_view type = {});
void SendError(ResponseWriter& writer, int status, std::string_view message,
               std::string_view param = {}, std::string_view code = {},
               std::vector<std::pair<std::string, std::string>> headers = {});

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 = pick a free port (see port())
  int n_io_threads = 1;
  size_t max_body_bytes = 8 << 20;  // larger bodies get 413 (a route may set its own, see Route)
  std::string api_key;              // non-empty: routes marked auth need "Authorization: Bearer KEY"
  std::chrono::seconds idle_timeout{120};
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // Stop(0s) if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a route before Start(). `path` is a literal path or a pattern with parameters:
  // "{name}" matches one segment, "{name...}" (last only) the rest of the path, '/' included;
  // their percent-decoded values are in HttpRequest::path_params (see http_router.h for the
  // precedence). Same path, other method -> 405 with Allow; unknown path -> 404; both in the
  // error envelope. `auth`: requires the API key when one is set (401 otherwise; compared in
  // constant time). `max_body_bytes`: this route's body limit in place of
  // HttpServerOptions::max_body_bytes (0: that one), e.g. for uploads of model weights; larger
  // bodies get 413 naming it. When it is above the server's and the route needs the key, the key is
  // checked as soon as the header arrives, before any of the body is read: a client without it gets
  // 401 and the connection closes. REQUIRES: a valid pattern, not registered twice for the method.
  void Route(std::string method, std::string path, Handler handler, bool auth = true,
             size_t max_body_bytes = 0);

  // Binds and starts the I/O threads. Errors: the address is in use or invalid (names it).
  core::Status Start();
  int port() const;  // the bound port (useful with port 0)

  // Graceful stop: stops accepting, lets in-flight responses finish for up to `deadline`, then
  // closes every connection (streams still open get OnClose) and joins the threads. Idempotent.
  // REQUIRES: not called on an I/O thread (i.e. not from a handler or OnClose callback).
  void Stop(std::chrono::milliseconds deadline);

  // Number of requests whose response has not finished (for tests and shutdown).
  int64_t n_in_flight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace arle::server
