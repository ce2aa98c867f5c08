// train/sft_data: assistant-only loss masks of Qwen3 chat records against
// tests/reference/sft_masks.py (Python jinja2 rendering, ChatML spans, an independent BPE),
// truncation, padded batches, file errors and the dry-run JSON.
#include "arle/train/sft_data.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/io/model_location.h"
#include "tests/common/temp_dir.h"
#include "tests/tokenizer/test_util.h"

namespace arle::train {
namespace {

using Json = nlohmann::ordered_json;
using tokenizer::testing::DataPath;
using tokenizer::testing::Qwen3;
using tokenizer::testing::SourcePath;

const tokenizer::ChatSetup& Qwen3Chat() {
  static const tokenizer::ChatSetup* setup = [] {
    const io::ModelLocation loc{io::ModelLocation::Kind::kHfDirectory,
                                SourcePath("assets/tokenizers/qwen3"), "qwen3 tokenizer"};
    auto s = tokenizer::LoadChatSetup(loc, Qwen3(), DataPath("templates/Qwen-Qwen3-0.6B.jinja"));
    ARLE_CHECK(s.ok()) << s.status().ToString();
    return new tokenizer::ChatSetup(std::move(s).value());
  }();
  return *setup;
}

const Json& Goldens() {
  static const Json* j = [] {
    auto text = core::ReadFile(DataPath("goldens/train/sft_masks.json"));
    ARLE_CHECK(text.ok()) << text.status().ToString();
    return new Json(Json::parse(*text));
  }();
  return *j;
}

TEST(SftData, MasksMatchTheReference) {
  const Json& cases = Goldens().at("cases");
  ASSERT_EQ(cases.size(), 7u);
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const Json& c = cases[i];
    auto ex = TokenizeConversation(Qwen3Chat(), Qwen3(), c.at("record"), {.seq = 4096});
    ASSERT_TRUE(ex.ok()) << ex.status().ToString();
    EXPECT_EQ(ex->text, c.at("text").get<std::string>());
    std::vector<std::vector<size_t>> spans;
    for (const TextSpan& s : ex->spans) spans.push_back({s.begin, s.end});
    EXPECT_EQ(spans, c.at("spans").get<std::vector<std::vector<size_t>>>());
    EXPECT_EQ(ex->ids, c.at("ids").get<std::vector<int32_t>>());
    EXPECT_EQ(std::vector<int>(ex->mask.begin(), ex->mask.end()), c.at("mask").get<std::vector<int>>());
    EXPECT_EQ(ex->labels, c.at("labels").get<std::vector<int32_t>>());
    EXPECT_GT(ex->n_labels, 0);
  }
}

TEST(SftData, TruncationKeepsTheFirstSeqTokensAndTheirLabels) {
  const Json& c = Goldens().at("cases")[0];
  const auto ids = c.at("ids").get<std::vector<int32_t>>();
  const auto labels = c.at("labels").get<std::vector<int32_t>>();
  // Cut inside the assistant span: the last kept label still names the next (dropped) token.
  const int64_t seq = static_cast<int64_t>(ids.size()) - 3;
  auto ex = TokenizeConversation(Qwen3Chat(), Qwen3(), c.at("record"), {.seq = seq});
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  EXPECT_EQ(ex->n_untruncated, static_cast<int64_t>(ids.size()));
  EXPECT_EQ(ex->ids, std::vector<int32_t>(ids.begin(), ids.begin() + seq));
  EXPECT_EQ(ex->labels, std::vector<int32_t>(labels.begin(), labels.begin() + seq));
  EXPECT_EQ(ex->labels.back(), ids[seq]);

  const SftExample* rows[] = {&*ex};
  SftBatch b = MakeSftBatch(rows, seq + 2, /*pad_id=*/0);
  EXPECT_EQ(b.lengths, std::vector<int32_t>{static_cast<int32_t>(seq)});
  EXPECT_EQ(b.ids[seq], 0);
  EXPECT_EQ(b.labels[seq], kIgnoreIndex);
  EXPECT_EQ(b.labels[seq + 1], kIgnoreIndex);
}

TEST(SftData, LoadsTheJsonlFileAndRejectsBadRecords) {
  auto data = LoadSftData(DataPath("train/sft_chat.jsonl"), Qwen3Chat(), Qwen3(), {.seq = 4096});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->examples.size(), 7u);
  EXPECT_EQ(data->examples[2].line, 3);
  EXPECT_EQ(data->examples[2].ids, Goldens().at("cases")[2].at("ids").get<std::vector<int32_t>>());

  test::TempDir dir;
  struct Case {
    std::string text, needle;
  };
  const std::vector<Case> cases = {
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n", "bad.jsonl:1: no assistant"},
      {"\n{\"messages\": [}\n", "bad.jsonl:2: not valid JSON"},
      {"{\"msgs\": []}\n", "bad.jsonl:1: missing or empty \"messages\""},
      {"{\"messages\": [{\"content\": \"x\"}]}\n", "bad.jsonl:1: messages[0]"},
      {"{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}], \"tools\": 3}\n",
       "\"tools\" must be an array"},
      {"", "no SFT example"},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(core::WriteFileAtomic(dir.File("bad.jsonl"), c.text).ok());
    auto r = LoadSftData(dir.File("bad.jsonl"), Qwen3Chat(), Qwen3(), {.seq = 64});
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().ToString();
  }
}

TEST(SftData, DryRunJsonShowsTokensWithTheirMask) {
  auto data = LoadSftData(DataPath("train/sft_chat.jsonl"), Qwen3Chat(), Qwen3(), {.seq = 4096});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  const Json out = SftDryRunJson(data->examples, Qwen3(), 2);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].at("line"), 1);
  const Json& tokens = out[0].at("tokens");
  ASSERT_EQ(tokens.size(), data->examples[0].ids.size());
  std::string trained;
  for (const Json& t : tokens) {
    if (t.at("loss").get<bool>()) trained += t.at("text").get<std::string>();
  }
  EXPECT_EQ(trained, "<think>\n\n</think>\n\nHi! How can I help you today?<|im_end|>");
}

}  // namespace
}  // namespace arle::train
