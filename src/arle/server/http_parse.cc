// Request parsing shared by the connections (http_connection.cc, on a socket) and
// ParseHttpRequest (on a byte string): parser limits, the HttpRequest conversion, and the answers
// to malformed or oversize requests.
#include "arle/server/http_parse.h"

#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "arle/server/http_server_internal.h"
#include "arle/server/http_wire.h"

namespace arle::server::http_internal {
namespace {

std::string ToStdString(beast::string_view s) { return std::string(s.data(), s.size()); }

}  // namespace

void ConfigureRequestParser(RequestParser& parser, size_t max_body_bytes) {
  parser.header_limit(static_cast<std::uint32_t>(kHeaderLimit));
  parser.body_limit(static_cast<std::uint64_t>(max_body_bytes));
}

bool DeclaresBodyTooLarge(const RequestParser& parser, size_t max_body_bytes) {
  const auto length = parser.content_length();
  return length && *length > max_body_bytes;
}

std::string BodyTooLargeMessage(size_t max_body_bytes) {
  return fmt::format("request body too large: the limit is {} bytes", max_body_bytes);
}

HttpRequest ToHttpRequest(http::request<http::string_body>&& msg, std::string remote) {
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
  request.remote = std::move(remote);
  return request;
}

std::optional<std::pair<int, std::string>> ReadErrorResponse(beast::error_code ec,
                                                             size_t max_body_bytes) {
  const auto& http_category = http::make_error_code(http::error::bad_method).category();
  if (ec == http::error::body_limit) return std::pair(413, BodyTooLargeMessage(max_body_bytes));
  if (ec == http::error::header_limit) {
    return std::pair(431, fmt::format("request headers too large: the limit is {} bytes",
                                      kHeaderLimit));
  }
  if (ec.category() == http_category && ec != http::error::end_of_stream &&
      ec != http::error::partial_message) {
    return std::pair(400, fmt::format("malformed HTTP request: {}", ec.message()));
  }
  return std::nullopt;
}

ParsedHttpRequest ParseHttpRequest(std::string_view bytes, size_t max_body_bytes) {
  ParsedHttpRequest result;
  RequestParser parser;
  ConfigureRequestParser(parser, max_body_bytes);
  beast::error_code ec;
  size_t pos = 0;
  bool header_checked = false;
  while (!ec) {
    if (parser.is_header_done() && !header_checked) {
      header_checked = true;
      if (DeclaresBodyTooLarge(parser, max_body_bytes)) {
        result.error_status = 413;
        result.error_message = BodyTooLargeMessage(max_body_bytes);
        result.consumed = pos;
        return result;
      }
    }
    if (parser.is_done()) break;
    const size_t n = pos < bytes.size()
                         ? parser.put(net::buffer(bytes.data() + pos, bytes.size() - pos), ec)
                         : 0;
    pos += n;
    if (ec == http::error::need_more) ec = {};
    // Nothing more can be parsed from what is left (or nothing is left): the stream ends here.
    if (!ec && n == 0) {
      pos = bytes.size();
      // As Beast's stream reads do: the end before any byte is end_of_stream (put_eof would
      // complete an empty message).
      if (!parser.got_some()) {
        ec = http::error::end_of_stream;
      } else {
        parser.put_eof(ec);
        if (!ec && !parser.is_done()) ec = http::error::partial_message;
      }
    }
  }
  result.consumed = pos;
  if (ec) {
    if (auto answer = ReadErrorResponse(ec, max_body_bytes)) {
      std::tie(result.error_status, result.error_message) = std::move(*answer);
    }
    return result;
  }
  result.keep_alive = parser.get().keep_alive();
  result.request = ToHttpRequest(parser.release(), "");
  return result;
}

}  // namespace arle::server::http_internal
