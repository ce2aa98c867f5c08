// Response bodies: exact JSON shapes of chat completions and chunks (logprobs, tool-call deltas,
// usage), legacy completions, the Responses API object and its event sequence, and the misc routes.
#include "arle/server/openai_response.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace arle::server {
namespace {

using Json = nlohmann::ordered_json;

ResponseMeta Meta(std::string id = "chatcmpl-1") {
  ResponseMeta m;
  m.id = std::move(id);
  m.created = 1700000000;
  m.model = "m";
  return m;
}

TokenLogprob Lp(std::string token, float lp, std::vector<std::pair<std::string, float>> top = {}) {
  TokenLogprob t;
  t.text = {token, token};
  t.logprob = lp;
  for (auto& [s, v] : top) t.top.push_back({TokenText{s, s}, v});
  return t;
}

TEST(OpenAiResponseTest, ChatCompletionExactShape) {
  ChatChoice c;
  c.index = 0;
  c.content = "Hi!";
  c.finish_reason = "stop";
  Usage u{5, 3, 2, 0};
  ResponseMeta meta = Meta();
  meta.system_fingerprint = "fp";
  const std::string got = ChatCompletionJson(meta, {c}, u);
  EXPECT_EQ(got,
            R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",)"
            R"("system_fingerprint":"fp","choices":[{"index":0,"message":{"role":"assistant",)"
            R"("content":"Hi!","refusal":null,"reasoning_content":null},"logprobs":null,)"
            R"("finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3,)"
            R"("total_tokens":8,"prompt_tokens_details":{"cached_tokens":2}}})");
}

TEST(OpenAiResponseTest, ChatCompletionToolCallsReasoningAndLogprobs) {
  ChatChoice c;
  c.index = 1;
  c.reasoning = "think";
  c.tool_calls.push_back({"call_0", "function", "get_weather", R"({"city":"Paris"})"});
  c.finish_reason = "tool_calls";
  c.logprobs = std::vector<TokenLogprob>{Lp("a", -0.1f, {{"a", -0.1f}, {"b", -2.5f}})};
  Json j = Json::parse(ChatCompletionJson(Meta(), {c}, Usage{}));
  const Json& choice = j["choices"][0];
  EXPECT_EQ(choice["index"], 1);
  EXPECT_TRUE(choice["message"]["content"].is_null());  // only tool calls: content is null
  EXPECT_EQ(choice["message"]["reasoning_content"], "think");
  EXPECT_EQ(choice["message"]["tool_calls"],
            Json::parse(R"([{"id":"call_0","type":"function","function":{"name":"get_weather",
                            "arguments":"{\"city\":\"Paris\"}"}}])"));
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  // Floats keep their shortest form (-0.1, not -0.10000000149011612).
  EXPECT_EQ(choice["logprobs"].dump(),
            R"({"content":[{"token":"a","logprob":-0.1,"bytes":[97],"top_logprobs":[)"
            R"({"token":"a","logprob":-0.1,"bytes":[97]},{"token":"b","logprob":-2.5,"bytes":[98]}]}],)"
            R"("refusal":null})");
}

TEST(OpenAiResponseTest, LogprobOfZeroProbabilityIsOpenAisSentinel) {
  ChatChoice c;
  c.logprobs = std::vector<TokenLogprob>{Lp("x", -std::numeric_limits<float>::infinity())};
  Json j = Json::parse(ChatCompletionJson(Meta(), {c}, Usage{}));
  EXPECT_EQ(j["choices"][0]["logprobs"]["content"][0]["logprob"], -9999.0);
}

TEST(OpenAiResponseTest, ChatChunks) {
  ChatChunkChoice role;
  role.role = true;
  EXPECT_EQ(ChatChunkJson(Meta(), role, false),
            R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m",)"
            R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,)"
            R"("finish_reason":null}]})");
  ChatChunkChoice content;
  content.index = 2;
  content.content = "x";
  EXPECT_EQ(Json::parse(ChatChunkJson(Meta(), content, true))["choices"][0]["delta"],
            Json::parse(R"({"content":"x"})"));
  EXPECT_TRUE(Json::parse(ChatChunkJson(Meta(), content, true))["usage"].is_null());
  EXPECT_FALSE(Json::parse(ChatChunkJson(Meta(), content, false)).contains("usage"));

  ChatChunkChoice reasoning;
  reasoning.reasoning = "r";
  EXPECT_EQ(Json::parse(ChatChunkJson(Meta(), reasoning, false))["choices"][0]["delta"],
            Json::parse(R"({"reasoning_content":"r"})"));

  ChatChunkChoice fin;
  fin.finish_reason = "length";
  Json f = Json::parse(ChatChunkJson(Meta(), fin, false));
  EXPECT_EQ(f["choices"][0]["delta"], Json::object());
  EXPECT_EQ(f["choices"][0]["finish_reason"], "length");

  EXPECT_EQ(ChatUsageChunkJson(Meta(), Usage{4, 6, 0, 0}),
            R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m",)"
            R"("choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10,)"
            R"("prompt_tokens_details":{"cached_tokens":0}}})");
}

TEST(OpenAiResponseTest, ToolCallDeltas) {
  runtime::OutputDelta start;
  start.kind = runtime::OutputDeltaKind::kToolCallStart;
  start.tool_index = 0;
  start.id = "call_7";
  start.name = "f";
  runtime::OutputDelta args;
  args.kind = runtime::OutputDeltaKind::kToolCallArguments;
  args.tool_index = 0;
  args.text = R"({"a":1})";
  runtime::OutputDelta end;
  end.kind = runtime::OutputDeltaKind::kToolCallEnd;
  end.tool_index = 0;

  ChatChunkChoice c1;
  c1.tool_calls = {start};
  EXPECT_EQ(Json::parse(ChatChunkJson(Meta(), c1, false))["choices"][0]["delta"].dump(),
            R"({"tool_calls":[{"index":0,"id":"call_7","type":"function",)"
            R"("function":{"name":"f","arguments":""}}]})");
  ChatChunkChoice c2;
  c2.tool_calls = {args, end};  // the end adds nothing
  EXPECT_EQ(Json::parse(ChatChunkJson(Meta(), c2, false))["choices"][0]["delta"].dump(),
            R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]})");
}

TEST(OpenAiResponseTest, CompletionLogprobsFormat) {
  CompletionLogprobs lp;
  int64_t offset = 3;  // after an echoed "abc"
  AppendCompletionLogprobs({Lp("x", -0.5f, {{"y", -0.25f}}), Lp(" é", -1.0f, {{" é", -1.0f}})}, &offset,
                           &lp);
  EXPECT_EQ(lp.tokens, (std::vector<std::string>{"x", " é"}));
  EXPECT_EQ(lp.text_offset, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(offset, 6);  // character offsets: " é" is 2 characters (3 bytes)
  // The sampled token is added to its top entry when it is not among the alternatives.
  ASSERT_EQ(lp.top_logprobs[0].size(), 2u);
  EXPECT_EQ(lp.top_logprobs[0][1], (std::pair<std::string, float>{"x", -0.5f}));
  EXPECT_EQ(lp.top_logprobs[1].size(), 1u);

  CompletionChoice c;
  c.text = "abcx é";
  c.finish_reason = "length";
  c.logprobs = lp;
  const std::string got = CompletionJson(Meta("cmpl-1"), {c}, Usage{1, 2, 0, 0});
  EXPECT_EQ(got,
            R"({"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",)"
            R"("choices":[{"index":0,"text":"abcx é","logprobs":{"tokens":["x"," é"],)"
            R"("token_logprobs":[-0.5,-1.0],"top_logprobs":[{"y":-0.25,"x":-0.5},{" é":-1.0}],)"
            R"("text_offset":[3,4]},"finish_reason":"length"}],"usage":{"prompt_tokens":1,)"
            R"("completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0}}})");
}

TEST(OpenAiResponseTest, CompletionChunks) {
  CompletionChoice c;
  c.index = 1;
  c.text = "t";
  EXPECT_EQ(CompletionChunkJson(Meta("cmpl-1"), c, true),
            R"({"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",)"
            R"("choices":[{"index":1,"text":"t","logprobs":null,"finish_reason":null}],"usage":null})");
  Json u = Json::parse(CompletionUsageChunkJson(Meta("cmpl-1"), Usage{1, 1, 0, 0}));
  EXPECT_EQ(u["choices"], Json::array());
  EXPECT_EQ(u["usage"]["total_tokens"], 2);
}

// Splits an SSE text into (event, data JSON) pairs.
std::vector<std::pair<std::string, Json>> ParseEvents(const std::string& sse) {
  std::vector<std::pair<std::string, Json>> out;
  std::istringstream in(sse);
  std::string line, event;
  while (std::getline(in, line)) {
    if (line.rfind("event: ", 0) == 0) event = line.substr(7);
    if (line.rfind("data: ", 0) == 0) out.emplace_back(event, Json::parse(line.substr(6)));
  }
  return out;
}

TEST(OpenAiResponseTest, ResponsesEventSequence) {
  ResponsesSettings settings;
  settings.instructions = "be nice";
  settings.max_output_tokens = 10;
  ResponsesBuilder b(Meta("resp_abc"), settings);
  std::string sse = b.Start();
  sse += b.ReasoningDelta("hm");
  sse += b.TextDelta("Hel");
  sse += b.TextDelta("lo");
  sse += b.Finish("stop", Usage{7, 5, 1, 2});
  auto events = ParseEvents(sse);
  std::vector<std::string> types;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].first, events[i].second["type"]);  // the SSE name is the type
    EXPECT_EQ(events[i].second["sequence_number"], i);
    types.push_back(events[i].first);
  }
  EXPECT_EQ(types, (std::vector<std::string>{
                       "response.created", "response.in_progress", "response.output_item.added",
                       "response.content_part.added", "response.reasoning_text.delta",
                       "response.reasoning_text.done", "response.content_part.done",
                       "response.output_item.done", "response.output_item.added",
                       "response.content_part.added", "response.output_text.delta",
                       "response.output_text.delta", "response.output_text.done",
                       "response.content_part.done", "response.output_item.done",
                       "response.completed"}));
  EXPECT_EQ(events[0].second["response"]["status"], "in_progress");
  EXPECT_EQ(events[0].second["response"]["output"], Json::array());
  const Json& delta = events[10].second;
  EXPECT_EQ(delta["item_id"], "msg_abc");
  EXPECT_EQ(delta["output_index"], 1);
  EXPECT_EQ(delta["content_index"], 0);
  EXPECT_EQ(delta["delta"], "Hel");
  EXPECT_EQ(events[12].second["text"], "Hello");

  const Json final_response = events.back().second["response"];
  EXPECT_EQ(final_response, Json::parse(b.ResponseJson()));
  EXPECT_EQ(final_response.dump(),
            R"({"id":"resp_abc","object":"response","created_at":1700000000,"status":"completed",)"
            R"("error":null,"incomplete_details":null,"instructions":"be nice","max_output_tokens":10,)"
            R"("model":"m","output":[{"id":"rs_abc","type":"reasoning","summary":[],"content":[)"
            R"({"type":"reasoning_text","text":"hm"}],"status":"completed"},{"id":"msg_abc",)"
            R"("type":"message","status":"completed","role":"assistant","content":[{"type":)"
            R"("output_text","text":"Hello","annotations":[],"logprobs":[]}]}],)"
            R"("parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,)"
            R"("summary":null},"store":false,"temperature":1.0,"text":{"format":{"type":"text"}},)"
            R"("tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{)"
            R"("input_tokens":7,"input_tokens_details":{"cached_tokens":1},"output_tokens":5,)"
            R"("output_tokens_details":{"reasoning_tokens":2},"total_tokens":12},"user":null,)"
            R"("metadata":{}})");
}

TEST(OpenAiResponseTest, ResponsesIncompleteAndEmptyAndAborted) {
  ResponsesBuilder b(Meta("resp_x"), ResponsesSettings{});
  (void)b.Start();
  auto events = ParseEvents(b.Finish("length", Usage{1, 0, 0, 0}));
  ASSERT_FALSE(events.empty());
  // An empty answer still has its message item, so clients find output[0].content[0].
  EXPECT_EQ(events.front().first, "response.output_item.added");
  EXPECT_EQ(events.back().first, "response.incomplete");
  Json r = Json::parse(b.ResponseJson());
  EXPECT_EQ(r["status"], "incomplete");
  EXPECT_EQ(r["incomplete_details"], Json::parse(R"({"reason":"max_output_tokens"})"));
  EXPECT_EQ(r["output"][0]["status"], "incomplete");
  EXPECT_EQ(r["output"][0]["content"][0]["text"], "");

  ResponsesBuilder a(Meta("resp_y"), ResponsesSettings{});
  (void)a.Start();
  (void)a.TextDelta("par");
  events = ParseEvents(a.Finish("abort", Usage{}));
  EXPECT_EQ(events.back().first, "response.failed");
  EXPECT_EQ(events.back().second["response"]["status"], "failed");
  EXPECT_EQ(events.back().second["response"]["error"]["code"], "server_error");
}

TEST(OpenAiResponseTest, MiscRoutes) {
  EXPECT_EQ(ModelsJson("m", 5, 512),
            R"({"object":"list","data":[{"id":"m","object":"model","created":5,"owned_by":"arle",)"
            R"("root":"m","parent":null,"max_model_len":512}]})");
  EXPECT_EQ(TokenizeJson({1, 2}, 100, nullptr),
            R"({"count":2,"max_model_len":100,"tokens":[1,2],"token_strs":null})");
  std::vector<std::string> strs = {"a", "b"};
  EXPECT_EQ(Json::parse(TokenizeJson({1, 2}, 100, &strs))["token_strs"], Json::parse(R"(["a","b"])"));
  EXPECT_EQ(DetokenizeJson("hi"), R"({"prompt":"hi"})");
  EXPECT_EQ(SseData("{}"), "data: {}\n\n");
  EXPECT_EQ(SseEvent("e", "{}"), "event: e\ndata: {}\n\n");
  const std::string id = RandomId("chatcmpl-");
  EXPECT_EQ(id.size(), 9u + 24u);
  EXPECT_NE(id, RandomId("chatcmpl-"));
}

}  // namespace
}  // namespace arle::server
