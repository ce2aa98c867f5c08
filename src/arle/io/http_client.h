// ServeClient: a small blocking HTTP/1.1 client for OpenAI-compatible servers (GET and POST with a
// whole or a streamed Server-Sent-Events answer), used by `arle bench serve`, `arle eval --url`
// and the proxy of `arle serve --train-control-url`. Boost.Beast stays in the .cc.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "arle/core/status.h"

namespace arle::io {

// A server address from --url: http://host[:port][/base]. https is not supported.
struct ServerUrl {
  std::string host;       // "127.0.0.1", "localhost", "::1" (brackets removed)
  std::string port;       // "80" when the URL names none
  std::string base_path;  // "" or "/prefix" (no trailing slash); a trailing "/v1" is dropped
                          // because every API path the client sends starts with /v1

  // "http://host:port/base", the form used in messages.
  std::string ToString() const;
};

// Returns the parsed URL, InvalidArgumentError for a malformed one, UnimplementedError for https.
core::StatusOr<ServerUrl> ParseServerUrl(std::string_view url);

// One Server-Sent Event: `event` is "" unless the stream named one (a nonstandard `error:` line,
// as llama.cpp's server writes, arrives as event "error"); `data` joins the event's data lines
// with '\n'.
struct SseEvent {
  std::string_view event;
  std::string_view data;
};

// Called once per event, in order. Returning a non-OK status stops the stream with that status.
using SseCallback = std::function<core::Status(const SseEvent&)>;

// Incremental SSE parser (WHATWG "text/event-stream" rules: \n, \r\n or \r line ends, blank line
// dispatches, ':' comments, one space after the colon stripped). Not thread safe.
class SseParser {
 public:
  // Feeds raw body bytes; calls `on_event` for every event they complete. Returns the first
  // non-OK status of `on_event`, or DataLossError for a line over 64 MiB.
  core::Status Feed(std::string_view bytes, const SseCallback& on_event);
  // Ends the stream: a last event without its blank line is still dispatched.
  core::Status Finish(const SseCallback& on_event);

 private:
  core::Status ProcessLine(const SseCallback& on_event);
  core::Status Dispatch(const SseCallback& on_event);

  std::string line_;
  bool skip_lf_ = false;  // the previous byte was '\r', so a following '\n' ends nothing
  std::string event_;
  std::string data_;
  bool has_data_ = false;
};

// An HTTP answer with its whole body.
struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// A keep-alive connection to one server. Connects on first use and reconnects when the server
// closed the connection between requests. Every error a user or server can cause comes back as a
// Status: bad host or connection refused (IoError), no answer within `timeout` (IoError), a
// non-200 answer (FailedPreconditionError carrying the server's error message), a malformed stream
// (DataLossError). Not thread safe: use one client per thread.
class ServeClient {
 public:
  // `api_key` ("" = none) is sent as "Authorization: Bearer <key>". `timeout` bounds connecting
  // and each wait for bytes. When `cancel` is set (it may be null), a request in flight stops
  // within ~50 ms with a FailedPreconditionError("cancelled").
  ServeClient(ServerUrl url, std::string api_key, std::chrono::milliseconds timeout,
              const std::atomic<bool>* cancel = nullptr);
  ~ServeClient();
  ServeClient(const ServeClient&) = delete;
  ServeClient& operator=(const ServeClient&) = delete;

  const ServerUrl& url() const;

  // GET base_path + `path`. Any HTTP status is returned as a value (the caller decides).
  core::StatusOr<HttpResponse> Get(std::string_view path);

  // POST base_path + `path` with a JSON body and a whole (non-streamed) answer. Any HTTP status is
  // returned as a value.
  core::StatusOr<HttpResponse> Post(std::string_view path, const std::string& json_body);

  // POST base_path + `path` with any body (e.g. "application/octet-stream" model weights) sent
  // from `body` without a copy, and a whole answer; any HTTP status is returned as a value. A large
  // body goes out in as many writes as the socket takes, `timeout` bounding each.
  core::StatusOr<HttpResponse> Post(std::string_view path, std::string_view body,
                                    std::string_view content_type);

  // POST base_path + `path` with a JSON body and an SSE answer: `on_event` runs for each event as
  // soon as its bytes arrive (so the caller can time them). A non-200 answer, or a 200 answer
  // that is not text/event-stream, is an error carrying the server's message.
  core::Status PostStream(std::string_view path, const std::string& json_body,
                          const SseCallback& on_event);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The human message of an error body: OpenAI's {"error":{"message":...}}, {"error":"..."},
// {"message":...}, or else the (trimmed, shortened) body itself.
std::string ServerErrorMessage(std::string_view body);

}  // namespace arle::io
