// OpenAiService over a real engine and server, chat side: whole and streamed responses, usage,
// n > 1, logprobs, tool calls (auto, none, named, required), reasoning, stop strings.
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

TEST_F(OpenAiServiceTest, NonStreamedChat) {
  Start();
  Json r = Post("/v1/chat/completions", ChatBody("hi", {{"user", "alice"}}));
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["model"], "test-model");
  EXPECT_EQ(r["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  ASSERT_EQ(r["choices"].size(), 1u);
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r["choices"][0]["message"]["content"], "Hello world");
  EXPECT_TRUE(r["choices"][0]["message"]["reasoning_content"].is_null());
  EXPECT_FALSE(r["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(r["choices"][0]["logprobs"].is_null());
  const int64_t n_prompt = NTokens(Rendered("hi"));
  const auto n_gen = static_cast<int64_t>(ScriptTokens("Hello world").size());  // EOS included
  EXPECT_EQ(r["usage"]["prompt_tokens"], n_prompt);
  EXPECT_EQ(r["usage"]["completion_tokens"], n_gen);
  EXPECT_EQ(r["usage"]["total_tokens"], n_prompt + n_gen);
  EXPECT_TRUE(WaitFor([&] { return EngineIdle(); }));
}

TEST_F(OpenAiServiceTest, StreamedChatWithUsage) {
  Start();
  auto events = PostStream("/v1/chat/completions",
                           ChatBody("hi", {{"stream", true}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  const Json& first = events.front();
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], Json::parse(R"({"role":"assistant","content":""})"));
  std::string content;
  std::string finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const Json& e = events[i];
    EXPECT_EQ(e["id"], first["id"]);
    EXPECT_TRUE(e["usage"].is_null());  // include_usage: every chunk has "usage": null
    ASSERT_EQ(e["choices"].size(), 1u);
    if (i > 0) {
      EXPECT_FALSE(e["choices"][0]["delta"].contains("role"));
    }
    content += e["choices"][0]["delta"].value("content", "");
    if (!e["choices"][0]["finish_reason"].is_null()) {
      EXPECT_EQ(i + 3, events.size()) << "finish_reason only on the last choice chunk";
      finish = e["choices"][0]["finish_reason"];
    }
  }
  EXPECT_EQ(content, "Hello world");
  EXPECT_EQ(finish, "stop");
  const Json& usage_chunk = events[events.size() - 2];
  EXPECT_EQ(usage_chunk["choices"], Json::array());
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], NTokens(Rendered("hi")));
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], ScriptTokens("Hello world").size());
}

TEST_F(OpenAiServiceTest, NTwoSharesThePrompt) {
  Start();
  Json r = Post("/v1/chat/completions", ChatBody("hi", {{"n", 2}}));
  ASSERT_EQ(r["choices"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(r["choices"][i]["index"], i);
    EXPECT_EQ(r["choices"][i]["message"]["content"], "Hello world");
  }
  // The prompt counts once, the completions add up.
  EXPECT_EQ(r["usage"]["prompt_tokens"], NTokens(Rendered("hi")));
  EXPECT_EQ(r["usage"]["completion_tokens"], 2 * ScriptTokens("Hello world").size());

  auto events = PostStream("/v1/chat/completions", ChatBody("hi", {{"n", 2}, {"stream", true}}));
  std::string content[2];
  int finishes[2] = {0, 0};
  for (const Json& e : events) {
    if (e == "[DONE]") continue;
    const int idx = e["choices"][0]["index"];
    ASSERT_TRUE(idx == 0 || idx == 1);
    content[idx] += e["choices"][0]["delta"].value("content", "");
    finishes[idx] += !e["choices"][0]["finish_reason"].is_null();
  }
  EXPECT_EQ(content[0], "Hello world");
  EXPECT_EQ(content[1], "Hello world");
  EXPECT_EQ(finishes[0], 1);
  EXPECT_EQ(finishes[1], 1);
}

TEST_F(OpenAiServiceTest, ChatLogprobs) {
  Start();
  Json r = Post("/v1/chat/completions", ChatBody("hi", {{"logprobs", true}, {"top_logprobs", 2}}));
  const Json& content = r["choices"][0]["logprobs"]["content"];
  const std::vector<int32_t> ids = ScriptTokens("Hello world");
  ASSERT_EQ(content.size(), ids.size());
  std::string joined;
  for (size_t i = 0; i < ids.size(); ++i) {
    const Json& e = content[i];
    EXPECT_NEAR(e["logprob"].get<double>(), 0.0, 1e-4);  // the fake puts ~all mass on its token
    ASSERT_EQ(e["top_logprobs"].size(), 2u);
    EXPECT_EQ(e["top_logprobs"][0]["token"], e["token"]);
    EXPECT_LT(e["top_logprobs"][1]["logprob"].get<double>(), -25.0);
    std::string bytes;
    for (int b : e["bytes"]) bytes.push_back(static_cast<char>(b));
    EXPECT_EQ(bytes, e["token"].get<std::string>());
    joined += e["token"].get<std::string>();
  }
  EXPECT_EQ(joined, "Hello world<|im_end|>");  // the EOS token is reported too

  // Streamed: every token's entry arrives exactly once, attached to a chunk of its choice.
  auto events = PostStream("/v1/chat/completions",
                           ChatBody("hi", {{"stream", true}, {"logprobs", true}, {"top_logprobs", 1}}));
  std::string streamed;
  for (const Json& e : events) {
    if (e == "[DONE]" || e["choices"][0]["logprobs"].is_null()) continue;
    for (const Json& t : e["choices"][0]["logprobs"]["content"]) streamed += t["token"].get<std::string>();
  }
  EXPECT_EQ(streamed, "Hello world<|im_end|>");
}

TEST_F(OpenAiServiceTest, ToolCallsAuto) {
  Start();
  scripts_->Set("weather?", kToolCallScript);
  Json r = Post("/v1/chat/completions", ChatBody("weather?", {{"tools", Json::array({kWeatherTool})}}));
  {
    std::lock_guard lock(render_log_->mu);
    EXPECT_EQ(Json::parse(render_log_->tools_json), Json::array({kWeatherTool}));
  }
  const Json& msg = r["choices"][0]["message"];
  EXPECT_TRUE(msg["content"].is_null());
  ASSERT_EQ(msg["tool_calls"].size(), 1u);
  const Json& call = msg["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(call["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls");

  auto events = PostStream("/v1/chat/completions",
                           ChatBody("weather?", {{"tools", Json::array({kWeatherTool})}, {"stream", true}}));
  std::vector<Json> tool_deltas;
  std::string content, finish;
  for (const Json& e : events) {
    if (e == "[DONE]") continue;
    const Json& d = e["choices"][0]["delta"];
    if (d.contains("tool_calls")) {
      ASSERT_EQ(d["tool_calls"].size(), 1u);  // one tool-call delta per chunk
      tool_deltas.push_back(d["tool_calls"][0]);
    }
    content += d.value("content", "");
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  ASSERT_EQ(tool_deltas.size(), 2u);
  EXPECT_EQ(tool_deltas[0]["index"], 0);
  EXPECT_EQ(tool_deltas[0]["type"], "function");
  EXPECT_EQ(tool_deltas[0]["function"]["name"], "get_weather");
  EXPECT_EQ(tool_deltas[0]["function"]["arguments"], "");
  EXPECT_TRUE(tool_deltas[0].contains("id"));
  EXPECT_EQ(tool_deltas[1], Json::parse(R"({"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}})"));
  EXPECT_EQ(content, "");
  EXPECT_EQ(finish, "tool_calls");
}

TEST_F(OpenAiServiceTest, ToolChoiceNoneRendersNoToolsAndParsesNone) {
  Start();
  scripts_->Set("weather?", kToolCallScript);
  Json r = Post("/v1/chat/completions",
                ChatBody("weather?", {{"tools", Json::array({kWeatherTool})}, {"tool_choice", "none"}}));
  {
    std::lock_guard lock(render_log_->mu);
    EXPECT_EQ(render_log_->tools_json, "");
  }
  EXPECT_EQ(r["choices"][0]["message"]["content"], kToolCallScript);
  EXPECT_FALSE(r["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
}

TEST_F(OpenAiServiceTest, NamedToolChoiceForcesTheCall) {
  Start();
  // The model would chat; the forced prefix makes it continue the named call instead.
  scripts_->Set("weather?", kToolCallScript);
  const Json named = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  Json r = Post("/v1/chat/completions",
                ChatBody("weather?", {{"tools", Json::array({kWeatherTool})}, {"tool_choice", named}}));
  const Json& msg = r["choices"][0]["message"];
  ASSERT_EQ(msg["tool_calls"].size(), 1u) << r.dump();
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_TRUE(msg["content"].is_null());  // the forced text is never content
  // Only the generated tokens count (the forced prefix is prompt).
  const std::string forced = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": ";
  EXPECT_EQ(r["usage"]["prompt_tokens"],
            NTokens("<|im_start|>system\n# Tools\n" + Json::array({kWeatherTool}).dump() +
                    "<|im_end|>\n" + Rendered("weather?") + forced));

  // "required" forces "<tool_call>\n".
  r = Post("/v1/chat/completions",
           ChatBody("weather?", {{"tools", Json::array({kWeatherTool})}, {"tool_choice", "required"}}));
  ASSERT_EQ(r["choices"][0]["message"]["tool_calls"].size(), 1u) << r.dump();
  EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls");
}

TEST_F(OpenAiServiceTest, ToolsNeedAToolParser) {
  Start(/*engine_options=*/{}, models::ChatFormat{});  // plain: no tool calls
  Json e = Post("/v1/chat/completions", ChatBody("weather?", {{"tools", Json::array({kWeatherTool})}}),
                400);
  EXPECT_EQ(e["error"]["param"], "tools");
  // With tool_choice none the tools are not rendered, so nothing is ignored.
  (void)Post("/v1/chat/completions",
             ChatBody("weather?", {{"tools", Json::array({kWeatherTool})}, {"tool_choice", "none"}}));
}

TEST_F(OpenAiServiceTest, ReasoningContent) {
  Start();
  scripts_->Set("think", "<think>\nhmm, easy\n</think>\n\nThe answer.");
  Json r = Post("/v1/chat/completions", ChatBody("think"));
  EXPECT_EQ(r["choices"][0]["message"]["reasoning_content"], "hmm, easy");
  EXPECT_EQ(r["choices"][0]["message"]["content"], "The answer.");

  auto events = PostStream("/v1/chat/completions", ChatBody("think", {{"stream", true}}));
  std::string reasoning, content;
  for (const Json& e : events) {
    if (e == "[DONE]") continue;
    reasoning += e["choices"][0]["delta"].value("reasoning_content", "");
    content += e["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(reasoning, "hmm, easy");
  EXPECT_EQ(content, "The answer.");

  // A prompt that opens the reasoning block (enable_thinking in the template) starts inside it.
  // (The fake reads the prompt's "<think>\n" as the start of its script.)
  scripts_->Set("open", "<think>\nshort\n</think>\n\nDone.");
  r = Post("/v1/chat/completions", ChatBody("open", {{"enable_thinking", true}}));
  {
    std::lock_guard lock(render_log_->mu);
    EXPECT_EQ(Json::parse(render_log_->kwargs_json), Json::parse(R"({"enable_thinking":true})"));
  }
  EXPECT_EQ(r["choices"][0]["message"]["reasoning_content"], "short");
  EXPECT_EQ(r["choices"][0]["message"]["content"], "Done.");
}

TEST_F(OpenAiServiceTest, StopStringsAndMaxTokens) {
  Start();
  Json r = Post("/v1/chat/completions", ChatBody("hi", {{"stop", "world"}}));
  EXPECT_EQ(r["choices"][0]["message"]["content"], "Hello ");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  r = Post("/v1/chat/completions", ChatBody("hi", {{"max_completion_tokens", 1}}));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["completion_tokens"], 1);
  // stop_token_ids stop even under ignore_eos.
  const int32_t first = ScriptTokens("Hello world")[0];
  r = Post("/v1/chat/completions", ChatBody("hi", {{"stop_token_ids", {first}}, {"ignore_eos", true}}));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["usage"]["completion_tokens"], 1);
}

}  // namespace
}  // namespace arle::server
