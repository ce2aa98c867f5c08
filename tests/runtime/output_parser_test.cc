// Streaming output parser tests: Qwen3 outputs (reasoning, several tool calls, unicode,
// malformed) fed at every byte split point and byte by byte must match feeding them whole and the
// goldens of gen_output_parser_golden.py; no delta may carry a tag or part of one.
#include "arle/runtime/output_parser.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace arle::runtime {
namespace {

using nlohmann::json;

json LoadGolden() {
  std::ifstream in(std::string(ARLE_SOURCE_DIR) + "/tests/runtime/golden/output_parser_golden.json");
  EXPECT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

struct ParseRun {
  std::vector<OutputDelta> deltas;
  ParsedOutput result;
};

ParseRun Feed(const std::vector<std::string_view>& pieces, bool start_in_reasoning) {
  OutputParserOptions options;
  options.start_in_reasoning = start_in_reasoning;
  auto parser = CreateOutputParser("qwen3", options);
  EXPECT_TRUE(parser.ok());
  ParseRun run;
  for (std::string_view piece : pieces) (*parser)->Feed(piece, &run.deltas);
  (*parser)->Flush(&run.deltas);
  run.result = (*parser)->result();
  return run;
}

void ExpectMatchesGolden(const ParseRun& run, const json& expected, const std::string& where) {
  SCOPED_TRACE(where);
  EXPECT_EQ(run.result.content, expected["content"].get<std::string>());
  EXPECT_EQ(run.result.reasoning, expected["reasoning"].get<std::string>());
  EXPECT_EQ(run.result.malformed, expected["malformed"].get<bool>());
  EXPECT_EQ(run.result.malformed, !run.result.problems.empty());
  const json& calls = expected["tool_calls"];
  ASSERT_EQ(run.result.tool_calls.size(), calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(run.result.tool_calls[i].id, calls[i]["id"].get<std::string>());
    EXPECT_EQ(run.result.tool_calls[i].type, calls[i]["type"].get<std::string>());
    EXPECT_EQ(run.result.tool_calls[i].name, calls[i]["name"].get<std::string>());
    EXPECT_EQ(run.result.tool_calls[i].arguments, calls[i]["arguments"].get<std::string>());
  }
  // The deltas, replayed, give the same result; tool-call deltas are start, arguments, end.
  ParsedOutput replay;
  for (const OutputDelta& d : run.deltas) ApplyOutputDelta(d, &replay);
  EXPECT_EQ(replay.content, run.result.content);
  EXPECT_EQ(replay.reasoning, run.result.reasoning);
  EXPECT_EQ(replay.tool_calls, run.result.tool_calls);
  // No delta carries a tag or a piece of one (outside text the golden content itself holds).
  if (!run.result.malformed) {
    for (const OutputDelta& d : run.deltas) {
      for (const char* tag : {"<think>", "</think>", "<tool_call>", "</tool_call>"}) {
        std::string t = tag;
        bool in_golden = expected["content"].get<std::string>().find(t) != std::string::npos ||
                         expected["reasoning"].get<std::string>().find(t) != std::string::npos;
        if (!in_golden) {
          EXPECT_EQ(d.text.find(t), std::string::npos) << "delta: " << d.text;
        }
      }
      EXPECT_FALSE(d.text.empty() && (d.kind == OutputDeltaKind::kContent ||
                                       d.kind == OutputDeltaKind::kReasoning));
    }
  }
}

TEST(OutputParserTest, WholeOutputsMatchReference) {
  json golden = LoadGolden();
  ASSERT_GE(golden["parser"].size(), 10u);
  for (const json& c : golden["parser"]) {
    std::string text = c["text"];
    ParseRun run = Feed({text}, c["start_in_reasoning"]);
    ExpectMatchesGolden(run, c["expected"], c["name"].get<std::string>() + " whole");
  }
}

TEST(OutputParserTest, EverySplitPointMatchesWhole) {
  json golden = LoadGolden();
  for (const json& c : golden["parser"]) {
    std::string text = c["text"];
    std::string_view v(text);
    for (size_t split = 0; split <= text.size(); ++split) {
      ParseRun run = Feed({v.substr(0, split), v.substr(split)}, c["start_in_reasoning"]);
      ExpectMatchesGolden(run, c["expected"],
                          c["name"].get<std::string>() + " split at " + std::to_string(split));
      if (HasFatalFailure() || HasNonfatalFailure()) return;
    }
  }
}

TEST(OutputParserTest, ByteByByteMatchesWholeAndDeltasAreWholeUtf8) {
  json golden = LoadGolden();
  for (const json& c : golden["parser"]) {
    std::string text = c["text"];
    std::vector<std::string_view> pieces;
    for (size_t i = 0; i < text.size(); ++i) pieces.push_back(std::string_view(text).substr(i, 1));
    ParseRun run = Feed(pieces, c["start_in_reasoning"]);
    ExpectMatchesGolden(run, c["expected"], c["name"].get<std::string>() + " byte by byte");
    for (const OutputDelta& d : run.deltas) EXPECT_TRUE(ValidUtf8(d.text)) << d.text;
    // Streaming actually streams: well-formed text arrives before the end of the output.
    if (!run.result.content.empty() || !run.result.reasoning.empty()) {
      EXPECT_GT(run.deltas.size(), 1u) << c["name"];
    }
  }
}

TEST(OutputParserTest, ThreePieceSplitsMatchWhole) {
  json golden = LoadGolden();
  for (const json& c : golden["parser"]) {
    std::string text = c["text"];
    std::string_view v(text);
    for (size_t a = 0; a <= text.size(); a += 3) {
      for (size_t b = a; b <= text.size(); b += 5) {
        ParseRun run = Feed({v.substr(0, a), v.substr(a, b - a), v.substr(b)}, c["start_in_reasoning"]);
        ExpectMatchesGolden(run, c["expected"], c["name"].get<std::string>() + " splits " +
                                                    std::to_string(a) + "," + std::to_string(b));
        if (HasFatalFailure() || HasNonfatalFailure()) return;
      }
    }
  }
}

TEST(OutputParserTest, HoldsBackOnlyWhatCouldBeATag) {
  auto parser = CreateOutputParser("qwen3");
  ASSERT_TRUE(parser.ok());
  std::vector<OutputDelta> deltas;
  (*parser)->Feed("Hello <to", &deltas);
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].text, "Hello ");
  (*parser)->Feed("ol_call", &deltas);
  EXPECT_EQ(deltas.size(), 1u);
  (*parser)->Feed("s>", &deltas);  // not a tag after all
  ASSERT_EQ(deltas.size(), 2u);
  EXPECT_EQ(deltas[1].text, "<tool_calls>");
}

TEST(OutputParserTest, ToolCallDeltaSequence) {
  auto parser = CreateOutputParser("Qwen3");
  ASSERT_TRUE(parser.ok());
  std::vector<OutputDelta> deltas;
  (*parser)->Feed("Hi\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"b\": 2, \"a\": [1, 2]}}\n"
                  "</tool_call>",
                  &deltas);
  (*parser)->Flush(&deltas);
  ASSERT_EQ(deltas.size(), 4u);
  EXPECT_EQ(deltas[0].kind, OutputDeltaKind::kContent);
  EXPECT_EQ(deltas[0].text, "Hi");
  EXPECT_EQ(deltas[1].kind, OutputDeltaKind::kToolCallStart);
  EXPECT_EQ(deltas[1].id, "call_0");
  EXPECT_EQ(deltas[1].name, "f");
  EXPECT_EQ(deltas[2].kind, OutputDeltaKind::kToolCallArguments);
  EXPECT_EQ(deltas[2].text, "{\"b\":2,\"a\":[1,2]}");  // key order kept, compact
  EXPECT_EQ(deltas[3].kind, OutputDeltaKind::kToolCallEnd);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(deltas[i].tool_index, 0);
}

TEST(OutputParserTest, GarbageNeverCrashes) {
  std::string garbage = "<think><tool_call>{\xff\xfe</think></tool_call><tool_call>\"<<</think>";
  for (size_t split = 0; split <= garbage.size(); ++split) {
    for (bool sir : {false, true}) {
      ParseRun run = Feed({std::string_view(garbage).substr(0, split),
                      std::string_view(garbage).substr(split)},
                     sir);
      ParseRun whole = Feed({garbage}, sir);
      EXPECT_EQ(run.result.content, whole.result.content);
      EXPECT_EQ(run.result.reasoning, whole.result.reasoning);
      EXPECT_EQ(run.result.malformed, whole.result.malformed);
    }
  }
}

// Property: random mixes of tags, tag fragments, JSON and text (mostly malformed) give the same
// result and delta stream content for random splits as for the whole text.
TEST(OutputParserTest, RandomTextsAreSplitInvariant) {
  const std::vector<std::string> atoms = {
      "<think>", "</think>", "<tool_call>", "</tool_call>", "<", "</", "<thi", "</tool", "\n",
      "\n\n", "a", "é", "{\"name\": \"f\", \"arguments\": {\"x\": [1, \"y\"]}}", "{", "}",
      "\"", " ", "call", ">"};
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    int n_atoms = static_cast<int>(rng() % 24);
    for (int i = 0; i < n_atoms; ++i) text += atoms[rng() % atoms.size()];
    bool sir = rng() % 2 == 0;
    ParseRun whole = Feed({text}, sir);
    std::vector<std::string_view> pieces;
    std::string_view rest(text);
    while (!rest.empty()) {
      size_t n = std::min<size_t>(rest.size(), rng() % 5);
      pieces.push_back(rest.substr(0, n));
      rest.remove_prefix(n);
    }
    ParseRun split = Feed(pieces, sir);
    ASSERT_EQ(split.result.content, whole.result.content) << text;
    ASSERT_EQ(split.result.reasoning, whole.result.reasoning) << text;
    ASSERT_EQ(split.result.tool_calls, whole.result.tool_calls) << text;
    ASSERT_EQ(split.result.malformed, whole.result.malformed) << text;
  }
}

TEST(OutputParserTest, PromptEndsInsideReasoning) {
  EXPECT_TRUE(PromptEndsInsideReasoning("<|im_start|>assistant\n<think>\n"));
  EXPECT_FALSE(PromptEndsInsideReasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_FALSE(PromptEndsInsideReasoning("<|im_start|>assistant\n"));
  EXPECT_FALSE(PromptEndsInsideReasoning("<think>", TaggedParserConfig{"", "", "", ""}));
}

TEST(OutputParserTest, RegistryFamilies) {
  auto plain = CreateOutputParser("plain");
  ASSERT_TRUE(plain.ok());
  ParsedOutput out = ParseOutput(**plain, "<think>x</think><tool_call>{}</tool_call>");
  EXPECT_EQ(out.content, "<think>x</think><tool_call>{}</tool_call>");
  EXPECT_TRUE(out.tool_calls.empty());

  auto missing = CreateOutputParser("no-such-family");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("qwen3"), std::string::npos);

  // A new family plugs in without touching the engine.
  ASSERT_TRUE(OutputParserRegistry::Default()
                  .Register("test-json-calls",
                            [](const OutputParserOptions& options) {
                              TaggedParserConfig config{"", "", "<|python_tag|>", "<|eom_id|>"};
                              return MakeTaggedOutputParser(config, options);
                            })
                  .ok());
  EXPECT_FALSE(OutputParserRegistry::Default().Register("qwen3", nullptr).ok());
  auto custom = CreateOutputParser("test-json-calls");
  ASSERT_TRUE(custom.ok());
  out = ParseOutput(**custom,
                    "<|python_tag|>{\"name\": \"g\", \"parameters\": {\"q\": \"x\"}}<|eom_id|>");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "g");
  EXPECT_EQ(out.tool_calls[0].arguments, "{\"q\":\"x\"}");
}

}  // namespace
}  // namespace arle::runtime
