// Router: literal paths first, then patterns in registration order, matched segment by segment on
// the raw path; captured values are percent-decoded after they matched.
#include "arle/server/http_router.h"

#include <algorithm>
#include <utility>

#include "arle/core/check.h"

namespace arle::server::http_internal {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The next segment of `path` at `*pos` (just after a '/'), up to the next '/' or the end; moves
// `*pos` past it and past that '/'. Returns false at the end of the path.
bool NextSegment(std::string_view path, size_t* pos, std::string_view* segment) {
  if (*pos > path.size()) return false;
  const size_t end = std::min(path.find('/', *pos), path.size());
  *segment = path.substr(*pos, end - *pos);
  *pos = end + 1;
  return true;
}

}  // namespace

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

void Router::Add(std::string method, std::string pattern, Entry entry) {
  ARLE_CHECK(!pattern.empty() && pattern[0] == '/') << "route pattern must start with '/': " << pattern;
  ARLE_CHECK(entry.handler) << "route " << method << " " << pattern << " without a handler";
  Route* route = nullptr;
  for (Route& r : routes_) {
    if (r.pattern == pattern) route = &r;
  }
  if (!route) {
    Route r;
    r.pattern = pattern;
    if (pattern.find('{') != std::string::npos) {
      std::string_view rest(pattern);
      size_t pos = 1;
      std::string_view seg;
      std::vector<std::string> names;
      while (NextSegment(rest, &pos, &seg)) {
        Segment s;
        if (!seg.empty() && seg.front() == '{') {
          ARLE_CHECK(seg.back() == '}') << "a parameter must be a whole segment: " << pattern;
          std::string_view name = seg.substr(1, seg.size() - 2);
          s.param = true;
          if (name.ends_with("...")) {
            s.rest = true;
            name.remove_suffix(3);
            ARLE_CHECK(pos > pattern.size()) << "{name...} must be the last segment: " << pattern;
          }
          ARLE_CHECK(!name.empty() && name.find_first_of("{}/") == std::string_view::npos)
              << "bad parameter name in " << pattern;
          for (const std::string& n : names) {
            ARLE_CHECK(n != name) << "parameter '" << name << "' used twice in " << pattern;
          }
          names.emplace_back(name);
          s.text = std::string(name);
        } else {
          ARLE_CHECK(seg.find_first_of("{}") == std::string_view::npos)
              << "a parameter must be a whole segment: " << pattern;
          s.text = std::string(seg);
        }
        r.segments.push_back(std::move(s));
      }
    }
    routes_.push_back(std::move(r));
    route = &routes_.back();
  }
  ARLE_CHECK(route->methods.find(method) == route->methods.end())
      << "route " << method << " " << pattern << " registered twice";
  if (entry.max_body_bytes != 0) has_body_limits_ = true;
  route->methods.emplace(std::move(method), std::move(entry));
}

bool Router::MatchPattern(const Route& route, std::string_view path,
                          std::map<std::string, std::string>* params) {
  if (path.empty() || path[0] != '/') return false;
  size_t pos = 1;
  std::string_view seg;
  std::string decoded;
  for (const Segment& s : route.segments) {
    if (s.rest) {
      if (pos >= path.size()) return false;  // nothing left for the parameter
      if (!PercentDecode(path.substr(pos), &decoded)) return false;
      (*params)[s.text] = decoded;
      return true;
    }
    if (!NextSegment(path, &pos, &seg)) return false;
    if (!s.param) {
      if (seg != s.text) return false;
      continue;
    }
    if (seg.empty() || !PercentDecode(seg, &decoded)) return false;
    (*params)[s.text] = decoded;
  }
  return pos > path.size();  // every segment of the path was used
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match match;
  std::string allow;
  auto add_allowed = [&](const Route& r) {
    for (const auto& [m, entry] : r.methods) {
      if (!allow.empty()) allow += ", ";
      allow += m;
    }
  };
  // A literal path beats the patterns.
  for (const Route& r : routes_) {
    if (!r.segments.empty() || r.pattern != path) continue;
    if (auto it = r.methods.find(method); it != r.methods.end()) {
      match.entry = &it->second;
      return match;
    }
    add_allowed(r);
  }
  for (const Route& r : routes_) {
    if (r.segments.empty()) continue;
    std::map<std::string, std::string> params;
    if (!MatchPattern(r, path, &params)) continue;
    if (auto it = r.methods.find(method); it != r.methods.end()) {
      match.entry = &it->second;
      match.params = std::move(params);
      return match;
    }
    add_allowed(r);
  }
  match.allow = std::move(allow);
  return match;
}

}  // namespace arle::server::http_internal
