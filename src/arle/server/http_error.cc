// OpenAI-style error envelopes: {"error":{"message","type","param","code"}} with the error type
// derived from the HTTP status unless the caller names one.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "arle/server/http_server.h"

namespace arle::server {
namespace {

// The `type` strings follow what OpenAI's API and its SDKs expect for each status class; the SDKs
// map the HTTP status to an exception class and show `type` to the user.
std::string_view DefaultErrorType(int status) {
  switch (status) {
    case 400:
    case 405:
    case 413:
    case 422:
    case 431:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 409:
      return "conflict_error";
    case 429:
    case 503:
      return "server_overloaded";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

nlohmann::ordered_json NullIfEmpty(std::string_view text) {
  if (text.empty()) return nullptr;
  return std::string(text);
}

}  // namespace

std::string ErrorBody(int status, std::string_view message, std::string_view param,
                      std::string_view code, std::string_view type) {
  nlohmann::ordered_json error = {
      {"message", std::string(message)},
      {"type", std::string(type.empty() ? DefaultErrorType(status) : type)},
      {"param", NullIfEmpty(param)},
      {"code", NullIfEmpty(code)},
  };
  // `replace` keeps invalid UTF-8 in a message (e.g. echoing a client's bytes) from throwing.
  return nlohmann::ordered_json{{"error", std::move(error)}}.dump(-1, ' ', false,
                                                          nlohmann::ordered_json::error_handler_t::replace);
}

void SendError(ResponseWriter& writer, int status, std::string_view message, std::string_view param,
               std::string_view code, std::vector<std::pair<std::string, std::string>> headers) {
  writer.Send(status, "application/json", ErrorBody(status, message, param, code),
              std::move(headers));
}

}  // namespace arle::server
