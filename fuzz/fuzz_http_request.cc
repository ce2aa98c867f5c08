// libFuzzer target: the server's HTTP/1.1 request parsing (ParseHttpRequest: Beast's parser with the
// server's limits, the HttpRequest conversion and the error answers) on arbitrary bytes, each
// pipelined request in turn, every parsed request routed through a Router with literal and
// parameter routes, and its 404/405 error body built. Invariants are ARLE_CHECKs.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "arle/core/check.h"
#include "arle/server/http_parse.h"
#include "arle/server/http_router.h"
#include "arle/server/http_server.h"

namespace {

using arle::server::HttpRequest;
using arle::server::ResponseWriter;
using arle::server::http_internal::ParsedHttpRequest;
using arle::server::http_internal::Router;

constexpr size_t kMaxBody = 4096;

const Router& TestRouter() {
  static const Router* router = [] {
    auto* r = new Router;
    auto entry = [] {
      return Router::Entry{[](const HttpRequest&, std::shared_ptr<ResponseWriter>) {}, true};
    };
    for (const char* path : {"/v1/chat/completions", "/v1/completions", "/v1/responses",
                             "/tokenize", "/detokenize"}) {
      r->Add("POST", path, entry());
    }
    for (const char* path : {"/v1/models", "/health", "/metrics", "/v1/models/{id...}",
                             "/a/{x}/b/{y}"}) {
      r->Add("GET", path, entry());
    }
    r->Add("DELETE", "/v1/models/{id...}", entry());
    return r;
  }();
  return *router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (int k = 0; k < 8 && !bytes.empty(); ++k) {
    const ParsedHttpRequest p = arle::server::http_internal::ParseHttpRequest(bytes, kMaxBody);
    ARLE_CHECK_LE(p.consumed, bytes.size());
    if (!p.request) {
      ARLE_CHECK(p.error_status == 0 || p.error_status == 400 || p.error_status == 413 ||
                 p.error_status == 431)
          << p.error_status;
      (void)arle::server::ErrorBody(p.error_status == 0 ? 400 : p.error_status, p.error_message);
      return 0;
    }
    const HttpRequest& r = *p.request;
    ARLE_CHECK(r.path.find('?') == std::string::npos);
    ARLE_CHECK_EQ(r.target.compare(0, r.path.size(), r.path), 0);
    ARLE_CHECK_LE(r.body.size(), kMaxBody);
    for (const auto& [name, value] : r.headers) {
      for (char c : name) ARLE_CHECK(!(c >= 'A' && c <= 'Z')) << name;
    }
    const Router::Match m = TestRouter().Find(r.method, r.path);
    if (m.entry) {
      for (const auto& [name, value] : m.params) ARLE_CHECK(!value.empty()) << name;
    } else {
      ARLE_CHECK(m.params.empty());
      // What the server answers (the method and path may be any bytes).
      (void)arle::server::ErrorBody(m.allow.empty() ? 404 : 405,
                                    "Invalid URL (" + r.method + " " + r.path + ")");
    }
    if (!p.keep_alive || p.consumed == 0) break;
    bytes.remove_prefix(p.consumed);
  }
  return 0;
}
