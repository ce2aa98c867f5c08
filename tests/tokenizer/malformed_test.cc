// Malformed tokenizer.json: truncated, wrong types, merges naming unknown tokens, ids out of
// range, unsupported components and model kinds -> clean Status errors naming the file.
#include "arle/tokenizer/tokenizer.h"
#include "test_util.h"

namespace arle::tokenizer {
namespace {

using core::StatusCode;

constexpr const char* kValid = R"({
  "added_tokens": [{"id": 5, "content": "<|end|>", "special": true}],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "post_processor": null,
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}, "merges": ["a b", ["Ġ", "ab"]]}
})";

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  size_t pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

core::Status Load(const std::string& json) {
  auto tok = Tokenizer::FromJson(json, "bad/tokenizer.json");
  return tok.ok() ? core::OkStatus() : tok.status();
}

void ExpectError(const std::string& json, StatusCode code, const std::string& needle) {
  core::Status s = Load(json);
  ASSERT_FALSE(s.ok()) << "accepted: " << json;
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find("bad/tokenizer.json"), std::string::npos) << s.ToString();
  EXPECT_NE(s.ToString().find(needle), std::string::npos) << s.ToString();
}

TEST(MalformedTokenizerJson, ValidBaseLoads) {
  auto tok = Tokenizer::FromJson(kValid, "ok.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ((*tok)->Encode(" ab<|end|>"), (std::vector<int32_t>{4, 5}));
  EXPECT_EQ((*tok)->Decode(std::vector<int32_t>{4, 5}), " ab<|end|>");
}

TEST(MalformedTokenizerJson, EveryTruncationIsACleanError) {
  const std::string valid = kValid;
  for (size_t n = 0; n < valid.size(); ++n) {
    core::Status s = Load(valid.substr(0, n));
    EXPECT_FALSE(s.ok()) << n;
  }
  ExpectError(valid.substr(0, valid.size() / 2), StatusCode::kDataLoss, "not valid JSON");
}

TEST(MalformedTokenizerJson, WrongTypes) {
  ExpectError("[1, 2]", StatusCode::kInvalidArgument, "JSON object");
  ExpectError(Replace(kValid, R"("a": 0,)", R"("a": "zero",)"), StatusCode::kInvalidArgument, "integer id");
  ExpectError(Replace(kValid, R"("merges": ["a b",)", R"("merges": [7,)"), StatusCode::kInvalidArgument,
              "merge #0");
  ExpectError(Replace(kValid, R"("merges": ["a b",)", R"("merges": ["ab",)"), StatusCode::kInvalidArgument,
              "separated by a space");
  ExpectError(Replace(kValid, R"("vocab": {)", R"("vocab": [], "x": {)"), StatusCode::kInvalidArgument,
              "\"vocab\" must be an object");
  ExpectError(Replace(kValid, R"("special": true)", R"("special": "yes")"), StatusCode::kInvalidArgument,
              "special");
  ExpectError(Replace(kValid, R"({"type": "NFC"})", R"("NFC")"), StatusCode::kInvalidArgument,
              "normalizer");
  ExpectError(Replace(kValid, R"("add_prefix_space": false)", R"("add_prefix_space": 0)"),
              StatusCode::kInvalidArgument, "add_prefix_space");
}

TEST(MalformedTokenizerJson, MergesNamingUnknownTokens) {
  ExpectError(Replace(kValid, R"("a b")", R"("a c")"), StatusCode::kInvalidArgument, "\"c\"");
  // Both halves exist but the merged piece does not.
  ExpectError(Replace(kValid, R"("a b")", R"("b a")"), StatusCode::kInvalidArgument, "\"ba\"");
}

TEST(MalformedTokenizerJson, IdsOutOfRange) {
  ExpectError(Replace(kValid, R"("a": 0,)", R"("a": -1,)"), StatusCode::kInvalidArgument, "out of range");
  ExpectError(Replace(kValid, R"("a": 0,)", R"("a": 4000000000,)"), StatusCode::kInvalidArgument,
              "out of range");
  ExpectError(Replace(kValid, R"("id": 5)", R"("id": 999999999)"), StatusCode::kInvalidArgument,
              "out of range");
  ExpectError(Replace(kValid, R"("a": 0,)", R"("a": 1,)"), StatusCode::kInvalidArgument,
              "assigned to both");
}

TEST(MalformedTokenizerJson, OtherModelKindsAreUnimplemented) {
  ExpectError(Replace(kValid, R"("type": "BPE")", R"("type": "WordPiece")"), StatusCode::kUnimplemented,
              "WordPiece");
  ExpectError(Replace(kValid, R"("type": "BPE")", R"("type": "Unigram")"), StatusCode::kUnimplemented,
              "Unigram");
}

TEST(MalformedTokenizerJson, UnsupportedComponentsNameTheirType) {
  ExpectError(Replace(kValid, R"({"type": "NFC"})", R"({"type": "NFKD"})"), StatusCode::kUnimplemented,
              "NFKD");
  ExpectError(Replace(kValid, R"({"type": "ByteLevel", "add_prefix_space")",
                      R"({"type": "Whitespace", "add_prefix_space")"),
              StatusCode::kUnimplemented, "Whitespace");
  ExpectError(Replace(kValid, R"("decoder": {"type": "ByteLevel"})", R"("decoder": {"type": "CTC"})"),
              StatusCode::kUnimplemented, "CTC");
  ExpectError(Replace(kValid, R"("post_processor": null)", R"("post_processor": {"type": "BertProcessing"})"),
              StatusCode::kUnimplemented, "BertProcessing");
}

TEST(MalformedTokenizerJson, BadRegexIsAnError) {
  ExpectError(Replace(kValid, R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})",
                      R"({"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})"),
              StatusCode::kInvalidArgument, "does not compile");
}

}  // namespace
}  // namespace arle::tokenizer
