// Request parsing for the OpenAI routes: every accepted parameter lands in the request, and every
// bad one is an error with the right HTTP status and `param`.
#include "arle/server/openai_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "arle/models/registry.h"

namespace arle::server {
namespace {

using Json = nlohmann::ordered_json;

ParseContext Ctx() {
  ParseContext c;
  c.served_model_name = "m";
  c.n_vocab = 1000;
  return c;
}

// A chat body with `extra` merged in.
std::string Chat(const Json& extra = Json::object()) {
  Json j = {{"model", "m"}, {"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})}};
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j.dump();
}

std::string Completion(const Json& extra = Json::object()) {
  Json j = {{"model", "m"}, {"prompt", "hi"}};
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j.dump();
}

template <typename T>
void ExpectError(const ApiOr<T>& r, int status, const std::string& param,
                 const std::string& message_part = "") {
  ASSERT_FALSE(r.ok()) << "expected an error naming '" << param << "'";
  EXPECT_EQ(r.error().status, status) << r.error().message;
  EXPECT_EQ(r.error().param, param) << r.error().message;
  if (!message_part.empty()) {
    EXPECT_NE(r.error().message.find(message_part), std::string::npos) << r.error().message;
  }
}

TEST(OpenAiRequestTest, ChatMinimalDefaults) {
  auto r = ParseChatRequest(Chat(), Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->params.n, 1);
  EXPECT_FALSE(r->params.stream);
  EXPECT_FALSE(r->params.max_tokens.has_value());
  EXPECT_FLOAT_EQ(r->params.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r->params.sampling.top_p, 1.0f);
  EXPECT_EQ(r->tool_choice, ToolChoice::kAuto);
  EXPECT_TRUE(r->tools_json.empty());
  EXPECT_EQ(r->template_kwargs_json, "{}");
  EXPECT_EQ(r->messages_json, R"([{"role":"user","content":"hi"}])");
}

TEST(OpenAiRequestTest, ChatEveryParameterIsApplied) {
  Json extra = {{"max_tokens", 7},
                {"temperature", 0.5},
                {"top_p", 0.9},
                {"top_k", 40},
                {"min_p", 0.05},
                {"presence_penalty", 0.5},
                {"frequency_penalty", -0.5},
                {"repetition_penalty", 1.1},
                {"seed", -1},
                {"stop", {"a", "bc"}},
                {"stop_token_ids", {5, 6}},
                {"n", 3},
                {"logprobs", true},
                {"top_logprobs", 4},
                {"logit_bias", {{"17", -100}, {"18", 2.5}}},
                {"ignore_eos", true},
                {"stream", true},
                {"stream_options", {{"include_usage", true}}},
                {"user", "u1"},
                {"chat_template_kwargs", {{"foo", 1}, {"enable_thinking", true}}},
                {"enable_thinking", false},
                {"response_format", {{"type", "text"}}},
                {"parallel_tool_calls", true},
                {"store", false}};
  auto r = ParseChatRequest(Chat(extra), Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const GenerationParams& p = r->params;
  EXPECT_EQ(p.max_tokens, 7);
  EXPECT_FLOAT_EQ(p.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(p.sampling.top_p, 0.9f);
  EXPECT_EQ(p.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(p.sampling.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(p.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(p.sampling.repetition_penalty, 1.1f);
  ASSERT_TRUE(p.sampling.seed.has_value());
  EXPECT_EQ(*p.sampling.seed, ~uint64_t{0});  // -1's two's-complement bits
  EXPECT_EQ(p.stop_strings, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(p.n, 3);
  EXPECT_TRUE(r->logprobs);
  EXPECT_TRUE(p.sampling.logprobs);
  EXPECT_EQ(p.sampling.top_logprobs, 4);
  ASSERT_EQ(p.sampling.logit_bias.size(), 2u);
  EXPECT_EQ(p.sampling.logit_bias[0], (std::pair<int32_t, float>{17, -100.0f}));
  EXPECT_EQ(p.sampling.logit_bias[1], (std::pair<int32_t, float>{18, 2.5f}));
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
  EXPECT_EQ(p.user, "u1");
  // The top-level enable_thinking wins over chat_template_kwargs'.
  EXPECT_EQ(Json::parse(r->template_kwargs_json), Json::parse(R"({"foo":1,"enable_thinking":false})"));
}

TEST(OpenAiRequestTest, MaxCompletionTokensWinsOverMaxTokens) {
  auto r = ParseChatRequest(Chat({{"max_tokens", 7}, {"max_completion_tokens", 9}}), Ctx());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->params.max_tokens, 9);
  // Integral decimals are integers (pydantic's lax mode).
  auto d = ParseChatRequest(Chat({{"max_tokens", 5.0}}), Ctx());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->params.max_tokens, 5);
}

TEST(OpenAiRequestTest, NullMeansNotGiven) {
  auto r = ParseChatRequest(Chat({{"temperature", nullptr}, {"stop", nullptr},
                                  {"functions", nullptr}, {"tools", nullptr}}),
                            Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FLOAT_EQ(r->params.sampling.temperature, 1.0f);
}

TEST(OpenAiRequestTest, StopAsString) {
  auto r = ParseChatRequest(Chat({{"stop", "\n\n"}}), Ctx());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->params.stop_strings, std::vector<std::string>{"\n\n"});
}

TEST(OpenAiRequestTest, MalformedJsonAndNonObjectBodies) {
  ExpectError(ParseChatRequest("{\"model\":", Ctx()), 400, "", "could not parse the JSON body");
  ExpectError(ParseChatRequest("[1,2]", Ctx()), 400, "", "must be a JSON object");
  ExpectError(ParseChatRequest("", Ctx()), 400, "", "could not parse");
  // Invalid UTF-8 inside a string is malformed JSON too.
  ExpectError(ParseChatRequest("{\"model\":\"m\xff\"}", Ctx()), 400, "");
  // A number beyond double's range is malformed JSON (nlohmann's out_of_range.406), not a 500.
  ExpectError(ParseChatRequest("1" + std::string(400, '2'), Ctx()), 400, "", "number overflow");
  ExpectError(ParseCompletionRequest(R"({"model":"m","prompt":"x","temperature":1e400})", Ctx()), 400,
              "", "could not parse");
}

TEST(OpenAiRequestTest, ModelMustBeTheServedOne) {
  auto r = ParseChatRequest(Chat({{"model", "gpt-4"}}), Ctx());
  ExpectError(r, 404, "model", "gpt-4");
  EXPECT_EQ(r.error().code, "model_not_found");
  ExpectError(ParseChatRequest(R"({"messages":[{"role":"user","content":"x"}]})", Ctx()), 400,
              "model", "Missing required parameter");
  ExpectError(ParseChatRequest(Chat({{"model", 3}}), Ctx()), 400, "model", "expected a string");
}

TEST(OpenAiRequestTest, WrongTypesNameTheParameter) {
  const std::pair<const char*, Json> cases[] = {
      {"temperature", "hot"},     {"top_p", true},         {"top_k", 1.5},
      {"min_p", "0"},             {"presence_penalty", Json::object()}, {"frequency_penalty", "1"},
      {"repetition_penalty", "1"}, {"seed", 0.5},          {"n", "2"},
      {"max_tokens", "10"},       {"max_completion_tokens", 1.5},
      {"logprobs", 1},            {"top_logprobs", "2"},   {"logit_bias", {1, 2}},
      {"ignore_eos", "yes"},      {"stream", 1},           {"stop", 5},
      {"stop_token_ids", "1"},    {"user", 5},             {"chat_template_kwargs", "x"},
      {"enable_thinking", "no"},  {"tools", "x"},          {"tool_choice", 5},
      {"response_format", "text"}, {"parallel_tool_calls", "yes"}};
  for (const auto& [param, value] : cases) {
    SCOPED_TRACE(param);
    ExpectError(ParseChatRequest(Chat({{param, value}}), Ctx()), 400, param);
  }
}

TEST(OpenAiRequestTest, OutOfRangeValuesNameTheParameter) {
  const std::pair<const char*, Json> cases[] = {
      {"temperature", -0.1}, {"top_p", 0},          {"top_p", 1.01},   {"top_k", -2},
      {"min_p", 1.5},        {"presence_penalty", 2.5}, {"frequency_penalty", -3},
      {"repetition_penalty", 0}, {"n", 0},          {"n", 17},         {"max_tokens", 0},
      {"max_completion_tokens", -5}, {"top_logprobs", 21}};
  for (const auto& [param, value] : cases) {
    SCOPED_TRACE(std::string(param) + "=" + value.dump());
    Json extra = {{param, value}};
    if (std::string(param) == "top_logprobs") extra["logprobs"] = true;
    ExpectError(ParseChatRequest(Chat(extra), Ctx()), 400, param);
  }
  ExpectError(ParseChatRequest(Chat({{"logit_bias", {{"5", 101}}}}), Ctx()), 400, "logit_bias",
              "[-100, 100]");
  ExpectError(ParseChatRequest(Chat({{"logit_bias", {{"1000", 1}}}}), Ctx()), 400, "logit_bias",
              "outside the vocabulary");
  ExpectError(ParseChatRequest(Chat({{"logit_bias", {{"x1", 1}}}}), Ctx()), 400, "logit_bias",
              "not a token id");
  ExpectError(ParseChatRequest(Chat({{"logit_bias", {{"1", "a"}}}}), Ctx()), 400, "logit_bias.1");
  ExpectError(ParseChatRequest(Chat({{"stop_token_ids", {1, 1000}}}), Ctx()), 400, "stop_token_ids");
  ExpectError(ParseChatRequest(Chat({{"stop", {"a", ""}}}), Ctx()), 400, "stop", "empty");
  ExpectError(ParseChatRequest(Chat({{"stop", {"a", 1}}}), Ctx()), 400, "stop[1]");
}

TEST(OpenAiRequestTest, RangesAreSamplingParamsValidateNamedByTheApi) {
  // The message is SamplingParams::Validate's; `param` is the API's name for the field.
  ExpectError(ParseChatRequest(Chat({{"top_p", 1.5}}), Ctx()), 400, "top_p",
              "top_p must be in (0, 1], got 1.5");
  ExpectError(ParseCompletionRequest(Completion({{"logprobs", 21}}), Ctx()), 400, "logprobs",
              "Invalid value for 'logprobs': top_logprobs must be in [0, 20], got 21");
  ExpectError(ParseResponsesRequest(R"({"model":"m","input":"x","temperature":-1})", Ctx()), 400,
              "temperature", "temperature must be >= 0");
  // 1e300 is no float: it becomes inf, which the range refuses.
  ExpectError(ParseChatRequest(Chat({{"temperature", 1e300}}), Ctx()), 400, "temperature");
  ExpectError(ParseChatRequest(Chat({{"logit_bias", {{"5", 1e300}}}}), Ctx()), 400, "logit_bias");
  // Values that do not fit the runtime's integer types are named, not wrapped.
  ExpectError(ParseChatRequest(Chat({{"top_k", 1e12}}), Ctx()), 400, "top_k", "out of range");
  ExpectError(ParseChatRequest(Chat({{"logprobs", true}, {"top_logprobs", -4294967295}}), Ctx()),
              400, "top_logprobs", "out of range");
  ExpectError(ParseChatRequest(Chat({{"logit_bias", {{"4294967301", 1}}}}), Ctx()), 400,
              "logit_bias", "not a token id");
  // Large top_k is fine: larger than the vocabulary means off.
  auto r = ParseChatRequest(Chat({{"top_k", 2147483647}}), Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->params.sampling.top_k, 2147483647);
}

TEST(OpenAiRequestTest, TopLogprobsNeedsLogprobs) {
  ExpectError(ParseChatRequest(Chat({{"top_logprobs", 2}}), Ctx()), 400, "top_logprobs",
              "'logprobs' must be set to true");
  auto r = ParseChatRequest(Chat({{"top_logprobs", 0}}), Ctx());
  EXPECT_TRUE(r.ok());
}

TEST(OpenAiRequestTest, StreamOptionsNeedStream) {
  ExpectError(ParseChatRequest(Chat({{"stream_options", {{"include_usage", true}}}}), Ctx()), 400,
              "stream_options");
  ExpectError(ParseChatRequest(Chat({{"stream", true}, {"stream_options", {{"bogus", true}}}}), Ctx()),
              400, "stream_options.bogus");
  ExpectError(
      ParseChatRequest(Chat({{"stream", true}, {"stream_options", {{"include_usage", 1}}}}), Ctx()),
      400, "stream_options.include_usage");
}

TEST(OpenAiRequestTest, UnknownAndUnsupportedParametersAreRejectedByName) {
  ExpectError(ParseChatRequest(Chat({{"frobnicate", 1}}), Ctx()), 400, "frobnicate",
              "Unrecognized request argument supplied: frobnicate");
  // Unknown even when null: a typo must not pass silently.
  ExpectError(ParseChatRequest(Chat({{"temprature", nullptr}}), Ctx()), 400, "temprature");
  ExpectError(ParseChatRequest(Chat({{"response_format", {{"type", "json_object"}}}}), Ctx()), 400,
              "response_format", "not supported");
  ExpectError(ParseChatRequest(Chat({{"functions", Json::array({Json::object()})}}), Ctx()), 400,
              "functions");
  ExpectError(ParseChatRequest(Chat({{"function_call", "auto"}}), Ctx()), 400, "function_call");
  ExpectError(ParseChatRequest(Chat({{"parallel_tool_calls", false}}), Ctx()), 400,
              "parallel_tool_calls");
  ExpectError(ParseChatRequest(Chat({{"store", true}}), Ctx()), 400, "store");
  ExpectError(ParseChatRequest(Chat({{"metadata", {{"a", "b"}}}}), Ctx()), 400, "metadata");
  // Completions-only parameters are unknown on chat.
  ExpectError(ParseChatRequest(Chat({{"echo", true}}), Ctx()), 400, "echo");
  ExpectError(ParseChatRequest(Chat({{"chat_template_kwargs", {{"messages", Json::array()}}}}), Ctx()),
              400, "chat_template_kwargs.messages");
  ExpectError(ParseChatRequest(Chat({{"suffix", "x"}}), Ctx()), 400, "suffix");
}

TEST(OpenAiRequestTest, MessagesAreNormalizedForTheTemplate) {
  Json messages = Json::parse(R"([
    {"role": "developer", "content": "be brief"},
    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    {"role": "assistant", "content": null, "reasoning_content": "r",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "42"}
  ])");
  auto r = ParseChatRequest(Chat({{"messages", messages}}), Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  Json expected = Json::parse(R"([
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "a\nb"},
    {"role": "assistant", "content": "", "reasoning_content": "r",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "42"}
  ])");
  EXPECT_EQ(Json::parse(r->messages_json), expected);
  // Key order is kept (templates that iterate over a message see the client's order).
  EXPECT_LT(r->messages_json.find("reasoning_content"), r->messages_json.find("tool_calls"));
}

TEST(OpenAiRequestTest, BadMessagesNameTheField) {
  auto with = [](const char* messages_json) {
    return ParseChatRequest(Chat({{"messages", Json::parse(messages_json)}}), Ctx());
  };
  ExpectError(with("[]"), 400, "messages", "empty array");
  ExpectError(with(R"({"role":"user"})"), 400, "messages");
  ExpectError(with(R"(["hi"])"), 400, "messages[0]");
  ExpectError(with(R"([{"content":"x"}])"), 400, "messages[0].role", "Missing required");
  ExpectError(with(R"([{"role":"robot","content":"x"}])"), 400, "messages[0].role", "robot");
  ExpectError(with(R"([{"role":"user"}])"), 400, "messages[0].content", "Missing required");
  ExpectError(with(R"([{"role":"user","content":5}])"), 400, "messages[0].content");
  ExpectError(with(R"([{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}])"),
              400, "messages[0].content[0].type", "image_url");
  ExpectError(with(R"([{"role":"user","content":[{"type":"text"}]}])"), 400,
              "messages[0].content[0].text");
  ExpectError(with(R"([{"role":"tool","content":"x"}])"), 400, "messages[0].tool_call_id");
  ExpectError(with(R"([{"role":"user","content":"x","tool_calls":[]}])"), 400,
              "messages[0].tool_calls");
  ExpectError(with(R"([{"role":"assistant","content":"x","tool_calls":[{"type":"function"}]}])"),
              400, "messages[0].tool_calls[0].function");
  ExpectError(
      with(R"([{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}])"),
      400, "messages[0].tool_calls[0].function.arguments");
  ExpectError(with(R"([{"role":"user","content":"x","name":5}])"), 400, "messages[0].name");
}

TEST(OpenAiRequestTest, ToolsAndToolChoice) {
  const Json tools = Json::parse(R"([{"type":"function","function":{"name":"get_weather",
      "description":"d","parameters":{"type":"object","properties":{}}}}])");
  auto r = ParseChatRequest(Chat({{"tools", tools}}), Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Json::parse(r->tools_json), tools);
  EXPECT_EQ(r->tool_choice, ToolChoice::kAuto);

  r = ParseChatRequest(Chat({{"tools", tools}, {"tool_choice", "none"}}), Ctx());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tool_choice, ToolChoice::kNone);
  r = ParseChatRequest(Chat({{"tools", tools}, {"tool_choice", "required"}}), Ctx());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tool_choice, ToolChoice::kRequired);
  r = ParseChatRequest(
      Chat({{"tools", tools},
            {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}}),
      Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tool_choice, ToolChoice::kNamed);
  EXPECT_EQ(r->tool_choice_name, "get_weather");

  ExpectError(ParseChatRequest(Chat({{"tools", tools},
                                     {"tool_choice",
                                      {{"type", "function"}, {"function", {{"name", "nope"}}}}}}),
                               Ctx()),
              400, "tool_choice", "nope");
  ExpectError(ParseChatRequest(Chat({{"tools", tools}, {"tool_choice", "sometimes"}}), Ctx()), 400,
              "tool_choice");
  ExpectError(ParseChatRequest(Chat({{"tool_choice", "required"}}), Ctx()), 400, "tool_choice",
              "only allowed when 'tools' are specified");
  EXPECT_TRUE(ParseChatRequest(Chat({{"tool_choice", "none"}}), Ctx()).ok());
  ExpectError(ParseChatRequest(Chat({{"tools", Json::parse(R"([{"type":"retrieval"}])")}}), Ctx()),
              400, "tools[0].type");
  ExpectError(ParseChatRequest(Chat({{"tools", Json::parse(R"([{"type":"function"}])")}}), Ctx()), 400,
              "tools[0].function");
  ExpectError(ParseChatRequest(Chat({{"tools", Json::parse(
                                                   R"([{"type":"function","function":{"name":""}}])")}}),
                               Ctx()),
              400, "tools[0].function.name");
  ExpectError(
      ParseChatRequest(Chat({{"tools", Json::parse(R"([{"type":"function","function":{"name":"f",
          "parameters":"x"}}])")}}),
                       Ctx()),
      400, "tools[0].function.parameters");
}

TEST(OpenAiRequestTest, ForcedToolPrefixes) {
  // Qwen3's opener comes from the family registry, not from the server.
  const std::string open = models::ChatFormatFor("Qwen3ForCausalLM").tool_call_open;
  ASSERT_EQ(open, "<tool_call>");
  EXPECT_EQ(ForcedToolPrefix(ToolChoice::kAuto, "", open), "");
  EXPECT_EQ(ForcedToolPrefix(ToolChoice::kNone, "", open), "");
  EXPECT_EQ(ForcedToolPrefix(ToolChoice::kRequired, "", open), "<tool_call>\n");
  EXPECT_EQ(ForcedToolPrefix(ToolChoice::kNamed, "get_weather", open),
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": ");
  // The name is JSON-escaped.
  EXPECT_EQ(ForcedToolPrefix(ToolChoice::kNamed, "a\"b", open),
            "<tool_call>\n{\"name\": \"a\\\"b\", \"arguments\": ");
  // Another format's opener is used as given.
  EXPECT_EQ(ForcedToolPrefix(ToolChoice::kRequired, "", "[TOOL_CALLS]"), "[TOOL_CALLS]\n");
}

TEST(OpenAiRequestTest, CompletionPromptForms) {
  auto r = ParseCompletionRequest(Completion(), Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->prompts.size(), 1u);
  EXPECT_FALSE(r->prompts[0].is_tokens);
  EXPECT_EQ(r->prompts[0].text, "hi");
  EXPECT_EQ(r->params.max_tokens, 16);  // OpenAI's legacy default

  r = ParseCompletionRequest(Completion({{"prompt", {"a", "b"}}}), Ctx());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->prompts.size(), 2u);
  EXPECT_EQ(r->prompts[1].text, "b");

  r = ParseCompletionRequest(Completion({{"prompt", {1, 2, 3}}}), Ctx());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->prompts.size(), 1u);
  EXPECT_TRUE(r->prompts[0].is_tokens);
  EXPECT_EQ(r->prompts[0].tokens, (std::vector<int32_t>{1, 2, 3}));

  r = ParseCompletionRequest(Completion({{"prompt", Json::parse("[[1,2],[3]]")}}), Ctx());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->prompts.size(), 2u);
  EXPECT_EQ(r->prompts[1].tokens, std::vector<int32_t>{3});

  ExpectError(ParseCompletionRequest(R"({"model":"m"})", Ctx()), 400, "prompt", "Missing");
  ExpectError(ParseCompletionRequest(Completion({{"prompt", Json::array()}}), Ctx()), 400, "prompt");
  ExpectError(ParseCompletionRequest(Completion({{"prompt", 5}}), Ctx()), 400, "prompt");
  ExpectError(ParseCompletionRequest(Completion({{"prompt", Json::parse(R"(["a", 1])")}}), Ctx()),
              400, "prompt[1]");
  ExpectError(ParseCompletionRequest(Completion({{"prompt", Json::parse("[[1], []]")}}), Ctx()), 400,
              "prompt[1]");
  ExpectError(ParseCompletionRequest(Completion({{"prompt", {1, 1000}}}), Ctx()), 400, "prompt",
              "vocabulary size 1000");
  ExpectError(ParseCompletionRequest(Completion({{"prompt", {1, -1}}}), Ctx()), 400, "prompt");
}

TEST(OpenAiRequestTest, CompletionLogprobsEchoAndUnsupported) {
  auto r = ParseCompletionRequest(Completion({{"logprobs", 3}, {"max_tokens", 4}}), Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->logprobs, 3);
  EXPECT_TRUE(r->params.sampling.logprobs);
  EXPECT_EQ(r->params.sampling.top_logprobs, 3);
  EXPECT_EQ(r->params.max_tokens, 4);
  r = ParseCompletionRequest(Completion({{"logprobs", 0}}), Ctx());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->logprobs, 0);
  EXPECT_TRUE(r->params.sampling.logprobs);
  r = ParseCompletionRequest(Completion({{"echo", true}, {"best_of", 2}, {"n", 2}}), Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->echo);

  ExpectError(ParseCompletionRequest(Completion({{"logprobs", 21}}), Ctx()), 400, "logprobs");
  ExpectError(ParseCompletionRequest(Completion({{"logprobs", true}}), Ctx()), 400, "logprobs");
  // echo + logprobs scores the prompt; only then may max_tokens be 0 (prompt log-probs only).
  r = ParseCompletionRequest(Completion({{"echo", true}, {"logprobs", 1}, {"max_tokens", 0}}),
                             Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->params.max_tokens, 0);
  ExpectError(ParseCompletionRequest(Completion({{"echo", true}, {"max_tokens", 0}}), Ctx()), 400,
              "max_tokens");
  ExpectError(ParseCompletionRequest(Completion({{"logprobs", 1}, {"max_tokens", 0}}), Ctx()), 400,
              "max_tokens");
  ExpectError(ParseCompletionRequest(Completion({{"best_of", 3}}), Ctx()), 400, "best_of");
  ExpectError(ParseCompletionRequest(Completion({{"suffix", "x"}}), Ctx()), 400, "suffix");
  // Chat-only parameters are unknown here.
  ExpectError(ParseCompletionRequest(Completion({{"messages", Json::array()}}), Ctx()), 400,
              "messages");
  ExpectError(ParseCompletionRequest(Completion({{"tools", Json::array()}}), Ctx()), 400, "tools");
}

// arle's per-request logprobs_mode (vLLM's --logprobs-mode names): RL rollout servers report
// the tempered log-probs a trainer's importance ratios use.
TEST(OpenAiRequestTest, LogprobsModeSelectsTheDistribution) {
  auto r = ParseCompletionRequest(Completion({{"logprobs", 0}}), Ctx());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->params.sampling.logprobs_mode, runtime::LogprobsMode::kRaw);
  const std::pair<const char*, runtime::LogprobsMode> modes[] = {
      {"raw_logprobs", runtime::LogprobsMode::kRaw},
      {"processed_logprobs", runtime::LogprobsMode::kProcessed},
      {"tempered_logprobs", runtime::LogprobsMode::kTempered}};
  for (const auto& [name, mode] : modes) {
    r = ParseCompletionRequest(Completion({{"logprobs", 0}, {"logprobs_mode", name}}), Ctx());
    ASSERT_TRUE(r.ok()) << name;
    EXPECT_EQ(r->params.sampling.logprobs_mode, mode) << name;
  }
  auto chat =
      ParseChatRequest(Chat({{"logprobs", true}, {"logprobs_mode", "tempered_logprobs"}}), Ctx());
  ASSERT_TRUE(chat.ok()) << chat.error().message;
  EXPECT_EQ(chat->params.sampling.logprobs_mode, runtime::LogprobsMode::kTempered);
  ExpectError(ParseCompletionRequest(Completion({{"logprobs_mode", "tempered"}}), Ctx()), 400,
              "logprobs_mode");
  ExpectError(ParseCompletionRequest(Completion({{"logprobs_mode", 1}}), Ctx()), 400,
              "logprobs_mode");
}

TEST(OpenAiRequestTest, ResponsesInputForms) {
  auto r = ParseResponsesRequest(
      R"({"model":"m","input":"hi","instructions":"be nice","max_output_tokens":5,
          "temperature":0.2,"top_p":0.5,"stream":true,"user":"u"})",
      Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Json::parse(r->messages_json),
            Json::parse(R"([{"role":"system","content":"be nice"},{"role":"user","content":"hi"}])"));
  EXPECT_EQ(r->params.max_tokens, 5);
  EXPECT_EQ(r->max_output_tokens, 5);
  EXPECT_EQ(r->instructions, "be nice");
  EXPECT_DOUBLE_EQ(*r->temperature, 0.2);
  EXPECT_FLOAT_EQ(r->params.sampling.temperature, 0.2f);
  EXPECT_DOUBLE_EQ(*r->top_p, 0.5);
  EXPECT_TRUE(r->params.stream);
  EXPECT_EQ(r->params.user, "u");

  r = ParseResponsesRequest(R"({"model":"m","input":[
      {"role":"user","content":[{"type":"input_text","text":"a"}]},
      {"type":"message","id":"msg_1","status":"completed","role":"assistant",
       "content":[{"type":"output_text","text":"b","annotations":[]}]},
      {"role":"developer","content":"c"}]})",
                            Ctx());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Json::parse(r->messages_json), Json::parse(R"([{"role":"user","content":"a"},
      {"role":"assistant","content":"b"},{"role":"system","content":"c"}])"));

  ExpectError(ParseResponsesRequest(R"({"model":"m"})", Ctx()), 400, "input");
  ExpectError(ParseResponsesRequest(R"({"model":"m","input":5})", Ctx()), 400, "input");
  ExpectError(ParseResponsesRequest(R"({"model":"m","input":[{"type":"function_call_output"}]})", Ctx()),
              400, "input[0].type");
  ExpectError(ParseResponsesRequest(R"({"model":"m","input":[{"role":"user","content":
      [{"type":"input_image","image_url":"x"}]}]})",
                                    Ctx()),
              400, "input[0].content[0].type");
  ExpectError(ParseResponsesRequest(R"({"model":"m","input":"x","max_output_tokens":0})", Ctx()), 400,
              "max_output_tokens");
  ExpectError(ParseResponsesRequest(R"({"model":"m","input":"x","previous_response_id":"r"})", Ctx()),
              400, "previous_response_id");
  ExpectError(ParseResponsesRequest(R"({"model":"m","input":"x","tools":[{"type":"web_search"}]})",
                                    Ctx()),
              400, "tools");
  ExpectError(ParseResponsesRequest(R"({"model":"m","input":"x","store":true})", Ctx()), 400, "store");
  ExpectError(ParseResponsesRequest(R"({"model":"m","input":"x","n":2})", Ctx()), 400, "n");
  ExpectError(
      ParseResponsesRequest(R"({"model":"m","input":"x","text":{"format":{"type":"json_object"}}})", Ctx()),
      400, "text");
  EXPECT_TRUE(
      ParseResponsesRequest(R"({"model":"m","input":"x","text":{"format":{"type":"text"}},"store":false})",
                            Ctx())
          .ok());
  ExpectError(ParseResponsesRequest(R"({"model":"other","input":"x"})", Ctx()), 404, "model");
}

TEST(OpenAiRequestTest, TokenizeAndDetokenize) {
  auto t = ParseTokenizeRequest(R"({"prompt":"hello"})", Ctx());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_FALSE(t->is_chat);
  EXPECT_TRUE(t->add_special_tokens);
  t = ParseTokenizeRequest(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"add_generation_prompt":false,
          "return_token_strs":true})",
      Ctx());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(t->is_chat);
  EXPECT_FALSE(t->add_special_tokens);  // vLLM's default for messages
  EXPECT_FALSE(t->add_generation_prompt);
  EXPECT_TRUE(t->return_token_strs);
  ExpectError(ParseTokenizeRequest(R"({})", Ctx()), 400, "prompt");
  ExpectError(ParseTokenizeRequest(R"({"prompt":"a","messages":[]})", Ctx()), 400, "messages");
  ExpectError(ParseTokenizeRequest(R"({"prompt":"a","model":"x"})", Ctx()), 404, "model");
  ExpectError(ParseTokenizeRequest(R"({"prompt":"a","bogus":1})", Ctx()), 400, "bogus");

  auto d = ParseDetokenizeRequest(R"({"tokens":[1,2,999]})", Ctx());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->tokens, (std::vector<int32_t>{1, 2, 999}));
  ExpectError(ParseDetokenizeRequest(R"({"tokens":[1000]})", Ctx()), 400, "tokens");
  ExpectError(ParseDetokenizeRequest(R"({"tokens":"ab"})", Ctx()), 400, "tokens");
  ExpectError(ParseDetokenizeRequest(R"({})", Ctx()), 400, "tokens");
}

}  // namespace
}  // namespace arle::server
