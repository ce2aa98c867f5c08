// ServeClient over Boost.Beast. Each client owns an io_context driven from the calling thread, so
// the API is blocking while every socket operation still gets a deadline (Asio's synchronous calls
// have none) and can be cancelled from another thread.
#include "arle/io/http_client.h"

#include <fmt/core.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

namespace arle::io {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kMaxSseLine = 64u << 20;
constexpr size_t kMaxBody = 64u << 20;  // non-streamed answers: /v1/models, /metrics, errors

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string HostForHeader(const ServerUrl& u) {
  return u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
}

}  // namespace

std::string ServerUrl::ToString() const {
  return fmt::format("http://{}:{}{}", HostForHeader(*this), port, base_path);
}

core::StatusOr<ServerUrl> ParseServerUrl(std::string_view url) {
  const std::string hint = "expected http://HOST:PORT, e.g. --url http://127.0.0.1:8000";
  auto bad = [&](std::string_view why) {
    return core::InvalidArgumentError(fmt::format("bad --url '{}': {}", url, why), hint);
  };
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return bad("no http:// scheme");
  const std::string scheme = Lower(url.substr(0, scheme_end));
  if (scheme == "https") {
    return core::UnimplementedError(
        fmt::format("bad --url '{}': https is not supported", url),
        "use a plain http:// endpoint (for a TLS-only server, a local TLS-terminating proxy)");
  }
  if (scheme != "http") return bad(fmt::format("unsupported scheme '{}'", scheme));
  std::string_view rest = url.substr(scheme_end + 3);
  const size_t path_start = std::min(rest.find('/'), rest.size());
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path = rest.substr(path_start);
  if (path.find_first_of("?#") != std::string_view::npos) return bad("a query or fragment");
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");

  ServerUrl out;
  std::string_view port;
  if (StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the host");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("junk after ']'");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else {
    const size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
  }
  if (out.host.empty()) return bad("no host");
  if (port.empty()) {
    out.port = "80";
  } else {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return bad(fmt::format("port '{}' is not a number", port));
    }
    const int p = std::stoi(std::string(port));
    if (p < 1 || p > 65535) return bad(fmt::format("port {} is out of range", p));
    out.port = std::to_string(p);
  }
  std::string base(path);
  while (!base.empty() && base.back() == '/') base.pop_back();
  // Users often paste the OpenAI "base URL" (…/v1); every path we send already starts with /v1.
  if (base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0)
    base.resize(base.size() - 3);
  out.base_path = std::move(base);
  return out;
}

std::string ServerErrorMessage(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_string()) return e.get<std::string>();
      if (e.is_object() && e.contains("message") && e["message"].is_string()) {
        return e["message"].get<std::string>();
      }
    }
    if (j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
    if (j.contains("detail") && j["detail"].is_string()) return j["detail"].get<std::string>();
  }
  std::string text(body);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.size() > 500) text = text.substr(0, 500) + "...";
  return text.empty() ? "(empty body)" : text;
}

// ---- SSE -------------------------------------------------------------------------------------

core::Status SseParser::Feed(std::string_view bytes, const SseCallback& on_event) {
  for (char c : bytes) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      skip_lf_ = c == '\r';
      ARLE_RETURN_IF_ERROR(ProcessLine(on_event));
      line_.clear();
      continue;
    }
    if (line_.size() >= kMaxSseLine) {
      return core::DataLossError("malformed SSE stream: a line longer than 64 MiB");
    }
    line_.push_back(c);
  }
  return core::OkStatus();
}

core::Status SseParser::Finish(const SseCallback& on_event) {
  if (!line_.empty()) {
    ARLE_RETURN_IF_ERROR(ProcessLine(on_event));
    line_.clear();
  }
  return Dispatch(on_event);
}

core::Status SseParser::ProcessLine(const SseCallback& on_event) {
  if (line_.empty()) return Dispatch(on_event);
  if (line_[0] == ':') return core::OkStatus();  // comment (keep-alive pings)
  const size_t colon = line_.find(':');
  std::string_view field(line_);
  std::string_view value;
  if (colon != std::string::npos) {
    field = std::string_view(line_).substr(0, colon);
    value = std::string_view(line_).substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data" || field == "error") {
    if (field == "error") event_ = "error";
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  }
  return core::OkStatus();  // id, retry and unknown fields are ignored, as the spec says
}

core::Status SseParser::Dispatch(const SseCallback& on_event) {
  if (!has_data_) {
    event_.clear();
    return core::OkStatus();
  }
  core::Status s = on_event(SseEvent{event_, data_});
  event_.clear();
  data_.clear();
  has_data_ = false;
  return s;
}

// ---- HTTP ------------------------------------------------------------------------------------

struct ServeClient::Impl {
  // A parser reads one message and cannot be reset, so each attempt builds a fresh one.
  using Parser = std::optional<http::response_parser<http::buffer_body>>;
  // Bodies are sent from the caller's bytes (weights can be hundreds of MB): no copy.
  using Request = http::request<http::span_body<const char>>;

  // A request body and its type.
  struct Body {
    std::string_view bytes;
    std::string_view content_type;
  };

  ServerUrl url;
  std::string api_key;
  std::chrono::milliseconds timeout;
  const std::atomic<bool>* cancel;
  asio::io_context ioc;  // declared before the stream: destroyed after it
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool connected = false;
  bool cancelled = false;  // set when the last Run was cut short by `cancel`

  Impl(ServerUrl u, std::string key, std::chrono::milliseconds t, const std::atomic<bool>* c)
      : url(std::move(u)), api_key(std::move(key)), timeout(t), cancel(c) {}

  // Starts one async operation through `initiate(handler)` and drives the io_context until it
  // completes; the handler's extra arguments (bytes, endpoint) are not needed by the callers.
  template <typename Initiate>
  beast::error_code Run(Initiate&& initiate) {
    beast::error_code result;
    bool done = false;
    cancelled = false;
    initiate([&result, &done](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    while (!done) {
      ioc.run_one_for(std::chrono::milliseconds(50));
      if (!done && !cancelled && cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        cancelled = true;
        stream.cancel();
      }
    }
    return result;
  }

  void Close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.clear();
    connected = false;
  }

  std::string Where(std::string_view method, std::string_view target) const {
    return fmt::format("{} {}{}", method, url.ToString(), target.substr(url.base_path.size()));
  }

  core::Status IoFailure(std::string_view what, const beast::error_code& ec) {
    Close();
    if (cancelled) return core::FailedPreconditionError("cancelled");
    if (ec == beast::error::timeout) {
      return core::IoError(fmt::format("{}: no answer within {} s", what, timeout.count() / 1000.0),
                           "raise --timeout if the server is just slow");
    }
    return core::IoError(fmt::format("{}: {}", what, ec.message()));
  }

  core::Status Connect() {
    if (connected) return core::OkStatus();
    // Name lookup stays synchronous (getaddrinfo cannot be cancelled anyway); --url is almost
    // always an address or a local name.
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) {
      return core::IoError(fmt::format("cannot resolve host '{}': {}", url.host, ec.message()),
                           "check the host in --url");
    }
    stream.expires_after(timeout);
    ec = Run([&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
    if (ec) {
      Close();
      if (cancelled) return core::FailedPreconditionError("cancelled");
      return core::IoError(fmt::format("cannot connect to {}: {}", url.ToString(), ec.message()),
                           "is the server running and listening there? check --url");
    }
    // Requests go out in one write; no_delay keeps Nagle from holding one back behind an ACK.
    stream.socket().set_option(tcp::no_delay(true), ec);
    buffer.clear();
    connected = true;
    return core::OkStatus();
  }

  Request MakeRequest(http::verb verb, const std::string& target, std::string_view accept) {
    Request req{verb, target, 11};
    req.set(http::field::host, HostForHeader(url) + ":" + url.port);
    req.set(http::field::user_agent, "arle-bench");
    req.set(http::field::accept, beast::string_view(accept.data(), accept.size()));
    if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
    req.keep_alive(true);
    return req;
  }

  // `body.bytes` must outlive every send of `req`.
  static void SetBody(Request& req, const Body& body) {
    req.set(http::field::content_type,
            beast::string_view(body.content_type.data(), body.content_type.size()));
    req.body() = {body.bytes.data(), body.bytes.size()};
    req.prepare_payload();
  }

  // Writes `req` in as many writes as the socket takes, each with its own deadline, so a large
  // body is bounded by progress rather than by its total time.
  beast::error_code Write(Request& req) {
    http::request_serializer<Request::body_type> serializer(req);
    beast::error_code ec;
    while (!ec && !serializer.is_done()) {
      stream.expires_after(timeout);
      ec = Run(
          [&](auto handler) { http::async_write_some(stream, serializer, std::move(handler)); });
    }
    return ec;
  }

  // Sends `req` and reads the answer's header into `parser`. A reused keep-alive connection that
  // the server has meanwhile closed fails before any answer byte; that case reconnects once.
  core::Status SendAndReadHeader(Request& req, Parser& parser, std::string_view what) {
    for (int attempt = 0;; ++attempt) {
      const bool reused = connected;
      parser.emplace();
      // A stream is as long as the generation, so no limit. Not boost::none: Boost 1.74 compares
      // a Content-Length against the empty optional and rejects every sized body.
      parser->body_limit(std::numeric_limits<std::uint64_t>::max());
      ARLE_RETURN_IF_ERROR(Connect());
      beast::error_code ec = Write(req);
      if (!ec) {
        stream.expires_after(timeout);
        ec = Run([&](auto handler) {
          http::async_read_header(stream, buffer, *parser, std::move(handler));
        });
      }
      if (!ec) return core::OkStatus();
      const bool stale = ec == http::error::end_of_stream || ec == asio::error::eof ||
                         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
      if (reused && stale && attempt == 0 && !cancelled) {
        Close();
        continue;
      }
      return IoFailure(what, ec);
    }
  }

  // Reads the rest of the body, handing each piece to `sink` as it arrives.
  template <typename Sink>
  core::Status ReadBody(http::response_parser<http::buffer_body>& parser, std::string_view what,
                        Sink&& sink) {
    char chunk[16384];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      stream.expires_after(timeout);
      beast::error_code ec = Run(
          [&](auto handler) { http::async_read_some(stream, buffer, parser, std::move(handler)); });
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return IoFailure(what, ec);
      const size_t n = sizeof(chunk) - parser.get().body().size;
      if (n > 0) {
        core::Status s = sink(std::string_view(chunk, n));
        if (!s.ok()) {
          Close();  // abandoning a body midway leaves the connection unusable
          return s;
        }
      }
    }
    if (!parser.keep_alive()) Close();
    return core::OkStatus();
  }

  // One request (with `body` when set) and its whole answer, any status.
  core::StatusOr<HttpResponse> Whole(http::verb verb, std::string_view path,
                                     std::optional<Body> body) {
    const std::string target = url.base_path + std::string(path);
    const std::string what = Where(verb == http::verb::post ? "POST" : "GET", target);
    Request req = MakeRequest(verb, target, "*/*");
    if (body) SetBody(req, *body);
    Parser parser;
    ARLE_RETURN_IF_ERROR(SendAndReadHeader(req, parser, what));
    HttpResponse out;
    out.status = static_cast<int>(parser->get().result_int());
    out.content_type = std::string(parser->get()[http::field::content_type]);
    ARLE_RETURN_IF_ERROR(ReadWholeBody(*parser, what, &out.body));
    return out;
  }

  core::Status ReadWholeBody(http::response_parser<http::buffer_body>& parser,
                             std::string_view what, std::string* body) {
    return ReadBody(parser, what, [&](std::string_view piece) {
      if (body->size() + piece.size() > kMaxBody) {
        return core::DataLossError(fmt::format("{}: answer larger than 64 MiB", what));
      }
      body->append(piece);
      return core::OkStatus();
    });
  }
};

ServeClient::ServeClient(ServerUrl url, std::string api_key, std::chrono::milliseconds timeout,
                         const std::atomic<bool>* cancel)
    : impl_(std::make_unique<Impl>(std::move(url), std::move(api_key), timeout, cancel)) {}

ServeClient::~ServeClient() {
  if (impl_->connected) impl_->Close();
}

const ServerUrl& ServeClient::url() const { return impl_->url; }

core::StatusOr<HttpResponse> ServeClient::Get(std::string_view path) {
  return impl_->Whole(http::verb::get, path, std::nullopt);
}

core::StatusOr<HttpResponse> ServeClient::Post(std::string_view path,
                                               const std::string& json_body) {
  return Post(path, json_body, "application/json");
}

core::StatusOr<HttpResponse> ServeClient::Post(std::string_view path, std::string_view body,
                                               std::string_view content_type) {
  return impl_->Whole(http::verb::post, path, Impl::Body{body, content_type});
}

core::Status ServeClient::PostStream(std::string_view path, const std::string& json_body,
                                     const SseCallback& on_event) {
  const std::string target = impl_->url.base_path + std::string(path);
  const std::string what = impl_->Where("POST", target);
  Impl::Request req = impl_->MakeRequest(http::verb::post, target, "text/event-stream");
  Impl::SetBody(req, {json_body, "application/json"});
  Impl::Parser parser;
  ARLE_RETURN_IF_ERROR(impl_->SendAndReadHeader(req, parser, what));

  const int status = static_cast<int>(parser->get().result_int());
  const std::string content_type(parser->get()[http::field::content_type]);
  if (status != 200) {
    const std::string reason(parser->get().reason());
    std::string body;
    ARLE_RETURN_IF_ERROR(impl_->ReadWholeBody(*parser, what, &body));
    std::string hint;
    if (status == 401 || status == 403) hint = "pass the server's key with --api-key";
    if (status == 404) hint = "check --url and --model: the server must serve " + std::string(path);
    return core::FailedPreconditionError(fmt::format("{}: server answered {} {}: {}", what, status,
                                                     reason, ServerErrorMessage(body)),
                                         hint);
  }
  if (!StartsWith(Lower(content_type), "text/event-stream")) {
    std::string body;
    ARLE_RETURN_IF_ERROR(impl_->ReadWholeBody(*parser, what, &body));
    return core::DataLossError(fmt::format("{}: expected a text/event-stream answer, got '{}': {}",
                                           what, content_type, ServerErrorMessage(body)),
                               "the server ignored \"stream\": true; is it OpenAI-compatible?");
  }
  SseParser sse;
  ARLE_RETURN_IF_ERROR(impl_->ReadBody(
      *parser, what, [&](std::string_view piece) { return sse.Feed(piece, on_event); }));
  return sse.Finish(on_event);
}

}  // namespace arle::io
