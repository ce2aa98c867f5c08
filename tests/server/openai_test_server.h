// Shared fixture of the OpenAiService tests: the real HttpServer and Engine on port 0 with a
// scripted fake model (it "types" a per-prompt script token by token, then EOS) over the Qwen3
// tokenizer, a Qwen-style test renderer, and a Beast client whose reads time out (so a server bug
// fails a test instead of hanging it).
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "arle/kv/block_pool.h"
#include "arle/models/model.h"
#include "arle/models/registry.h"
#include "arle/runtime/engine.h"
#include "arle/server/http_server.h"
#include "arle/server/openai_service.h"
#include "arle/tokenizer/tokenizer.h"
#include "tests/common/token_slot_model.h"
#include "tests/runtime/engine_test_util.h"

namespace arle::server::openai_test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Json = nlohmann::ordered_json;

inline constexpr auto kIoTimeout = std::chrono::seconds(10);

inline const tokenizer::Tokenizer& Tok() { return runtime::testing::TestTokenizer(); }

inline int32_t Id(const char* token) { return *Tok().TokenToId(token); }

// The scripts the fake model follows, by user message (shared with the test).
struct Scripts {
  std::mutex mu;
  std::map<std::string, std::string> by_user;
  std::string fallback = "Hello world";
  std::atomic<int> step_delay_ms{0};
  std::string Get(const std::string& user) {
    std::lock_guard lock(mu);
    auto it = by_user.find(user);
    return it == by_user.end() ? fallback : it->second;
  }
  void Set(const std::string& user, const std::string& script) {
    std::lock_guard lock(mu);
    by_user[user] = script;
  }
};

// The next token of a script after `generated` text: the first token of the rest's encoding, or
// EOS (<|im_end|>) when the script is done or was left.
inline int32_t NextScriptToken(const std::string& script, const std::string& generated) {
  if (generated.size() >= script.size() || script.compare(0, generated.size(), generated) != 0) {
    return Id("<|im_end|>");
  }
  tokenizer::EncodeOptions o;
  o.add_special_tokens = false;
  return Tok().Encode(std::string_view(script).substr(generated.size()), o).front();
}

// The tokens the fake model produces for a script (EOS included).
inline std::vector<int32_t> ScriptTokens(const std::string& script) {
  std::vector<int32_t> ids;
  std::string text;
  for (;;) {
    const int32_t id = NextScriptToken(script, text);
    ids.push_back(id);
    if (id == Id("<|im_end|>")) return ids;
    text += Tok().Decode(std::vector<int32_t>{id});
  }
}

// A test model that reads each sequence's history back through its block table (so paging bugs
// show), finds the user message and the text after "<|im_start|>assistant\n", and puts all the
// probability on the script's next token.
class ScriptedModel final : public arle::testing::TokenSlotModel {
 public:
  explicit ScriptedModel(std::shared_ptr<Scripts> scripts) : scripts_(std::move(scripts)) {}
  int32_t n_vocab() const override { return Tok().vocab_size(); }
  int64_t n_ctx_train() const override { return 512; }
  int64_t kv_bytes_per_block(core::DType) const override { return 256; }

 protected:
  void BeforeStep(std::span<const int32_t>, std::span<const models::StepSequence>) override {
    if (int ms = scripts_->step_delay_ms.load(); ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
  }
  void NextLogits(std::span<const int32_t> history, std::span<float> out) override {
    const std::string text = Tok().Decode(std::vector<int32_t>(history.begin(), history.end()));
    std::string user, generated;
    const std::string kUser = "<|im_start|>user\n", kAssistant = "<|im_start|>assistant\n";
    if (size_t u = text.rfind(kUser); u != std::string::npos) {
      const size_t begin = u + kUser.size();
      user = text.substr(begin, text.find("<|im_end|>", begin) - begin);
    }
    if (size_t a = text.rfind(kAssistant); a != std::string::npos) {
      generated = text.substr(a + kAssistant.size());
    }
    std::fill(out.begin(), out.end(), 0.0f);
    out[NextScriptToken(scripts_->Get(user), generated)] = 30.0f;
  }

 private:
  std::shared_ptr<Scripts> scripts_;
};

// What the renderer was last called with.
struct RenderLog {
  std::mutex mu;
  std::string tools_json;
  std::string kwargs_json;
  int n_calls = 0;
};

// A Qwen-style template: "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message, then the generation
// prompt; "<think>\n" after it when enable_thinking is true.
inline ChatRenderer MakeRenderer(std::shared_ptr<RenderLog> log) {
  return [log](std::string_view messages, std::string_view tools, bool add_generation_prompt,
               std::string_view kwargs) -> core::StatusOr<std::string> {
    {
      std::lock_guard lock(log->mu);
      log->tools_json = std::string(tools);
      log->kwargs_json = std::string(kwargs);
      ++log->n_calls;
    }
    std::string out;
    if (!tools.empty()) out += "<|im_start|>system\n# Tools\n" + std::string(tools) + "<|im_end|>\n";
    for (const Json& m : Json::parse(messages)) {
      if (m["content"] == "RAISE") return core::InvalidArgumentError("the template raised: bad turn");
      out += "<|im_start|>" + m["role"].get<std::string>() + "\n" + m["content"].get<std::string>() +
             "<|im_end|>\n";
    }
    if (add_generation_prompt) {
      out += "<|im_start|>assistant\n";
      if (Json::parse(kwargs).value("enable_thinking", false)) out += "<think>\n";
    }
    return out;
  };
}

inline std::string Str(beast::string_view s) { return std::string(s.data(), s.size()); }

// One client connection; every operation runs on a private io_context with a timeout.
class Client {
 public:
  explicit Client(int port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)));
  }

  void Send(http::verb method, const std::string& target, const std::string& body) {
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
    beast::error_code ec = Run([&](auto h) { http::async_write(socket_, request, h); });
    ASSERT_FALSE(ec) << "send: " << ec.message();
  }

  http::response<http::string_body> Request(http::verb method, const std::string& target,
                                            const std::string& body = "") {
    Send(method, target, body);
    http::response<http::string_body> response;
    beast::error_code ec = Run([&](auto h) { http::async_read(socket_, buffer_, response, h); });
    EXPECT_FALSE(ec) << "read: " << ec.message();
    return response;
  }

  // Streams: reads the header, then body pieces until `done(body so far)` or the end.
  void StartStream(const std::string& target, const std::string& body) {
    Send(http::verb::post, target, body);
    parser_.emplace();
    parser_->body_limit(64 << 20);
    beast::error_code ec = Run([&](auto h) { http::async_read_header(socket_, buffer_, *parser_, h); });
    ASSERT_FALSE(ec) << "read header: " << ec.message();
  }
  int stream_status() { return parser_->get().result_int(); }
  std::string stream_header(http::field f) { return Str(parser_->get()[f]); }
  // Returns the body read so far once `done` holds (or the stream ended / timed out).
  std::string ReadStreamUntil(const std::function<bool(const std::string&)>& done) {
    while (!parser_->is_done() && !done(parser_->get().body())) {
      beast::error_code ec = Run([&](auto h) { http::async_read_some(socket_, buffer_, *parser_, h); });
      if (ec) break;
    }
    return parser_->get().body();
  }
  std::string ReadStreamToEnd() {
    return ReadStreamUntil([](const std::string&) { return false; });
  }
  bool stream_complete() const { return parser_->is_done(); }

  void Close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  template <typename StartOp>
  beast::error_code Run(StartOp start) {
    beast::error_code result;
    bool done = false;
    start([&](beast::error_code ec, size_t) {
      result = ec;
      done = true;
    });
    ioc_.restart();
    ioc_.run_for(kIoTimeout);
    if (!done) {
      beast::error_code ignored;
      socket_.cancel(ignored);
      ioc_.restart();
      ioc_.run();
      return net::error::timed_out;
    }
    return result;
  }

  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
};

// The JSON payloads of an SSE body ("data: [DONE]" becomes the string "[DONE]").
// The data of every complete event line of an SSE body (a stream read so far may end inside a line,
// which is left for the next read).
inline std::vector<Json> SseData(const std::string& body) {
  std::vector<Json> out;
  std::istringstream in(body.substr(0, body.rfind('\n') + 1));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    const std::string data = line.substr(6);
    out.push_back(data == "[DONE]" ? Json("[DONE]") : Json::parse(data));
  }
  return out;
}

inline bool WaitFor(const std::function<bool()>& predicate,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

inline Json ChatBody(const std::string& user, const Json& extra = Json::object()) {
  Json j = {{"model", "test-model"},
            {"messages", Json::array({{{"role", "user"}, {"content", user}}})},
            {"temperature", 0}};
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j;
}

inline std::string Rendered(const std::string& user) {
  return "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
}

inline int64_t NTokens(const std::string& text) {
  tokenizer::EncodeOptions o;
  o.add_special_tokens = false;
  return static_cast<int64_t>(Tok().Encode(text, o).size());
}

inline const Json kWeatherTool = Json::parse(R"({"type":"function","function":{"name":"get_weather",
    "description":"Weather in a city","parameters":{"type":"object",
    "properties":{"city":{"type":"string"}},"required":["city"]}}})");
inline const std::string kToolCallScript =
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";

class OpenAiServiceTest : public ::testing::Test {
 protected:
  void Start(runtime::EngineOptions engine_options = {},
             models::ChatFormat chat_format = models::ChatFormatFor("Qwen3ForCausalLM")) {
    scripts_ = std::make_shared<Scripts>();
    render_log_ = std::make_shared<RenderLog>();
    engine_options.kv_cache_bytes = 1024 * 256;  // 1024 blocks of the fake's 256 bytes
    auto engine = runtime::Engine::Create(std::make_unique<ScriptedModel>(scripts_), Tok(), engine_options);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    OpenAiServiceOptions options;
    options.served_model_name = served_model_name_;
    options.chat_format = std::move(chat_format);
    options.default_stop.eos_token_ids = {Id("<|im_end|>")};
    options.render_chat = MakeRenderer(render_log_);
    options.retry_after_seconds = 2;
    service_ = std::make_unique<OpenAiService>(*engine_, options);
    HttpServerOptions http_options;
    http_options.port = 0;
    http_options.n_io_threads = 2;
    http_ = std::make_unique<HttpServer>(http_options);
    service_->RegisterRoutes(*http_);
    ASSERT_TRUE(http_->Start().ok());
  }

  void TearDown() override {
    if (http_) http_->Stop(std::chrono::seconds(2));
    engine_.reset();
    service_.reset();
  }

  int port() const { return http_->port(); }

  Json Post(const std::string& target, const Json& body, int expect_status = 200) {
    Client c(port());
    auto r = c.Request(http::verb::post, target, body.dump());
    EXPECT_EQ(r.result_int(), expect_status) << r.body();
    return Json::parse(r.body());
  }

  std::vector<Json> PostStream(const std::string& target, const Json& body) {
    Client c(port());
    c.StartStream(target, body.dump());
    EXPECT_EQ(c.stream_status(), 200);
    EXPECT_EQ(c.stream_header(http::field::content_type), "text/event-stream");
    std::string all = c.ReadStreamToEnd();
    EXPECT_TRUE(c.stream_complete()) << all;
    return SseData(all);
  }

  std::string Metrics() {
    Client c(port());
    return c.Request(http::verb::get, "/metrics").body();
  }

  bool EngineIdle() {
    runtime::EngineStats s = engine_->Stats();
    return s.n_running == 0 && s.n_waiting == 0 && s.kv_blocks_used == 0;
  }

  std::string served_model_name_ = "test-model";  // set before Start() for another name
  std::shared_ptr<Scripts> scripts_;
  std::shared_ptr<RenderLog> render_log_;
  std::unique_ptr<runtime::Engine> engine_;
  std::unique_ptr<OpenAiService> service_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace arle::server::openai_test
