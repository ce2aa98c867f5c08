// Tests for the server's routing table (literal paths, {name} and {name...} parameters, decoding,
// 405), for ParseHttpRequest (the connection's parser over a byte string) and for
// ResponseWriter::Post on a real server.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <gtest/gtest.h>

#include "arle/server/http_parse.h"
#include "arle/server/http_router.h"
#include "arle/server/http_server.h"

namespace arle::server::http_internal {
namespace {

using namespace std::chrono_literals;

Router::Entry Named(std::string name) {
  return {[name](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { w->Send(200, "text/plain", name); },
          true};
}

// The name a matched entry was registered with: call its handler on a recording writer.
class Recorder final : public ResponseWriter {
 public:
  void Send(int, std::string, std::string body, std::vector<std::pair<std::string, std::string>>) override {
    sent = std::move(body);
  }
  void StartStream(int, std::string) override {}
  void Write(std::string) override {}
  void Finish() override {}
  bool IsOpen() const override { return true; }
  void OnClose(std::function<void()>) override {}
  std::string sent;
};

std::string NameOf(const Router::Match& m) {
  if (!m.entry) return "";
  auto r = std::make_shared<Recorder>();
  m.entry->handler(HttpRequest{}, r);
  return r->sent;
}

TEST(RouterTest, LiteralsParametersAndRest) {
  Router router;
  router.Add("GET", "/v1/models", Named("list"));
  router.Add("GET", "/v1/models/special", Named("special"));
  router.Add("GET", "/v1/models/{id...}", Named("model"));
  router.Add("DELETE", "/v1/models/{id...}", Named("delete"));
  router.Add("GET", "/a/{x}/b/{y}", Named("xy"));

  EXPECT_EQ(NameOf(router.Find("GET", "/v1/models")), "list");
  // A literal path beats a pattern that also matches it.
  EXPECT_EQ(NameOf(router.Find("GET", "/v1/models/special")), "special");
  Router::Match m = router.Find("GET", "/v1/models/Qwen/Qwen3-0.6B");
  EXPECT_EQ(NameOf(m), "model");
  EXPECT_EQ(m.params.at("id"), "Qwen/Qwen3-0.6B");
  m = router.Find("GET", "/v1/models/Qwen%2FQwen3-0.6B");
  EXPECT_EQ(m.params.at("id"), "Qwen/Qwen3-0.6B");
  m = router.Find("DELETE", "/v1/models/x%20y+z");
  EXPECT_EQ(NameOf(m), "delete");
  EXPECT_EQ(m.params.at("id"), "x y+z");
  m = router.Find("GET", "/a/1%2f2/b/3");
  EXPECT_EQ(NameOf(m), "xy");
  EXPECT_EQ(m.params.at("x"), "1/2");
  EXPECT_EQ(m.params.at("y"), "3");

  // No match: an empty parameter, a segment too many or too few, a bad escape.
  for (const char* path : {"/v1/models/", "/a//b/3", "/a/1/b/3/4", "/a/1/b", "/a/1/b/", "/v1/models/%zz",
                           "/v1/models/%4", "/a/%/b/1", "/", "", "v1/models/x"}) {
    SCOPED_TRACE(path);
    m = router.Find("GET", path);
    EXPECT_EQ(m.entry, nullptr);
    EXPECT_EQ(m.allow, "");
  }
  // The path exists with other methods: 405 material.
  m = router.Find("POST", "/v1/models/x");
  EXPECT_EQ(m.entry, nullptr);
  EXPECT_EQ(m.allow, "DELETE, GET");
  m = router.Find("POST", "/v1/models");
  EXPECT_EQ(m.allow, "GET");
}

TEST(RouterDeathTest, BadPatternsAreBugs) {
  Router router;
  router.Add("GET", "/x/{id}", Named("x"));
  EXPECT_DEATH(router.Add("GET", "/x/{id}", Named("again")), "registered twice");
  EXPECT_DEATH(router.Add("GET", "/y/{rest...}/z", Named("y")), "last segment");
  EXPECT_DEATH(router.Add("GET", "/y/a{id}", Named("y")), "whole segment");
  EXPECT_DEATH(router.Add("GET", "/y/{a}/{a}", Named("y")), "used twice");
  EXPECT_DEATH(router.Add("GET", "y", Named("y")), "start with");
}

TEST(PercentDecodeTest, Escapes) {
  std::string out;
  ASSERT_TRUE(PercentDecode("a%2Fb%2fc%41%7e+", &out));
  EXPECT_EQ(out, "a/b/cA~+");
  ASSERT_TRUE(PercentDecode("%00", &out));
  EXPECT_EQ(out, std::string(1, '\0'));
  EXPECT_FALSE(PercentDecode("%", &out));
  EXPECT_FALSE(PercentDecode("%a", &out));
  EXPECT_FALSE(PercentDecode("%g0", &out));
}

TEST(ParseHttpRequestTest, RequestsAndTheirErrors) {
  const std::string_view rest = "GET /health HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string two =
      "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n"
      "Content-Length: 4\r\n\r\nbody" + std::string(rest);
  ParsedHttpRequest p = ParseHttpRequest(two, 1024);
  ASSERT_TRUE(p.request.has_value()) << p.error_message;
  EXPECT_EQ(p.request->method, "POST");
  EXPECT_EQ(p.request->target, "/v1/chat/completions?x=1");
  EXPECT_EQ(p.request->path, "/v1/chat/completions");
  EXPECT_EQ(p.request->headers.at("x-a"), "1, 2");
  EXPECT_EQ(p.request->body, "body");
  EXPECT_TRUE(p.keep_alive);
  EXPECT_EQ(p.consumed, two.size() - rest.size());
  p = ParseHttpRequest(rest, 1024);
  ASSERT_TRUE(p.request.has_value());
  EXPECT_EQ(p.request->path, "/health");
  EXPECT_EQ(p.consumed, rest.size());

  p = ParseHttpRequest("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 1024);
  ASSERT_TRUE(p.request.has_value());
  EXPECT_FALSE(p.keep_alive);
  p = ParseHttpRequest("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1024);
  ASSERT_TRUE(p.request.has_value()) << p.error_message;
  EXPECT_EQ(p.request->body, "abc");

  // What a connection answers before closing.
  p = ParseHttpRequest("POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", 1024);
  EXPECT_EQ(p.error_status, 413);
  p = ParseHttpRequest("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
                           std::string(2048, 'x') + "\r\n0\r\n\r\n",
                       1024);
  EXPECT_EQ(p.error_status, 413);
  p = ParseHttpRequest("GET / HTTP/1.1\r\nX: " + std::string(kHeaderLimit, 'y') + "\r\n\r\n", 1024);
  EXPECT_EQ(p.error_status, 431);
  p = ParseHttpRequest("GET / HTTP/9.9\r\n\r\n", 1024);
  EXPECT_EQ(p.error_status, 400);
  p = ParseHttpRequest("NOT HTTP AT ALL\r\n\r\n", 1024);
  EXPECT_EQ(p.error_status, 400);
  // The bytes end inside a request: the connection closes without answering.
  for (std::string_view cut : {"", "GET / HT", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"}) {
    p = ParseHttpRequest(cut, 1024);
    EXPECT_FALSE(p.request.has_value()) << cut;
    EXPECT_EQ(p.error_status, 0) << cut;
  }
}

// A real server: Post() runs tasks on an I/O thread, in order and one at a time, while the
// server runs; inline once it has stopped. Path parameters reach the handler.
TEST(ResponseWriterPostTest, RunsOnTheStrandInOrderThenInline) {
  namespace net = boost::asio;
  std::mutex mu;
  std::shared_ptr<ResponseWriter> writer;
  HttpRequest seen;
  HttpServerOptions options;
  options.port = 0;
  options.n_io_threads = 2;
  HttpServer server(options);
  server.Route("GET", "/items/{id...}", [&](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    std::lock_guard lock(mu);
    seen = r;
    writer = std::move(w);
  });
  ASSERT_TRUE(server.Start().ok());

  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server.port())});
  const std::string request = "GET /items/a%2Fb/c HTTP/1.1\r\nHost: h\r\n\r\n";
  net::write(socket, net::buffer(request));
  ASSERT_TRUE([&] {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard lock(mu);
        if (writer) return true;
      }
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }());
  EXPECT_EQ(seen.path_params.at("id"), "a/b/c");

  constexpr int kTasks = 200;
  std::mutex order_mu;  // the socket read below orders nothing as far as TSan can see
  std::vector<int> order;
  std::atomic<int> running{0};
  std::atomic<bool> overlap{false}, on_caller{false};
  const std::thread::id caller = std::this_thread::get_id();
  for (int i = 0; i < kTasks; ++i) {
    writer->Post([&, i] {
      if (running.fetch_add(1) != 0) overlap = true;
      if (std::this_thread::get_id() == caller) on_caller = true;
      {
        std::lock_guard lock(order_mu);
        order.push_back(i);
      }
      running.fetch_sub(1);
      if (i == kTasks - 1) writer->Send(200, "text/plain", "done");
    });
  }
  net::streambuf response;
  boost::system::error_code ec;
  net::read_until(socket, response, "done", ec);
  EXPECT_FALSE(ec) << ec.message();
  std::lock_guard lock(order_mu);
  ASSERT_EQ(order.size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
  EXPECT_FALSE(overlap.load());
  EXPECT_FALSE(on_caller.load());

  server.Stop(0ms);
  bool ran = false;
  writer->Post([&] { ran = std::this_thread::get_id() == caller; });
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace arle::server::http_internal
