// OpenAiService over a real engine and server, the other routes and the request lifecycle:
// completions, the Responses API, errors, cancellation on disconnect, queue full, shutdown, metrics
// and the misc routes.
#include <gtest/gtest.h>

#include "tests/server/openai_test_server.h"

namespace arle::server {
namespace {

using namespace std::chrono_literals;  // NOLINT(build/namespaces): test durations
using openai_test::ChatBody;
using openai_test::Client;
using openai_test::Id;
using openai_test::Json;
using openai_test::kToolCallScript;
using openai_test::kWeatherTool;
using openai_test::NTokens;
using openai_test::OpenAiServiceTest;
using openai_test::Rendered;
using openai_test::ScriptTokens;
using openai_test::SseData;
using openai_test::Str;
using openai_test::Tok;
using openai_test::WaitFor;
namespace http = boost::beast::http;

TEST_F(OpenAiServiceTest, Completions) {
  Start();
  const std::string prompt = Rendered("hi");
  Json r = Post("/v1/completions", {{"model", "test-model"}, {"prompt", prompt}, {"max_tokens", 50},
                                    {"logprobs", 1}, {"temperature", 0}});
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  const Json& c = r["choices"][0];
  EXPECT_EQ(c["text"], "Hello world");
  EXPECT_EQ(c["finish_reason"], "stop");
  const std::vector<int32_t> ids = ScriptTokens("Hello world");
  ASSERT_EQ(c["logprobs"]["tokens"].size(), ids.size());
  ASSERT_EQ(c["logprobs"]["token_logprobs"].size(), ids.size());
  ASSERT_EQ(c["logprobs"]["top_logprobs"].size(), ids.size());
  EXPECT_EQ(c["logprobs"]["text_offset"][0], 0);
  EXPECT_EQ(c["logprobs"]["text_offset"][1], c["logprobs"]["tokens"][0].get<std::string>().size());
  EXPECT_EQ(r["usage"]["prompt_tokens"], NTokens(prompt));

  // Echo, two prompts and n = 2: choices are prompt-major.
  scripts_->Set("other", "Bye");
  r = Post("/v1/completions", {{"model", "test-model"},
                               {"prompt", {prompt, Rendered("other")}},
                               {"n", 2},
                               {"echo", true},
                               {"temperature", 0}});
  ASSERT_EQ(r["choices"].size(), 4u);
  EXPECT_EQ(r["choices"][0]["text"], prompt + "Hello world");
  EXPECT_EQ(r["choices"][1]["text"], prompt + "Hello world");
  EXPECT_EQ(r["choices"][2]["text"], Rendered("other") + "Bye");
  EXPECT_EQ(r["choices"][3]["index"], 3);
  EXPECT_EQ(r["usage"]["prompt_tokens"], NTokens(prompt) + NTokens(Rendered("other")));

  // Token-id prompts; echo decodes them.
  tokenizer::EncodeOptions o;
  o.add_special_tokens = false;
  const std::vector<int32_t> ids2 = Tok().Encode(Rendered("other"), o);
  r = Post("/v1/completions",
           {{"model", "test-model"}, {"prompt", Json::array({Json(ids2)})}, {"echo", true}});
  ASSERT_EQ(r["choices"].size(), 1u);
  EXPECT_EQ(r["choices"][0]["text"], Rendered("other") + "Bye");
  EXPECT_EQ(r["usage"]["prompt_tokens"], ids2.size());

  auto events = PostStream("/v1/completions", {{"model", "test-model"}, {"prompt", prompt}, {"stream", true},
                                               {"echo", true}, {"stream_options", {{"include_usage", true}}}});
  std::string text;
  for (const Json& e : events) {
    if (e == "[DONE]" || e["choices"].empty()) continue;
    text += e["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, prompt + "Hello world");
  EXPECT_EQ(events[events.size() - 2]["usage"]["completion_tokens"], ids.size());
}

// echo + logprobs (how lm-evaluation-harness scores text through an API): the prompt's tokens
// come back with their log-probs, the first one null, then the generated ones; max_tokens 0
// returns the prompt's alone.
TEST_F(OpenAiServiceTest, CompletionsEchoWithPromptLogprobs) {
  Start();
  const std::string prompt = Rendered("hi");
  tokenizer::EncodeOptions o;
  o.add_special_tokens = false;
  const std::vector<int32_t> prompt_ids = Tok().Encode(prompt, o);
  ASSERT_GE(prompt_ids.size(), 3u);
  for (const bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "stream" : "whole");
    const Json body = {{"model", "test-model"}, {"prompt", prompt_ids}, {"echo", true},
                       {"logprobs", 2},         {"max_tokens", 0},      {"stream", stream}};
    Json lp;
    std::string text;
    if (stream) {
      lp = {{"tokens", Json::array()},
            {"token_logprobs", Json::array()},
            {"top_logprobs", Json::array()},
            {"text_offset", Json::array()}};
      for (const Json& e : PostStream("/v1/completions", body)) {
        if (e == "[DONE]" || e["choices"].empty()) continue;
        text += e["choices"][0]["text"].get<std::string>();
        const Json& d = e["choices"][0]["logprobs"];
        if (d.is_null()) continue;
        for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
          for (const Json& v : d[k]) lp[k].push_back(v);
        }
      }
    } else {
      const Json r = Post("/v1/completions", body);
      EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
      EXPECT_EQ(r["usage"]["completion_tokens"], 0);
      text = r["choices"][0]["text"];
      lp = r["choices"][0]["logprobs"];
    }
    EXPECT_EQ(text, prompt);
    ASSERT_EQ(lp["tokens"].size(), prompt_ids.size());
    EXPECT_TRUE(lp["token_logprobs"][0].is_null());
    EXPECT_TRUE(lp["top_logprobs"][0].is_null());
    EXPECT_EQ(lp["text_offset"][0], 0);
    for (size_t i = 1; i < prompt_ids.size(); ++i) {
      const double v = lp["token_logprobs"][i].get<double>();
      EXPECT_LE(v, 0.0);
      // The top alternatives (2) plus the token itself when it is not among them.
      const Json& top = lp["top_logprobs"][i];
      EXPECT_GE(top.size(), 2u);
      EXPECT_LE(top.size(), 3u);
      EXPECT_EQ(top[lp["tokens"][i].get<std::string>()].get<double>(), v);
    }
  }
  // With generation: the prompt's entries, then the generated tokens'.
  const Json r = Post("/v1/completions", {{"model", "test-model"},
                                          {"prompt", prompt_ids},
                                          {"echo", true},
                                          {"logprobs", 0},
                                          {"temperature", 0}});
  const size_t n_gen = r["usage"]["completion_tokens"].get<size_t>();
  EXPECT_GT(n_gen, 0u);
  EXPECT_EQ(r["choices"][0]["logprobs"]["tokens"].size(), prompt_ids.size() + n_gen);
  // max_tokens 0 needs echo with logprobs.
  Post("/v1/completions", {{"model", "test-model"}, {"prompt", prompt_ids}, {"max_tokens", 0}},
       400);
}

// return_token_ids (vLLM): the exact prompt and generated ids, whole and streamed, so a client
// can continue on the same tokens. Absent unless asked for.
TEST_F(OpenAiServiceTest, CompletionsReturnTokenIds) {
  Start();
  const std::string prompt = Rendered("hi");
  tokenizer::EncodeOptions o;
  o.add_special_tokens = false;
  const std::vector<int32_t> prompt_ids = Tok().Encode(prompt, o);
  const std::vector<int32_t> ids = ScriptTokens("Hello world");

  Json r = Post("/v1/completions", {{"model", "test-model"}, {"prompt", prompt_ids}});
  EXPECT_FALSE(r["choices"][0].contains("token_ids"));
  EXPECT_FALSE(r["choices"][0].contains("prompt_token_ids"));

  r = Post("/v1/completions", {{"model", "test-model"}, {"prompt", prompt_ids}, {"n", 2},
                               {"max_tokens", 50}, {"return_token_ids", true}});
  ASSERT_EQ(r["choices"].size(), 2u);
  for (const Json& c : r["choices"]) {
    EXPECT_EQ(c["prompt_token_ids"].get<std::vector<int32_t>>(), prompt_ids);
    // The script ends with EOS, which is generated (and counted) but is not text.
    std::vector<int32_t> got = c["token_ids"].get<std::vector<int32_t>>();
    ASSERT_GE(got.size(), ids.size());
    EXPECT_EQ(std::vector<int32_t>(got.begin(), got.begin() + static_cast<long>(ids.size())), ids);
    EXPECT_EQ(static_cast<int64_t>(got.size()) * 2, r["usage"]["completion_tokens"].get<int64_t>());
  }

  auto events = PostStream("/v1/completions", {{"model", "test-model"}, {"prompt", prompt},
                                               {"stream", true}, {"max_tokens", 50},
                                               {"return_token_ids", true},
                                               {"stream_options", {{"include_usage", true}}}});
  std::vector<int32_t> streamed;
  int prompt_id_chunks = 0;
  for (const Json& e : events) {
    if (e == "[DONE]" || e["choices"].empty()) continue;
    const Json& c = e["choices"][0];
    if (c.contains("prompt_token_ids")) {
      ++prompt_id_chunks;
      EXPECT_EQ(c["prompt_token_ids"].get<std::vector<int32_t>>(), prompt_ids);
    }
    for (const Json& id : c["token_ids"]) streamed.push_back(id.get<int32_t>());
  }
  EXPECT_EQ(prompt_id_chunks, 1);
  EXPECT_EQ(static_cast<int64_t>(streamed.size()),
            events[events.size() - 2]["usage"]["completion_tokens"].get<int64_t>());
  ASSERT_GE(streamed.size(), ids.size());
  EXPECT_EQ(std::vector<int32_t>(streamed.begin(), streamed.begin() + static_cast<long>(ids.size())),
            ids);

  Json bad = Post("/v1/completions",
                  {{"model", "test-model"}, {"prompt", prompt}, {"return_token_ids", "yes"}}, 400);
  EXPECT_EQ(bad["error"]["param"], "return_token_ids");
}

TEST_F(OpenAiServiceTest, ResponsesApi) {
  Start();
  Json r = Post("/v1/responses", {{"model", "test-model"}, {"input", "hi"}, {"temperature", 0}});
  EXPECT_EQ(r["object"], "response");
  EXPECT_EQ(r["status"], "completed");
  ASSERT_EQ(r["output"].size(), 1u);
  EXPECT_EQ(r["output"][0]["type"], "message");
  EXPECT_EQ(r["output"][0]["content"][0]["text"], "Hello world");
  EXPECT_EQ(r["usage"]["input_tokens"], NTokens(Rendered("hi")));
  EXPECT_EQ(r["usage"]["output_tokens"], ScriptTokens("Hello world").size());

  r = Post("/v1/responses", {{"model", "test-model"}, {"input", "hi"}, {"max_output_tokens", 1}});
  EXPECT_EQ(r["status"], "incomplete");
  EXPECT_EQ(r["incomplete_details"]["reason"], "max_output_tokens");

  Client c(port());
  c.StartStream("/v1/responses",
                Json({{"model", "test-model"}, {"input", "hi"}, {"stream", true}}).dump());
  const std::string body = c.ReadStreamToEnd();
  std::vector<Json> events = SseData(body);
  ASSERT_GE(events.size(), 8u);
  EXPECT_EQ(events.front()["type"], "response.created");
  EXPECT_EQ(events.back()["type"], "response.completed");
  std::string text;
  for (const Json& e : events) {
    if (e["type"] == "response.output_text.delta") text += e["delta"].get<std::string>();
  }
  EXPECT_EQ(text, "Hello world");
  EXPECT_EQ(events.back()["response"]["output"][0]["content"][0]["text"], "Hello world");
  EXPECT_EQ(body.find("[DONE]"), std::string::npos);  // the Responses API sends no [DONE]
}

TEST_F(OpenAiServiceTest, ErrorsThroughTheServer) {
  Start();
  Json e = Post("/v1/chat/completions", ChatBody("hi", {{"model", "gpt-4o"}}), 404);
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  EXPECT_EQ(e["error"]["param"], "model");
  e = Post("/v1/chat/completions", ChatBody("hi", {{"top_p", 7}}), 400);
  EXPECT_EQ(e["error"]["param"], "top_p");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  // A template error is the client's (400), naming messages.
  e = Post("/v1/chat/completions", ChatBody("RAISE"), 400);
  EXPECT_EQ(e["error"]["param"], "messages");
  EXPECT_NE(e["error"]["message"].get<std::string>().find("bad turn"), std::string::npos);
  // Context: the fake's context is 512 tokens.
  std::vector<int32_t> long_prompt(600, 33);
  e = Post("/v1/completions", {{"model", "test-model"}, {"prompt", long_prompt}}, 400);
  EXPECT_EQ(e["error"]["code"], "context_length_exceeded");
  EXPECT_NE(e["error"]["message"].get<std::string>().find("512"), std::string::npos);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("600"), std::string::npos);
  e = Post("/v1/completions",
           {{"model", "test-model"}, {"prompt", std::vector<int32_t>(100, 33)}, {"max_tokens", 500}}, 400);
  EXPECT_EQ(e["error"]["param"], "max_tokens");
  EXPECT_NE(e["error"]["message"].get<std::string>().find("600 tokens (100 in the prompt, 500 in the "
                                                          "completion)"),
            std::string::npos)
      << e.dump();
  Client c(port());
  auto raw = c.Request(http::verb::post, "/v1/chat/completions", "{not json");
  EXPECT_EQ(raw.result_int(), 400);
  // Every failure was counted.
  const std::string m = Metrics();
  EXPECT_NE(m.find("arle_requests_total{status=\"404\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("arle_requests_total{status=\"400\"} 5"), std::string::npos) << m;
}

TEST_F(OpenAiServiceTest, DisconnectCancelsStreamedAndWholeRequests) {
  Start();
  scripts_->step_delay_ms = 5;
  std::string long_script;
  for (int i = 0; i < 200; ++i) long_script += "word ";
  scripts_->Set("long", long_script);
  {
    Client c(port());
    c.StartStream("/v1/chat/completions", ChatBody("long", {{"stream", true}}).dump());
    c.ReadStreamUntil([](const std::string& body) { return SseData(body).size() >= 4; });
    EXPECT_FALSE(c.stream_complete());
    ASSERT_TRUE(WaitFor([&] { return engine_->Stats().n_running == 1; }));
    c.Close();
  }
  // The request is cancelled at once (long before its ~1 s script ends), its blocks back.
  EXPECT_TRUE(WaitFor([&] { return EngineIdle(); }, 500ms));
  {
    Client c(port());
    c.Send(http::verb::post, "/v1/chat/completions", ChatBody("long").dump());
    ASSERT_TRUE(WaitFor([&] { return engine_->Stats().n_running == 1; }));
    c.Close();
  }
  EXPECT_TRUE(WaitFor([&] { return EngineIdle(); }, 500ms));
  EXPECT_TRUE(WaitFor([&] { return service_->n_active() == 0; }));
  const std::string m = Metrics();
  EXPECT_NE(m.find("arle_requests_total{status=\"499\"} 2"), std::string::npos) << m;
  EXPECT_NE(m.find("arle_request_finish_total{finish_reason=\"abort\"} 2"), std::string::npos) << m;
  EXPECT_NE(m.find("arle_kv_blocks_used 0\n"), std::string::npos) << m;
}

TEST_F(OpenAiServiceTest, QueueFullIs503WithRetryAfter) {
  runtime::EngineOptions options;
  options.max_seqs = 1;
  options.max_batch_tokens = 64;
  options.max_queue = 1;
  Start(options);
  scripts_->step_delay_ms = 5;
  std::string long_script;
  for (int i = 0; i < 100; ++i) long_script += "word ";
  scripts_->Set("long", long_script);
  Client running(port());
  running.StartStream("/v1/chat/completions", ChatBody("long", {{"stream", true}}).dump());
  running.ReadStreamUntil([](const std::string& body) { return SseData(body).size() >= 2; });
  ASSERT_TRUE(WaitFor([&] { return engine_->Stats().n_running == 1; }));
  Client waiting(port());
  waiting.Send(http::verb::post, "/v1/chat/completions", ChatBody("long").dump());
  // Both requests are in the service, one running and one queued (Stats() is a snapshot taken
  // after each step, so wait for one that shows both).
  ASSERT_TRUE(WaitFor([&] {
    const runtime::EngineStats st = engine_->Stats();
    return service_->n_active() == 2 && st.n_running == 1 && st.n_waiting == 1;
  }));
  Client rejected(port());
  auto r = rejected.Request(http::verb::post, "/v1/chat/completions", ChatBody("hi").dump());
  EXPECT_EQ(r.result_int(), 503) << r.body();
  EXPECT_EQ(Str(r[http::field::retry_after]), "2");
  EXPECT_NE(r.body().find("queue is full"), std::string::npos) << r.body();
  running.Close();
  waiting.Close();
  EXPECT_TRUE(WaitFor([&] { return EngineIdle(); }));
}

TEST_F(OpenAiServiceTest, CancelAllEndsStreamsCleanly) {
  Start();
  scripts_->step_delay_ms = 5;
  std::string long_script;
  for (int i = 0; i < 200; ++i) long_script += "word ";
  scripts_->Set("long", long_script);
  Client c(port());
  c.StartStream("/v1/chat/completions", ChatBody("long", {{"stream", true}}).dump());
  c.ReadStreamUntil([](const std::string& body) { return SseData(body).size() >= 3; });
  service_->StopAccepting();
  service_->CancelAll();
  const std::string body = c.ReadStreamToEnd();
  EXPECT_TRUE(c.stream_complete());
  std::vector<Json> events = SseData(body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(events[events.size() - 2]["choices"][0]["finish_reason"], "abort");
  // New work is refused while shutting down; /health says so for load balancers.
  Json e = Post("/v1/chat/completions", ChatBody("hi"), 503);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("shutting down"), std::string::npos);
  Client h(port());
  EXPECT_EQ(h.Request(http::verb::get, "/health").result_int(), 503);
}

TEST_F(OpenAiServiceTest, MiscRoutes) {
  Start();
  Client c(port());
  auto health = c.Request(http::verb::get, "/health");
  EXPECT_EQ(health.result_int(), 200);
  Json models = Json::parse(c.Request(http::verb::get, "/v1/models").body());
  EXPECT_EQ(models["data"][0]["id"], "test-model");
  EXPECT_EQ(models["data"][0]["max_model_len"], 512);

  Json t = Post("/tokenize", {{"prompt", "Hello world"}});
  EXPECT_EQ(t["count"], 2);
  EXPECT_EQ(t["max_model_len"], 512);
  Json d = Post("/detokenize", {{"tokens", t["tokens"]}});
  EXPECT_EQ(d["prompt"], "Hello world");
  t = Post("/tokenize", {{"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})},
                         {"return_token_strs", true}});
  EXPECT_EQ(t["count"], NTokens(Rendered("hi")));
  EXPECT_EQ(t["token_strs"][0], "<|im_start|>");

  (void)Post("/v1/chat/completions", ChatBody("hi"));
  // The engine publishes its counters after the step that finished the request.
  ASSERT_TRUE(WaitFor([&] { return EngineIdle(); }));
  auto metrics = c.Request(http::verb::get, "/metrics");
  EXPECT_EQ(metrics.result_int(), 200);
  EXPECT_EQ(Str(metrics[http::field::content_type]), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& m = metrics.body();
  for (const char* name :
       {"arle_requests_total{status=\"200\"} 1", "arle_prompt_tokens_total ",
        "arle_generation_tokens_total ", "arle_time_to_first_token_seconds_count 1",
        "arle_inter_token_latency_seconds_bucket", "arle_e2e_request_latency_seconds_count 1",
        "arle_num_requests_waiting 0", "arle_num_requests_running 0", "arle_kv_blocks_used 0",
        "arle_kv_blocks_total 1024", "arle_prefix_cache_queries_total ",
        "arle_prefix_cache_hits_total ", "arle_preemptions_total 0"}) {
    EXPECT_NE(m.find(name), std::string::npos) << name << "\n" << m;
  }
  Json stats = Json::parse(c.Request(http::verb::get, "/v1/stats").body());
  EXPECT_EQ(stats["requests_total"]["200"], 1);
  EXPECT_EQ(stats["generation_tokens_total"], ScriptTokens("Hello world").size());
  EXPECT_EQ(stats["kv_blocks_total"], 1024);
}

TEST_F(OpenAiServiceTest, RetrieveOneModel) {
  served_model_name_ = "org/test-model";  // ids may contain '/'
  Start();
  Client c(port());
  // As is (Python's client) or percent-encoded (the openai npm client), either case of hex.
  for (const char* target :
       {"/v1/models/org/test-model", "/v1/models/org%2Ftest-model", "/v1/models/org%2ftest%2Dmodel"}) {
    SCOPED_TRACE(target);
    auto r = c.Request(http::verb::get, target);
    ASSERT_EQ(r.result_int(), 200) << r.body();
    const Json model = Json::parse(r.body());
    EXPECT_EQ(model["id"], "org/test-model");
    EXPECT_EQ(model["object"], "model");
    EXPECT_EQ(model["owned_by"], "arle");
    EXPECT_EQ(model["max_model_len"], 512);
    EXPECT_EQ(model, Json::parse(c.Request(http::verb::get, "/v1/models").body())["data"][0]);
  }
  auto missing = c.Request(http::verb::get, "/v1/models/gpt-4o%2Dmini");
  EXPECT_EQ(missing.result_int(), 404);
  Json e = Json::parse(missing.body());
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(e["error"]["param"].is_null());
  EXPECT_NE(e["error"]["message"].get<std::string>().find("`gpt-4o-mini`"), std::string::npos)
      << e.dump();
  // An empty id or a malformed escape is no model route at all; other methods are 405.
  EXPECT_EQ(c.Request(http::verb::get, "/v1/models/").result_int(), 404);
  EXPECT_EQ(c.Request(http::verb::get, "/v1/models/%zz").result_int(), 404);
  EXPECT_EQ(c.Request(http::verb::delete_, "/v1/models/org/test-model").result_int(), 405);
}

}  // namespace
}  // namespace arle::server
