// train/data_convert: alpaca, dolly, sharegpt and chat records to canonical chat JSONL, with bad
// records reported by line and skipped.
#include "arle/train/data_convert.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "tests/common/temp_dir.h"
#include "tests/tokenizer/test_util.h"

namespace arle::train {
namespace {

using Json = nlohmann::ordered_json;
using tokenizer::testing::DataPath;

ConvertResult Convert(const std::string& file, const std::string& format) {
  auto f = ParseDatasetFormat(format);
  EXPECT_TRUE(f.ok());
  auto r = ConvertDatasetFile(DataPath("train/" + file), *f);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : ConvertResult{};
}

std::vector<Json> Lines(const std::string& jsonl) {
  std::vector<Json> out;
  size_t pos = 0;
  while (pos < jsonl.size()) {
    const size_t end = jsonl.find('\n', pos);
    out.push_back(Json::parse(jsonl.substr(pos, end - pos)));
    pos = end + 1;
  }
  return out;
}

std::vector<int64_t> SkippedLines(const ConvertResult& r) {
  std::vector<int64_t> lines;
  for (const ConvertIssue& i : r.skipped) lines.push_back(i.line);
  return lines;
}

TEST(DataConvert, Alpaca) {
  ConvertResult r = Convert("alpaca.jsonl", "alpaca");
  EXPECT_EQ(r.n_converted, 3);
  const auto out = Lines(r.jsonl);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], Json::parse(R"({"messages":[{"role":"user","content":"Give a synonym for happy."},
                                               {"role":"assistant","content":"Joyful."}]})"));
  EXPECT_EQ(out[1], Json::parse(R"({"messages":[{"role":"system","content":"You translate."},
                                               {"role":"user","content":"Translate to French.\n\nGood morning"},
                                               {"role":"assistant","content":"Bonjour"}]})"));
  EXPECT_EQ(out[2]["messages"][0]["content"], "Sum\n\n2 and 3");
  EXPECT_EQ(SkippedLines(r), (std::vector<int64_t>{3, 4, 6}));
  EXPECT_EQ(r.skipped[0].message, "missing field \"output\"");
  EXPECT_EQ(r.skipped[1].message, "not valid JSON");
  EXPECT_EQ(r.skipped[2].message, "field \"instruction\" must be a string");
}

TEST(DataConvert, Dolly) {
  ConvertResult r = Convert("dolly.jsonl", "dolly");
  const auto out = Lines(r.jsonl);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], Json::parse(R"({"messages":[
      {"role":"user","content":"When was Python released?\n\nPython first appeared in 1991."},
      {"role":"assistant","content":"1991."}]})"));
  EXPECT_EQ(out[1]["messages"][0]["content"], "Name a color.");
  EXPECT_EQ(SkippedLines(r), (std::vector<int64_t>{3}));
  EXPECT_EQ(r.skipped[0].message, "missing field \"response\"");
}

TEST(DataConvert, ShareGpt) {
  ConvertResult r = Convert("sharegpt.jsonl", "sharegpt");
  const auto out = Lines(r.jsonl);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], Json::parse(R"({"messages":[{"role":"system","content":"Be brief."},
      {"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"},
      {"role":"user","content":"Bye"},{"role":"assistant","content":"Bye!"}]})"));
  EXPECT_EQ(out[1], Json::parse(R"({"messages":[{"role":"system","content":"Top-level system."},
      {"role":"user","content":"Q"},{"role":"assistant","content":"A"}]})"));
  EXPECT_EQ(SkippedLines(r), (std::vector<int64_t>{2, 3, 5}));
  EXPECT_EQ(r.skipped[0].message, "the conversation has no assistant message");
  EXPECT_NE(r.skipped[1].message.find("unknown \"from\" value \"robot\""), std::string::npos);
  EXPECT_NE(r.skipped[2].message.find("must be a JSON object"), std::string::npos);
}

TEST(DataConvert, ChatPassesMessagesAndToolsThrough) {
  ConvertResult r = Convert("chat.jsonl", "chat");
  const auto out = Lines(r.jsonl);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], Json::parse(R"({"messages":[{"role":"user","content":"Hi"},
                                               {"role":"assistant","content":"Hello"}]})"));
  EXPECT_TRUE(out[1].contains("tools"));
  EXPECT_EQ(out[1]["messages"][1]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(SkippedLines(r), (std::vector<int64_t>{3, 4}));
}

TEST(DataConvert, JsonArrayFilesAndErrors) {
  test::TempDir dir;
  ASSERT_TRUE(core::WriteFileAtomic(dir.File("a.json"),
                                    R"([{"instruction": "a", "output": "b"}, {"instruction": "c"}])")
                  .ok());
  auto r = ConvertDatasetFile(dir.File("a.json"), DatasetFormat::kAlpaca);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->n_converted, 1);
  EXPECT_EQ(SkippedLines(*r), (std::vector<int64_t>{2}));
  EXPECT_EQ(ConvertDatasetFile(dir.File("none.jsonl"), DatasetFormat::kChat).status().code(),
            core::StatusCode::kNotFound);
  EXPECT_FALSE(ParseDatasetFormat("openai").ok());
}

}  // namespace
}  // namespace arle::train
