// Tests for arle::server::HttpServer over real sockets on 127.0.0.1 (port 0), using a small Beast
// client whose reads time out, so a server bug fails a test instead of hanging it; and
// io::ServeClient's POST against such a server.
#include "arle/server/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "arle/io/http_client.h"

namespace arle::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using Response = http::response<http::string_body>;

constexpr auto kIoTimeout = 5s;

bool WaitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::string Str(beast::string_view s) { return std::string(s.data(), s.size()); }

// One client connection. Every operation runs on a private io_context with a timeout.
class Client {
 public:
  explicit Client(int port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)));
  }

  beast::error_code Send(http::verb method, const std::string& target, const std::string& body = {},
                         const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty() || method == http::verb::post) {
      request.body() = body;
      request.prepare_payload();
    }
    return Run([&](auto handler) { http::async_write(socket_, request, handler); });
  }

  beast::error_code Read(Response& response) {
    return Run([&](auto handler) { http::async_read(socket_, buffer_, response, handler); });
  }

  Response Request(http::verb method, const std::string& target, const std::string& body = {},
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    Response response;
    beast::error_code ec = Send(method, target, body, headers);
    EXPECT_FALSE(ec) << "send: " << ec.message();
    if (!ec) {
      ec = Read(response);
      EXPECT_FALSE(ec) << "read: " << ec.message();
    }
    return response;
  }

  beast::error_code WriteRaw(const std::string& bytes) {
    return Run([&](auto handler) { net::async_write(socket_, net::buffer(bytes), handler); });
  }

  // Reads until EOF (or timeout); returns the bytes and sets *ec to the final error.
  std::string ReadUntilEof(beast::error_code* ec, std::chrono::milliseconds timeout = kIoTimeout) {
    std::string all = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    for (;;) {
      char data[4096];
      size_t got = 0;
      beast::error_code e = Run(
          [&](auto handler) {
            socket_.async_read_some(net::buffer(data), [&, handler](beast::error_code e2, size_t n) {
              got = n;
              handler(e2, n);
            });
          },
          timeout);
      all.append(data, got);
      if (e) {
        *ec = e;
        return all;
      }
    }
  }

  // Reads exactly `n` bytes into a string (raw protocol tests).
  std::string ReadExactly(size_t n) {
    std::string out(n, '\0');
    size_t from_buffer = std::min(n, buffer_.size());
    net::buffer_copy(net::buffer(out.data(), from_buffer), buffer_.data());
    buffer_.consume(from_buffer);
    if (from_buffer < n) {
      beast::error_code ec = Run([&](auto handler) {
        net::async_read(socket_, net::buffer(out.data() + from_buffer, n - from_buffer), handler);
      });
      EXPECT_FALSE(ec) << ec.message();
    }
    return out;
  }

  tcp::socket& socket() { return socket_; }
  beast::flat_buffer& buffer() { return buffer_; }

  // Runs one async operation to completion or cancels it after `timeout` (error: timed_out).
  template <typename StartOp>
  beast::error_code Run(StartOp start, std::chrono::milliseconds timeout = kIoTimeout) {
    beast::error_code result;
    bool done = false;
    start([&](beast::error_code ec, size_t) {
      result = ec;
      done = true;
    });
    ioc_.restart();
    ioc_.run_for(timeout);
    if (!done) {
      beast::error_code ignored;
      socket_.cancel(ignored);
      ioc_.restart();
      ioc_.run();
      return net::error::timed_out;
    }
    return result;
  }

 private:
  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

nlohmann::json ParseError(const Response& response) {
  nlohmann::json json = nlohmann::json::parse(response.body(), nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(json.is_discarded()) << response.body();
  return json;
}

// Holds background threads handlers start, joined at the end of the test.
class ThreadBag {
 public:
  ~ThreadBag() { JoinAll(); }
  void Add(std::thread thread) {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.push_back(std::move(thread));
  }
  void JoinAll() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(threads_);
    }
    for (auto& thread : threads) thread.join();
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

HttpServerOptions TestOptions() {
  HttpServerOptions options;
  options.port = 0;
  options.n_io_threads = 2;
  return options;
}

void TextHandler(const std::string& text, const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
  w->Send(200, "text/plain", text);
}

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options,
                                        const std::function<void(HttpServer&)>& add_routes) {
  auto server = std::make_unique<HttpServer>(std::move(options));
  add_routes(*server);
  core::Status status = server->Start();
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_GT(server->port(), 0);
  return server;
}

TEST(HttpErrorTest, EnvelopeShape) {
  nlohmann::json body = nlohmann::json::parse(ErrorBody(404, "no such model"));
  ASSERT_TRUE(body.contains("error"));
  const auto& error = body["error"];
  EXPECT_EQ(error.size(), 4u);
  EXPECT_EQ(error["message"], "no such model");
  EXPECT_EQ(error["type"], "not_found_error");
  EXPECT_TRUE(error["param"].is_null());
  EXPECT_TRUE(error["code"].is_null());

  body = nlohmann::json::parse(ErrorBody(400, "bad", "temperature", "invalid_value"));
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "temperature");
  EXPECT_EQ(body["error"]["code"], "invalid_value");

  EXPECT_EQ(nlohmann::json::parse(ErrorBody(401, "x"))["error"]["type"], "authentication_error");
  EXPECT_EQ(nlohmann::json::parse(ErrorBody(503, "x"))["error"]["type"], "server_overloaded");
  EXPECT_EQ(nlohmann::json::parse(ErrorBody(500, "x"))["error"]["type"], "server_error");
  EXPECT_EQ(nlohmann::json::parse(ErrorBody(400, "x", {}, {}, "custom"))["error"]["type"], "custom");
  // Invalid UTF-8 in a message must not throw.
  EXPECT_NO_THROW(nlohmann::json::parse(ErrorBody(400, std::string("bad \xff byte"))));
}

TEST(HttpServerTest, RoutesNotFoundAndMethodNotAllowed) {
  auto server = StartServer(TestOptions(), [](HttpServer& s) {
    s.Route("GET", "/hello", [](const HttpRequest& r, auto w) { TextHandler("hi", r, w); });
    s.Route("POST", "/echo", [](const HttpRequest& r, auto w) {
      w->Send(201, "application/json", r.body, {{"X-Extra", "1"}, {"Bad\r\nHeader", "x"}});
    });
    s.Route("PUT", "/echo", [](const HttpRequest& r, auto w) { TextHandler("put", r, w); });
  });
  Client client(server->port());

  Response ok = client.Request(http::verb::get, "/hello");
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_EQ(ok.body(), "hi");
  EXPECT_EQ(Str(ok[http::field::server]), "arle");
  EXPECT_EQ(Str(ok[http::field::content_type]), "text/plain");
  EXPECT_EQ(Str(ok[http::field::content_length]), "2");

  Response echo = client.Request(http::verb::post, "/echo", R"({"a":1})");
  EXPECT_EQ(echo.result_int(), 201);
  EXPECT_EQ(echo.body(), R"({"a":1})");
  EXPECT_EQ(Str(echo["X-Extra"]), "1");

  Response missing = client.Request(http::verb::get, "/nope?x=1");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(Str(missing[http::field::content_type]), "application/json");
  nlohmann::json error = ParseError(missing);
  EXPECT_EQ(error["error"]["type"], "not_found_error");
  EXPECT_NE(error["error"]["message"].get<std::string>().find("/nope"), std::string::npos);
  EXPECT_TRUE(error["error"]["param"].is_null());
  EXPECT_TRUE(error["error"]["code"].is_null());

  Response wrong_method = client.Request(http::verb::delete_, "/echo");
  EXPECT_EQ(wrong_method.result_int(), 405);
  EXPECT_EQ(Str(wrong_method[http::field::allow]), "POST, PUT");
  EXPECT_EQ(ParseError(wrong_method)["error"]["type"], "invalid_request_error");

  Response head = client.Request(http::verb::post, "/hello", "x");
  EXPECT_EQ(head.result_int(), 405);
  EXPECT_EQ(Str(head[http::field::allow]), "GET");
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
}

TEST(HttpServerTest, RequestFieldsReachTheHandler) {
  std::mutex mu;
  HttpRequest seen;
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("POST", "/v1/x", [&](const HttpRequest& r, auto w) {
      {
        std::lock_guard<std::mutex> lock(mu);
        seen = r;
      }
      w->Send(200, "text/plain", "ok");
    });
  });
  Client client(server->port());
  Response response =
      client.Request(http::verb::post, "/v1/x?stream=true", "body!", {{"X-Test-Header", "Value"}});
  EXPECT_EQ(response.result_int(), 200);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/v1/x?stream=true");
  EXPECT_EQ(seen.path, "/v1/x");
  EXPECT_EQ(seen.body, "body!");
  EXPECT_EQ(seen.headers["x-test-header"], "Value");
  EXPECT_EQ(seen.remote.rfind("127.0.0.1:", 0), 0u) << seen.remote;
}

TEST(HttpServerTest, ApiKey) {
  HttpServerOptions options = TestOptions();
  options.api_key = "sk-secret";
  auto server = StartServer(options, [](HttpServer& s) {
    s.Route("GET", "/v1/models", [](const HttpRequest& r, auto w) { TextHandler("models", r, w); });
    s.Route("GET", "/health", [](const HttpRequest& r, auto w) { TextHandler("ok", r, w); },
            /*auth=*/false);
  });
  Client client(server->port());

  Response missing = client.Request(http::verb::get, "/v1/models");
  EXPECT_EQ(missing.result_int(), 401);
  EXPECT_EQ(ParseError(missing)["error"]["type"], "authentication_error");
  EXPECT_EQ(Str(missing[http::field::www_authenticate]), "Bearer");

  for (const char* bad : {"Bearer sk-wrong", "Bearer sk-secre", "Bearer sk-secret2", "sk-secret",
                          "Basic sk-secret", "Bearer "}) {
    Response wrong = client.Request(http::verb::get, "/v1/models", {}, {{"Authorization", bad}});
    EXPECT_EQ(wrong.result_int(), 401) << bad;
    EXPECT_EQ(ParseError(wrong)["error"]["code"], "invalid_api_key") << bad;
  }

  Response right =
      client.Request(http::verb::get, "/v1/models", {}, {{"Authorization", "Bearer sk-secret"}});
  EXPECT_EQ(right.result_int(), 200);
  EXPECT_EQ(right.body(), "models");
  Response lower =
      client.Request(http::verb::get, "/v1/models", {}, {{"Authorization", "bearer sk-secret"}});
  EXPECT_EQ(lower.result_int(), 200);

  Response open = client.Request(http::verb::get, "/health");
  EXPECT_EQ(open.result_int(), 200);
  EXPECT_EQ(open.body(), "ok");
}

TEST(HttpServerTest, BodyOverLimitGets413AndClose) {
  HttpServerOptions options = TestOptions();
  options.max_body_bytes = 1024;
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](HttpServer& s) {
    s.Route("POST", "/echo", [&](const HttpRequest& r, auto w) {
      ++calls;
      w->Send(200, "text/plain", r.body);
    });
  });
  {
    Client client(server->port());
    Response at_limit = client.Request(http::verb::post, "/echo", std::string(1024, 'a'));
    EXPECT_EQ(at_limit.result_int(), 200);
    EXPECT_EQ(at_limit.body().size(), 1024u);
  }
  {  // Declared by Content-Length.
    Client client(server->port());
    Response over = client.Request(http::verb::post, "/echo", std::string(1025, 'a'));
    EXPECT_EQ(over.result_int(), 413);
    EXPECT_FALSE(over.keep_alive());
    EXPECT_EQ(ParseError(over)["error"]["type"], "invalid_request_error");
    beast::error_code ec;
    client.ReadUntilEof(&ec);
    EXPECT_EQ(ec, net::error::eof);
  }
  {  // Chunked: only known while reading.
    Client client(server->port());
    std::string raw =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "400\r\n" + std::string(1024, 'b') + "\r\n10\r\n" + std::string(16, 'c') + "\r\n0\r\n\r\n";
    ASSERT_FALSE(client.WriteRaw(raw));
    Response over;
    ASSERT_FALSE(client.Read(over));
    EXPECT_EQ(over.result_int(), 413);
  }
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
}

TEST(HttpServerTest, PerRouteBodyLimit) {
  HttpServerOptions options = TestOptions();
  options.max_body_bytes = 16 << 10;
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](HttpServer& s) {
    const Handler echo = [&](const HttpRequest& r, auto w) {
      ++calls;
      w->Send(200, "text/plain", r.body);
    };
    s.Route("POST", "/echo", echo);
    s.Route("POST", "/upload", echo, /*auth=*/true, /*max_body_bytes=*/64 << 10);
  });
  const auto message = [](const Response& r) {
    return ParseError(r)["error"]["message"].get<std::string>();
  };
  {  // The enlarged route takes what the default one refuses, on one keep-alive connection.
    Client client(server->port());
    Response big = client.Request(http::verb::post, "/upload", std::string(40 << 10, 'u'));
    EXPECT_EQ(big.result_int(), 200);
    EXPECT_EQ(big.body().size(), 40u << 10);
    Response at_default = client.Request(http::verb::post, "/echo", std::string(16 << 10, 'e'));
    EXPECT_EQ(at_default.result_int(), 200);
    Response over_default = client.Request(http::verb::post, "/echo", std::string(40 << 10, 'e'));
    EXPECT_EQ(over_default.result_int(), 413);
    EXPECT_FALSE(over_default.keep_alive());
    EXPECT_NE(message(over_default).find("16384 bytes"), std::string::npos)
        << message(over_default);
  }
  {  // Over the route's own limit, by Content-Length: 413 naming it.
    Client client(server->port());
    Response over = client.Request(http::verb::post, "/upload", std::string(80 << 10, 'u'));
    EXPECT_EQ(over.result_int(), 413);
    EXPECT_NE(message(over).find("65536 bytes"), std::string::npos) << message(over);
    beast::error_code ec;
    client.ReadUntilEof(&ec);
    EXPECT_EQ(ec, net::error::eof);
  }
  {  // Chunked: the size is found while reading the body, still against the route's limit.
    const auto chunked = [](int n_chunks) {
      std::string raw = "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (int i = 0; i < n_chunks; ++i) raw += "8000\r\n" + std::string(32 << 10, 'c') + "\r\n";
      return raw + "0\r\n\r\n";
    };
    Client client(server->port());
    ASSERT_FALSE(client.WriteRaw(chunked(2)));
    Response at_limit;
    ASSERT_FALSE(client.Read(at_limit));
    EXPECT_EQ(at_limit.result_int(), 200);
    EXPECT_EQ(at_limit.body().size(), 64u << 10);
    ASSERT_FALSE(client.WriteRaw(chunked(3)));
    Response over;
    ASSERT_FALSE(client.Read(over));
    EXPECT_EQ(over.result_int(), 413);
    EXPECT_NE(message(over).find("65536 bytes"), std::string::npos) << message(over);
  }
  {  // Unrouted paths keep the server's limit.
    Client client(server->port());
    Response over = client.Request(http::verb::post, "/nope", std::string(40 << 10, 'n'));
    EXPECT_EQ(over.result_int(), 413);
  }
  EXPECT_EQ(calls.load(), 3);
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
}

TEST(HttpServerTest, EnlargedRouteChecksTheKeyBeforeTheBody) {
  HttpServerOptions options = TestOptions();
  options.api_key = "sk-secret";
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](HttpServer& s) {
    const Handler echo = [&](const HttpRequest& r, auto w) {
      ++calls;
      w->Send(200, "text/plain", r.body);
    };
    s.Route("POST", "/v1/admin/weights", echo, /*auth=*/true, /*max_body_bytes=*/64 << 20);
    s.Route("POST", "/open", echo, /*auth=*/false, /*max_body_bytes=*/64 << 20);
  });
  // Only the header of a 10 MB body: the answer must come without the body being sent.
  const auto header_only = [](const std::string& path, const std::string& extra) {
    return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n" + extra + "\r\n";
  };
  struct Case {
    std::string extra_headers;
    std::string code;  // the envelope's code; "" -> null
  };
  const Case cases[] = {
      {"", ""},
      {"Authorization: Bearer sk-wrong\r\n", "invalid_api_key"},
      {"Authorization: Bearer sk-wrong\r\nExpect: 100-continue\r\n", "invalid_api_key"}};
  for (const Case& c : cases) {
    Client client(server->port());
    const auto start = std::chrono::steady_clock::now();
    ASSERT_FALSE(client.WriteRaw(header_only("/v1/admin/weights", c.extra_headers)));
    Response refused;
    ASSERT_FALSE(client.Read(refused)) << c.extra_headers;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_EQ(refused.result_int(), 401) << c.extra_headers;  // not "100 Continue" either
    EXPECT_FALSE(refused.keep_alive());
    EXPECT_EQ(Str(refused[http::field::www_authenticate]), "Bearer");
    const nlohmann::json error = ParseError(refused);
    EXPECT_EQ(error["error"]["type"], "authentication_error");
    if (c.code.empty()) {
      EXPECT_TRUE(error["error"]["code"].is_null());
      EXPECT_NE(error["error"]["message"].get<std::string>().find("Missing API key"),
                std::string::npos);
    } else {
      EXPECT_EQ(error["error"]["code"], c.code);
      EXPECT_EQ(error["error"]["message"], "Incorrect API key provided");
    }
    beast::error_code ec;
    client.ReadUntilEof(&ec);
    EXPECT_EQ(ec, net::error::eof);
  }
  {  // A route without auth waits for the body, as does one given the right key.
    Client client(server->port());
    ASSERT_FALSE(client.WriteRaw(header_only("/open", "")));
    beast::error_code ec;
    EXPECT_EQ(client.ReadUntilEof(&ec, 300ms), "");
    EXPECT_EQ(ec, net::error::timed_out);
  }
  {
    Client client(server->port());
    Response ok = client.Request(http::verb::post, "/v1/admin/weights", std::string(1 << 20, 'w'),
                                 {{"Authorization", "Bearer sk-secret"}});
    EXPECT_EQ(ok.result_int(), 200);
    EXPECT_EQ(ok.body().size(), 1u << 20);
  }
  EXPECT_EQ(calls.load(), 1);
}

// io::ServeClient's binary POST against a real server (the client has no test server of its own).
TEST(HttpServerTest, ServeClientPostsBinaryBodies) {
  HttpServerOptions options = TestOptions();
  options.api_key = "sk-secret";
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;  // content type, body
  auto server = StartServer(options, [&](HttpServer& s) {
    s.Route(
        "POST", "/v1/admin/weights",
        [&](const HttpRequest& r, auto w) {
          {
            std::lock_guard<std::mutex> lock(mu);
            seen.emplace_back(r.headers.count("content-type") ? r.headers.at("content-type") : "",
                              r.body);
          }
          w->Send(200, "application/json", R"({"bytes":)" + std::to_string(r.body.size()) + "}");
        },
        /*auth=*/true, /*max_body_bytes=*/32 << 20);
  });
  auto url = io::ParseServerUrl("http://127.0.0.1:" + std::to_string(server->port()));
  ASSERT_TRUE(url.ok()) << url.status().ToString();

  // Every byte value, NULs included, and large enough to take many socket writes.
  std::string weights(20 << 20, '\0');
  for (size_t i = 0; i < weights.size(); ++i) {
    weights[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  }
  io::ServeClient client(*url, "sk-secret", 5000ms);
  auto posted = client.Post("/v1/admin/weights", weights, "application/octet-stream");
  ASSERT_TRUE(posted.ok()) << posted.status().ToString();
  EXPECT_EQ(posted->status, 200);
  EXPECT_EQ(posted->content_type, "application/json");
  EXPECT_EQ(posted->body, R"({"bytes":20971520})");

  // The JSON overload is the same request with its type.
  auto json = client.Post("/v1/admin/weights", std::string(R"({"a":1})"));
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(json->status, 200);

  // An error status is a value, not a Status.
  io::ServeClient keyless(*url, "", 5000ms);
  auto refused = keyless.Post("/v1/admin/weights", std::string_view("x", 1), "text/plain");
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(refused->status, 401);

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, "application/octet-stream");
  EXPECT_TRUE(seen[0].second == weights) << "the server got other bytes";
  EXPECT_EQ(seen[1].first, "application/json");
  EXPECT_EQ(seen[1].second, R"({"a":1})");
}

TEST(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  std::mutex mu;
  std::vector<std::string> remotes;
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("GET", "/who", [&](const HttpRequest& r, auto w) {
      {
        std::lock_guard<std::mutex> lock(mu);
        remotes.push_back(r.remote);
      }
      w->Send(200, "text/plain", r.remote);
    });
  });
  Client client(server->port());
  Response first = client.Request(http::verb::get, "/who");
  Response second = client.Request(http::verb::get, "/who");
  Response third = client.Request(http::verb::get, "/who");
  EXPECT_TRUE(first.keep_alive());
  EXPECT_EQ(first.body(), second.body());
  EXPECT_EQ(second.body(), third.body());
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(remotes.size(), 3u);
  EXPECT_EQ(remotes[0], remotes[2]);  // the same client port: one TCP connection
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  auto server = StartServer(TestOptions(), [](HttpServer& s) {
    s.Route("GET", "/a", [](const HttpRequest& r, auto w) { TextHandler("A", r, w); });
    s.Route("POST", "/b", [](const HttpRequest& r, auto w) { TextHandler("B" + r.body, r, w); });
  });
  Client client(server->port());
  ASSERT_FALSE(client.WriteRaw(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (const char* expected : {"A", "Bxyz", "A"}) {
    Response response;
    ASSERT_FALSE(client.Read(response));
    EXPECT_EQ(response.body(), expected);
  }
}

TEST(HttpServerTest, ChunkedStreamFromAnotherThread) {
  ThreadBag bag;
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("POST", "/stream", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->OnClose([] {});
      w->StartStream(200, "text/event-stream");
      bag.Add(std::thread([w] {
        for (int i = 0; i < 5; ++i) {
          w->Write("data: " + std::to_string(i) + "\n\n");
          std::this_thread::sleep_for(5ms);
        }
        w->Write("data: [DONE]\n\n");
        w->Finish();
        w->Write("ignored after Finish");
        w->Finish();
      }));
    });
    s.Route("GET", "/after", [](const HttpRequest& r, auto w) { TextHandler("after", r, w); });
  });
  Client client(server->port());
  ASSERT_FALSE(client.Send(http::verb::post, "/stream", "{}"));

  http::response_parser<http::string_body> parser;
  int n_chunks = 0;
  std::string streamed;
  auto on_body = [&](std::uint64_t, beast::string_view body, beast::error_code&) -> size_t {
    streamed.append(body.data(), body.size());
    return body.size();
  };
  auto on_header = [&](std::uint64_t, beast::string_view, beast::error_code&) { ++n_chunks; };
  parser.on_chunk_body(on_body);
  parser.on_chunk_header(on_header);
  ASSERT_FALSE(client.Run([&](auto handler) {
    http::async_read(client.socket(), client.buffer(), parser, handler);
  }));
  const auto& response = parser.get();
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_TRUE(response.chunked());
  EXPECT_EQ(Str(response[http::field::content_type]), "text/event-stream");
  EXPECT_EQ(Str(response[http::field::server]), "arle");
  EXPECT_EQ(streamed, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: [DONE]\n\n");
  EXPECT_EQ(n_chunks, 7);  // six data chunks and the terminating zero chunk

  // The connection stays usable after the stream.
  Response after = client.Request(http::verb::get, "/after");
  EXPECT_EQ(after.body(), "after");
  bag.JoinAll();
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
}

TEST(HttpServerTest, ClientDisconnectMidStreamFiresOnCloseOnce) {
  const auto test_thread = std::this_thread::get_id();
  std::atomic<int> n_closed{0};
  std::atomic<bool> closed_on_test_thread{false};
  std::shared_ptr<ResponseWriter> writer;
  std::mutex mu;
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("POST", "/stream", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->OnClose([&] {
        if (std::this_thread::get_id() == test_thread) closed_on_test_thread = true;
        ++n_closed;
      });
      w->StartStream(200, "text/event-stream");
      w->Write("data: first\n\n");
      std::lock_guard<std::mutex> lock(mu);
      writer = w;
    });
  });
  {
    Client client(server->port());
    ASSERT_FALSE(client.Send(http::verb::post, "/stream", "{}"));
    http::response_parser<http::string_body> parser;
    ASSERT_FALSE(client.Run([&](auto handler) {
      http::async_read_header(client.socket(), client.buffer(), parser, handler);
    }));
    EXPECT_EQ(parser.get().result_int(), 200);
    ASSERT_TRUE(WaitFor([&] { return server->n_in_flight() == 1; }, 2000ms));
    // Leaving the scope closes the socket mid-stream: the disconnect.
  }
  ASSERT_TRUE(WaitFor([&] { return n_closed.load() == 1; }, 2000ms));
  std::shared_ptr<ResponseWriter> w;
  {
    std::lock_guard<std::mutex> lock(mu);
    w = writer;
  }
  ASSERT_NE(w, nullptr);
  EXPECT_FALSE(w->IsOpen());
  EXPECT_FALSE(closed_on_test_thread.load());
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
  // Writes after the close are ignored; OnClose does not fire again.
  w->Write("data: late\n\n");
  w->Finish();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(n_closed.load(), 1);
}

TEST(HttpServerTest, WritesNeverBlockOnAClientThatDoesNotRead) {
  constexpr int kChunks = 512;
  constexpr size_t kChunkBytes = 16 * 1024;  // 8 MiB in all: far more than the socket buffers
  ThreadBag bag;
  std::atomic<int> n_closed{0};
  std::atomic<bool> all_written{false};
  std::atomic<int64_t> write_ms{-1};
  std::shared_ptr<ResponseWriter> keep;  // OnClose lives in the writer: keep it past the thread
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("POST", "/flood", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      keep = w;
      w->OnClose([&] { ++n_closed; });
      w->StartStream(200, "application/octet-stream");
      bag.Add(std::thread([&, w] {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < kChunks; ++i) w->Write(std::string(kChunkBytes, 'x'));
        write_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
        all_written = true;
      }));
    });
  });
  {
    Client client(server->port());
    ASSERT_FALSE(client.Send(http::verb::post, "/flood", "{}"));
    ASSERT_TRUE(WaitFor([&] { return all_written.load(); }, 5000ms));
    EXPECT_LT(write_ms.load(), 3000);
    EXPECT_EQ(n_closed.load(), 0);
  }  // the client leaves without reading
  EXPECT_TRUE(WaitFor([&] { return n_closed.load() == 1; }, 3000ms));
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
  bag.JoinAll();
  EXPECT_FALSE(keep->IsOpen());
}

TEST(HttpServerTest, OnCloseSetAfterTheDisconnectStillFires) {
  std::shared_ptr<ResponseWriter> writer;
  std::mutex mu;
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("POST", "/slow", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      std::lock_guard<std::mutex> lock(mu);
      writer = w;
    });
  });
  {
    Client client(server->port());
    ASSERT_FALSE(client.Send(http::verb::post, "/slow", "{}"));
    ASSERT_TRUE(WaitFor([&] { return server->n_in_flight() == 1; }, 2000ms));
  }
  ASSERT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
  std::shared_ptr<ResponseWriter> w;
  {
    std::lock_guard<std::mutex> lock(mu);
    w = writer;
  }
  ASSERT_NE(w, nullptr);
  EXPECT_FALSE(w->IsOpen());
  std::atomic<int> n_closed{0};
  std::atomic<bool> on_other_thread{false};
  const auto test_thread = std::this_thread::get_id();
  w->OnClose([&] {
    on_other_thread = std::this_thread::get_id() != test_thread;
    ++n_closed;
  });
  ASSERT_TRUE(WaitFor([&] { return n_closed.load() == 1; }, 2000ms));
  EXPECT_TRUE(on_other_thread.load());
  w->OnClose([&] { ++n_closed; });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(n_closed.load(), 1);
}

TEST(HttpServerTest, StopLetsAStreamFinishWithinTheDeadline) {
  ThreadBag bag;
  std::atomic<int> n_closed{0};
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("POST", "/stream", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->OnClose([&] { ++n_closed; });
      w->StartStream(200, "text/event-stream");
      bag.Add(std::thread([w] {
        for (int i = 0; i < 10; ++i) {
          w->Write("data: x\n\n");
          std::this_thread::sleep_for(20ms);
        }
        w->Finish();
      }));
    });
  });
  Client client(server->port());
  ASSERT_FALSE(client.Send(http::verb::post, "/stream", "{}"));
  ASSERT_TRUE(WaitFor([&] { return server->n_in_flight() == 1; }, 2000ms));

  Response response;
  beast::error_code read_ec;
  std::thread reader([&] { read_ec = client.Read(response); });
  const auto start = std::chrono::steady_clock::now();
  server->Stop(3000ms);
  const auto took = std::chrono::steady_clock::now() - start;
  reader.join();
  EXPECT_LT(took, 2500ms);
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_EQ(response.body().size(), 10 * std::string("data: x\n\n").size());
  EXPECT_EQ(n_closed.load(), 0);
  EXPECT_EQ(server->n_in_flight(), 0);  // exact: Stop() returned
  bag.JoinAll();
  server->Stop(0ms);  // idempotent
}

TEST(HttpServerTest, StopClosesAStreamThatOutlivesTheDeadline) {
  std::atomic<int> n_closed{0};
  std::shared_ptr<ResponseWriter> writer;
  std::mutex mu;
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("POST", "/stream", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->OnClose([&] { ++n_closed; });
      w->StartStream(200, "text/event-stream");
      w->Write("data: never ends\n\n");
      std::lock_guard<std::mutex> lock(mu);
      writer = w;
    });
    s.Route("GET", "/idle", [](const HttpRequest& r, auto w) { TextHandler("idle", r, w); });
  });
  Client client(server->port());
  Client idle_client(server->port());  // a keep-alive connection with no request in flight
  EXPECT_EQ(idle_client.Request(http::verb::get, "/idle").body(), "idle");
  ASSERT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
  ASSERT_FALSE(client.Send(http::verb::post, "/stream", "{}"));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return writer != nullptr;
      },
      2000ms));
  EXPECT_EQ(server->n_in_flight(), 1);

  const auto start = std::chrono::steady_clock::now();
  server->Stop(200ms);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(n_closed.load(), 1);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_NE(writer, nullptr);
    EXPECT_FALSE(writer->IsOpen());
    writer->Write("data: after stop\n\n");  // ignored, must not crash
    writer->Finish();
  }
  beast::error_code ec;
  std::string rest = client.ReadUntilEof(&ec);
  EXPECT_NE(ec, net::error::timed_out);
  EXPECT_EQ(rest.find("0\r\n\r\n"), std::string::npos) << "the stream must not look complete";
  beast::error_code idle_ec;
  idle_client.ReadUntilEof(&idle_ec);
  EXPECT_NE(idle_ec, net::error::timed_out);
  EXPECT_EQ(server->n_in_flight(), 0);
  // New connections are refused after Stop.
  EXPECT_THROW(Client late(server->port()), boost::system::system_error);
}

TEST(HttpServerTest, ManyConcurrentClients) {
  constexpr int kClients = 64;
  constexpr int kRequestsEach = 3;
  auto server = StartServer(TestOptions(), [](HttpServer& s) {
    s.Route("POST", "/echo", [](const HttpRequest& r, auto w) {
      w->Send(200, "application/json", r.body);
    });
  });
  std::atomic<int> n_ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Client client(server->port());
      for (int j = 0; j < kRequestsEach; ++j) {
        const std::string body = "client " + std::to_string(i) + " request " + std::to_string(j);
        Response response = client.Request(http::verb::post, "/echo", body);
        if (response.result_int() == 200 && response.body() == body) ++n_ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(n_ok.load(), kClients * kRequestsEach);
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
}

TEST(HttpServerTest, MalformedRequestsGet400WithoutCrashing) {
  auto server = StartServer(TestOptions(), [](HttpServer& s) {
    s.Route("GET", "/hello", [](const HttpRequest& r, auto w) { TextHandler("hi", r, w); });
  });
  for (const std::string& raw : {
           std::string("THIS IS NOT HTTP\r\n\r\n"),
           std::string("GET /hello HTTP/9.9\r\n\r\n"),
           std::string("GET /hello HTTP/1.1\r\nBad Header Without Colon\r\n\r\n"),
           std::string("POST /hello HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
           std::string("POST /hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
           std::string("\x01\x02\x03\xff\r\n\r\n", 8),
       }) {
    Client client(server->port());
    ASSERT_FALSE(client.WriteRaw(raw));
    beast::error_code ec;
    const std::string reply = client.ReadUntilEof(&ec);
    EXPECT_NE(ec, net::error::timed_out) << raw;
    EXPECT_EQ(reply.rfind("HTTP/1.1 400 ", 0), 0u) << raw << " -> " << reply;
    EXPECT_NE(reply.find("\"invalid_request_error\""), std::string::npos) << reply;
    EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  }
  {  // Headers past the limit: 431.
    Client client(server->port());
    ASSERT_FALSE(client.WriteRaw("GET /hello HTTP/1.1\r\nX-Big: " + std::string(64 * 1024, 'x') +
                                 "\r\n\r\n"));
    beast::error_code ec;
    const std::string reply = client.ReadUntilEof(&ec);
    EXPECT_EQ(reply.rfind("HTTP/1.1 431 ", 0), 0u) << reply.substr(0, 100);
  }
  Client client(server->port());
  EXPECT_EQ(client.Request(http::verb::get, "/hello").body(), "hi");
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
}

TEST(HttpServerTest, IdleKeepAliveConnectionTimesOut) {
  HttpServerOptions options = TestOptions();
  options.idle_timeout = std::chrono::seconds(1);
  auto server = StartServer(options, [](HttpServer& s) {
    s.Route("GET", "/hello", [](const HttpRequest& r, auto w) { TextHandler("hi", r, w); });
  });
  Client client(server->port());
  EXPECT_EQ(client.Request(http::verb::get, "/hello").body(), "hi");
  const auto start = std::chrono::steady_clock::now();
  beast::error_code ec;
  client.ReadUntilEof(&ec, 4000ms);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_NE(ec, net::error::timed_out);
  EXPECT_GE(took, 800ms);
  EXPECT_LT(took, 3000ms);
}

TEST(HttpServerTest, MisbehavingHandlers) {
  std::shared_ptr<ResponseWriter> saved;
  std::mutex mu;
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("GET", "/drop", [](const HttpRequest&, std::shared_ptr<ResponseWriter>) {});
    s.Route("GET", "/throw", [](const HttpRequest&, std::shared_ptr<ResponseWriter>) {
      throw std::runtime_error("boom");
    });
    s.Route("GET", "/twice", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->Send(200, "text/plain", "first");
      w->Send(500, "text/plain", "second");
      w->StartStream(200, "text/plain");
      w->Write("third");
      w->Finish();
    });
    s.Route("GET", "/keep", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->Send(200, "text/plain", "kept");
      std::lock_guard<std::mutex> lock(mu);
      saved = w;
    });
    s.Route("GET", "/next", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      {
        // A stale writer of the previous request on this connection must not leak into this one.
        std::lock_guard<std::mutex> lock(mu);
        saved->Send(200, "text/plain", "STALE");
        saved->StartStream(200, "text/plain");
        saved->Write("STALE");
      }
      w->Send(200, "text/plain", "next");
    });
    s.Route("GET", "/stream-dropped", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->StartStream(200, "text/plain");
      w->Write("partial");
    });
    s.Route("GET", "/bad-status", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->Send(42, "text/plain", "?");
    });
  });
  Client client(server->port());
  Response dropped = client.Request(http::verb::get, "/drop");
  EXPECT_EQ(dropped.result_int(), 500);
  EXPECT_EQ(ParseError(dropped)["error"]["type"], "server_error");
  Response threw = client.Request(http::verb::get, "/throw");
  EXPECT_EQ(threw.result_int(), 500);
  Response twice = client.Request(http::verb::get, "/twice");
  EXPECT_EQ(twice.result_int(), 200);
  EXPECT_EQ(twice.body(), "first");
  EXPECT_EQ(client.Request(http::verb::get, "/keep").body(), "kept");
  EXPECT_EQ(client.Request(http::verb::get, "/next").body(), "next");
  EXPECT_EQ(client.Request(http::verb::get, "/bad-status").result_int(), 500);
  EXPECT_EQ(client.Request(http::verb::get, "/next").body(), "next");
  {
    Response partial;
    ASSERT_FALSE(client.Send(http::verb::get, "/stream-dropped"));
    EXPECT_TRUE(client.Read(partial));  // truncated stream: the connection closes mid-body
  }
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
}

TEST(HttpServerTest, InFlightCountsPendingResponses) {
  std::shared_ptr<ResponseWriter> writer;
  std::mutex mu;
  auto server = StartServer(TestOptions(), [&](HttpServer& s) {
    s.Route("POST", "/later", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      std::lock_guard<std::mutex> lock(mu);
      writer = w;
    });
  });
  Client client(server->port());
  ASSERT_FALSE(client.Send(http::verb::post, "/later", "{}"));
  ASSERT_TRUE(WaitFor([&] { return server->n_in_flight() == 1; }, 2000ms));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(server->n_in_flight(), 1);
  {
    std::lock_guard<std::mutex> lock(mu);
    writer->Send(200, "text/plain", "done");
  }
  Response response;
  ASSERT_FALSE(client.Read(response));
  EXPECT_EQ(response.body(), "done");
  EXPECT_TRUE(WaitFor([&] { return server->n_in_flight() == 0; }, 2000ms));
}

TEST(HttpServerTest, Expect100ContinueAndHttp10) {
  auto server = StartServer(TestOptions(), [](HttpServer& s) {
    s.Route("POST", "/echo", [](const HttpRequest& r, auto w) { TextHandler(r.body, r, w); });
    s.Route("GET", "/hello", [](const HttpRequest& r, auto w) { TextHandler("hi", r, w); });
  });
  {
    Client client(server->port());
    ASSERT_FALSE(client.WriteRaw(
        "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
    const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
    EXPECT_EQ(client.ReadExactly(interim.size()), interim);
    ASSERT_FALSE(client.WriteRaw("hello"));
    Response response;
    ASSERT_FALSE(client.Read(response));
    EXPECT_EQ(response.body(), "hello");
  }
  {
    Client client(server->port());
    ASSERT_FALSE(client.WriteRaw("GET /hello HTTP/1.0\r\n\r\n"));
    beast::error_code ec;
    const std::string reply = client.ReadUntilEof(&ec);
    EXPECT_EQ(ec, net::error::eof);
    EXPECT_EQ(reply.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << reply;
    EXPECT_EQ(reply.substr(reply.size() - 2), "hi");
  }
}

TEST(HttpServerTest, StartReportsBadAddresses) {
  auto first = StartServer(TestOptions(), [](HttpServer&) {});
  HttpServerOptions same = TestOptions();
  same.port = first->port();
  HttpServer second(same);
  core::Status status = second.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(std::to_string(first->port())), std::string::npos)
      << status.ToString();

  HttpServerOptions bad_host = TestOptions();
  bad_host.host = "not a host name";
  HttpServer third(bad_host);
  status = third.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("not a host name"), std::string::npos) << status.ToString();

  HttpServerOptions bad_port = TestOptions();
  bad_port.port = 70000;
  HttpServer fourth(bad_port);
  EXPECT_FALSE(fourth.Start().ok());

  EXPECT_FALSE(first->Start().ok());  // already running
}

TEST(HttpServerTest, DestructorStopsARunningServerWithOpenStreams) {
  std::atomic<int> n_closed{0};
  std::shared_ptr<ResponseWriter> writer;
  std::mutex mu;
  int port = 0;
  std::unique_ptr<Client> client;
  {
    auto server = StartServer(TestOptions(), [&](HttpServer& s) {
      s.Route("POST", "/stream", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
        w->OnClose([&] { ++n_closed; });
        w->StartStream(200, "text/event-stream");
        std::lock_guard<std::mutex> lock(mu);
        writer = w;
      });
    });
    port = server->port();
    client = std::make_unique<Client>(port);
    ASSERT_FALSE(client->Send(http::verb::post, "/stream", "{}"));
    ASSERT_TRUE(WaitFor([&] { return server->n_in_flight() == 1; }, 2000ms));
  }
  EXPECT_EQ(n_closed.load(), 1);
  // The writer outlives the server: every call is a no-op.
  std::lock_guard<std::mutex> lock(mu);
  writer->Write("x");
  writer->Finish();
  writer->OnClose([] {});
  EXPECT_FALSE(writer->IsOpen());
}

}  // namespace
}  // namespace arle::server
