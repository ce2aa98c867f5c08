// Internal to arle_server: HttpServer's routing table — literal paths and patterns with path
// parameters ("/v1/models/{id...}"), methods per path (for 405 and Allow), and the
// percent-decoding of captured values.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "arle/server/http_server.h"

namespace arle::server::http_internal {

// Decodes %XX escapes (either case). '+' stays '+' (it means a space only in query strings).
// Returns false, leaving `out` unspecified, on a '%' not followed by two hex digits.
bool PercentDecode(std::string_view in, std::string* out);

// Routes by method and path. A pattern is a path whose segments are literals or parameters:
// "{name}" matches one non-empty segment (no '/'); "{name...}", allowed as the last segment only,
// matches the non-empty rest of the path, '/' included (so a model id such as "Qwen/Qwen3-0.6B"
// can be sent as is). Literals match exactly, undecoded; captured values are percent-decoded
// ("%2F" -> "/"), and a value with a malformed escape does not match. A literal path beats any
// pattern; among patterns, the first registered that matches the path and has the method wins.
// Not thread-safe to modify; Find is const and may run concurrently.
class Router {
 public:
  struct Entry {
    Handler handler;
    bool auth = true;
    size_t max_body_bytes = 0;  // the route's own body limit; 0: the server's
  };

  // REQUIRES (ARLE_CHECK: a programming error): `pattern` starts with '/', each "{...}" is a whole
  // segment with a non-empty name used once, "{name...}" only last, and (method, pattern) was not
  // added before.
  void Add(std::string method, std::string pattern, Entry entry);

  struct Match {
    const Entry* entry = nullptr;               // null: no route for this method and path
    std::map<std::string, std::string> params;  // the captured parameters, decoded
    // When entry is null: the methods the path does have ("GET, POST"; -> 405), or empty (-> 404).
    std::string allow;
  };
  Match Find(std::string_view method, std::string_view path) const;

  // Whether some entry has its own max_body_bytes (else the server need not route before the body).
  bool has_body_limits() const { return has_body_limits_; }

 private:
  struct Segment {
    std::string text;   // a literal, or a parameter's name
    bool param = false;
    bool rest = false;  // "{name...}"
  };
  struct Route {
    std::string pattern;
    std::vector<Segment> segments;  // empty for a literal path (matched by `pattern`)
    std::map<std::string, Entry, std::less<>> methods;
  };

  // Whether `path` matches `route` (a pattern); fills `params`.
  static bool MatchPattern(const Route& route, std::string_view path,
                           std::map<std::string, std::string>* params);

  std::vector<Route> routes_;  // registration order
  bool has_body_limits_ = false;
};

}  // namespace arle::server::http_internal
