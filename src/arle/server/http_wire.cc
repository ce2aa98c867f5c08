// HTTP/1.x response serialization (see http_wire.h).
#include "arle/server/http_wire.h"

#include <algorithm>
#include <cctype>

#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "arle/core/logging.h"

namespace arle::server::http_internal {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

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

bool StatusHasBody(int status) { return status >= 200 && status != 204 && status != 304; }

}  // namespace

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

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



int CheckedStatus(int status) {
  if (status >= 200 && status <= 599) return status;
  ARLE_LOG_WARN("HTTP handler used invalid status {}; sending 500 instead", status);
  return 500;
}


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

}  // namespace arle::server::http_internal
