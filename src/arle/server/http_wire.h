// HTTP/1.x response bytes as arle writes them (status line and headers, fixed-length responses,
// chunks), and the header helpers the server and its connections share. Internal to arle_server.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace arle::server::http_internal {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string ToLower(std::string_view s);

// Compares without an early exit so the time taken does not reveal how much of a key matched.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// `status` when it is in [200, 599], else 500 (logged).
int CheckedStatus(int status);

// Status line and headers without the blank line that ends them. Headers that are malformed or
// that the server owns (Content-Length, Transfer-Encoding, Connection, Server, Content-Type) are
// dropped from `extra`.
std::string ResponseHead(int status, bool http11, bool keep_alive, std::string_view content_type,
                         const Headers& extra);

// A whole response with Content-Length (no body for 204/304).
std::string FullResponse(int status, bool http11, bool keep_alive, std::string_view content_type,
                         std::string_view body, const Headers& extra);

// One chunk of a chunked body. REQUIRES: data is not empty (an empty chunk ends the body).
std::string Chunk(std::string_view data);

}  // namespace arle::server::http_internal
