// Internal to arle_server: how request bytes become an HttpRequest — Beast's HTTP/1.1 parser with
// the server's limits and its answers to malformed requests — as one synchronous function over a
// byte string, the same code a connection runs on its socket. For the fuzzer and tests.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "arle/server/http_server.h"

namespace arle::server::http_internal {

// Request headers larger than this get 431.
inline constexpr size_t kHeaderLimit = 16 * 1024;

struct ParsedHttpRequest {
  std::optional<HttpRequest> request;  // a whole request was read (path_params empty: unrouted)
  bool keep_alive = false;             // the request allows another one on the connection
  // No request: the error response a connection sends before closing (413, 431 or 400, with its
  // message), or 0 when it closes without answering (the bytes end before a request does).
  int error_status = 0;
  std::string error_message;
  size_t consumed = 0;  // bytes parsed; a pipelined request starts here
};

// Parses the first request in `bytes` (the end of `bytes` is the end of the stream). Never throws.
ParsedHttpRequest ParseHttpRequest(std::string_view bytes, size_t max_body_bytes);

}  // namespace arle::server::http_internal
