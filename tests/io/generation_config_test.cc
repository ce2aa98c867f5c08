// Tests for io/generation_config and io/json_fields: generation_config.json's bos/eos ids (an int,
// a list, null, absent) and their errors naming the file and field, the text written back, and the
// typed field reader's defaults and messages.
#include "arle/io/generation_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "arle/io/json_fields.h"

namespace arle::io {
namespace {

using json = nlohmann::json;

TEST(GenerationConfig, ReadsEosAsIntOrListAndBos) {
  // Qwen3-0.6B's own generation_config.json ids (plus unrelated sampling fields).
  auto g = ParseGenerationConfig(R"({"bos_token_id": 151643, "do_sample": true,
                                     "eos_token_id": [151645, 151643], "temperature": 0.6})",
                                 "gen.json");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->bos_token_id, 151643);
  EXPECT_EQ(g->eos_token_ids, (std::vector<int64_t>{151645, 151643}));

  g = ParseGenerationConfig(R"({"eos_token_id": 2.0, "bos_token_id": null})", "gen.json");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_FALSE(g->bos_token_id.has_value());
  EXPECT_EQ(g->eos_token_ids, std::vector<int64_t>{2});

  g = ParseGenerationConfig(R"({"eos_token_id": [7, 7]})", "gen.json");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->eos_token_ids, (std::vector<int64_t>{7, 7}));  // as written; callers dedupe

  g = ParseGenerationConfig("{}", "gen.json");
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->bos_token_id.has_value());
  EXPECT_TRUE(g->eos_token_ids.empty());
}

TEST(GenerationConfig, ErrorsNameTheFileAndField) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {R"({"eos_token_id": "two"})",
       "gen.json: field \"eos_token_id\" must be an integer that fits int64, got a string"},
      {R"({"eos_token_id": [1, "x"]})",
       "gen.json: field \"eos_token_id[1]\" must be an integer, got a string"},
      {R"({"bos_token_id": 1.5})",
       "gen.json: field \"bos_token_id\" must be an integer that fits int64, got a float"},
      {"[1]", "gen.json: expected a JSON object"},
  };
  for (const Case& c : cases) {
    auto g = ParseGenerationConfig(c.text, "gen.json");
    ASSERT_FALSE(g.ok()) << c.text;
    EXPECT_EQ(g.status().code(), core::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(g.status().message(), c.message) << c.text;
  }
  auto bad = ParseGenerationConfig("{oops", "gen.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("gen.json: not valid JSON"), std::string::npos);
}

TEST(GenerationConfig, WritesWhatItReads) {
  EXPECT_EQ(json::parse(GenerationConfigJson(1, {2})), json({{"bos_token_id", 1},
                                                              {"eos_token_id", 2}}));
  EXPECT_EQ(json::parse(GenerationConfigJson(-1, {5, 6})), json({{"eos_token_id", {5, 6}}}));
  EXPECT_EQ(json::parse(GenerationConfigJson(-1, {})), json::object());
  auto back = ParseGenerationConfig(GenerationConfigJson(7, {8, 9}), "gen");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->bos_token_id, 7);
  EXPECT_EQ(back->eos_token_ids, (std::vector<int64_t>{8, 9}));
}

TEST(JsonFields, DefaultsTypesAndPrefixedNames) {
  const json j = {{"n", 4096.0}, {"x", 1.5}, {"b", true}, {"s", "silu"}, {"null", nullptr},
                  {"big", 18446744073709551615ull}};
  const std::string source = "cfg.json";
  const JsonFields f(j, source, "rope_scaling.");
  EXPECT_TRUE(f.Has("n"));
  EXPECT_FALSE(f.Has("null"));
  EXPECT_FALSE(f.Has("absent"));
  EXPECT_EQ(*f.Int("n"), 4096);  // integral floats are integers
  EXPECT_EQ(*f.IntOr("null", 7), 7);
  EXPECT_EQ(*f.NumberOr("absent", 2.5), 2.5);
  EXPECT_EQ(*f.BoolOr("b", false), true);
  EXPECT_EQ(**f.OptString("s"), "silu");
  EXPECT_FALSE(f.OptString("absent")->has_value());
  EXPECT_EQ(f.Int("absent").status().message(),
            "cfg.json: missing required field \"rope_scaling.absent\"");
  EXPECT_EQ(f.Int("x").status().message(),
            "cfg.json: field \"rope_scaling.x\" must be an integer that fits int64, got a float");
  EXPECT_FALSE(f.Int("big").ok());  // does not fit int64
  EXPECT_EQ(f.Number("s").status().message(),
            "cfg.json: field \"rope_scaling.s\" must be a number, got a string");
  EXPECT_EQ(f.BoolOr("n", false).status().message(),
            "cfg.json: field \"rope_scaling.n\" must be a boolean, got a float");
  EXPECT_EQ(TokenIdsToJson({}), json(nullptr));
  EXPECT_EQ(TokenIdsToJson({3}), json(3));
  EXPECT_EQ(TokenIdsToJson({3, 4}), json({3, 4}));
}

}  // namespace
}  // namespace arle::io
