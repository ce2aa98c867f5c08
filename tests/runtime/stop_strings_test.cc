// StopStringMatcher tests: goldens from gen_output_parser_golden.py fed at every split point and
// byte by byte; the held-back text is exactly the longest suffix that could start a stop string.
#include "arle/runtime/stop_strings.h"

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

json LoadStopCases() {
  std::ifstream in(std::string(ARLE_SOURCE_DIR) + "/tests/runtime/golden/output_parser_golden.json");
  EXPECT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str())["stop"];
}

// Brute force: longest suffix of `s` that is a proper prefix of some stop string.
size_t ExpectedHold(const std::string& s, const std::vector<std::string>& stops) {
  for (size_t len = s.size(); len > 0; --len) {
    for (const std::string& stop : stops) {
      if (stop.size() > len && stop.compare(0, len, s, s.size() - len, len) == 0) return len;
    }
  }
  return 0;
}

void RunPieces(const json& c, const std::vector<std::string_view>& pieces,
               const std::string& where) {
  SCOPED_TRACE(where);
  std::vector<std::string> stops = c["stops"];
  StopStringMatcher matcher(stops);
  std::string emitted;
  std::string fed;
  bool stopped = false;
  for (std::string_view piece : pieces) {
    StopStringMatcher::Result r = matcher.Feed(piece);
    ASSERT_FALSE(stopped && !r.text.empty()) << "text after the stop";
    emitted += r.text;
    fed += piece;
    if (r.stopped) stopped = true;
    if (!stopped) {
      EXPECT_EQ(matcher.held_bytes(), ExpectedHold(fed, stops));
      EXPECT_EQ(emitted.size() + matcher.held_bytes(), fed.size());
    }
  }
  if (!stopped) emitted += matcher.Flush();
  EXPECT_EQ(matcher.Flush(), "");
  const json& e = c["expected"];
  EXPECT_EQ(emitted, e["output"].get<std::string>());
  EXPECT_EQ(stopped, e["stopped"].get<bool>());
  EXPECT_EQ(matcher.stopped(), stopped);
  if (stopped) {
    EXPECT_EQ(*matcher.matched(), e["matched"].get<std::string>());
  }
}

TEST(StopStringsTest, EverySplitPoint) {
  json cases = LoadStopCases();
  ASSERT_GE(cases.size(), 6u);
  for (const json& c : cases) {
    std::string text = c["text"];
    std::string_view v(text);
    RunPieces(c, {v}, c["name"].get<std::string>() + " whole");
    for (size_t split = 0; split <= text.size(); ++split) {
      RunPieces(c, {v.substr(0, split), v.substr(split)},
                c["name"].get<std::string>() + " split " + std::to_string(split));
    }
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < text.size(); ++i) bytes.push_back(v.substr(i, 1));
    RunPieces(c, bytes, c["name"].get<std::string>() + " byte by byte");
  }
}

// Property: random texts over a small alphabet with overlapping stop strings give the same
// output and matched string for random splits as for the whole text.
TEST(StopStringsTest, RandomTextsAreSplitInvariant) {
  std::mt19937 rng(777);
  const std::string alphabet = "abc";
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<std::string> stops;
    int n_stops = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < n_stops; ++k) {
      std::string s;
      int len = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
      stops.push_back(s);
    }
    std::string text;
    int len = static_cast<int>(rng() % 16);
    for (int i = 0; i < len; ++i) text += alphabet[rng() % alphabet.size()];
    StopStringMatcher whole(stops);
    StopStringMatcher::Result w = whole.Feed(text);
    std::string whole_out = w.text + (w.stopped ? "" : whole.Flush());

    StopStringMatcher split(stops);
    std::string split_out;
    std::string_view rest(text);
    while (!rest.empty()) {
      size_t n = std::min<size_t>(rest.size(), rng() % 4);
      split_out += split.Feed(rest.substr(0, n)).text;
      rest.remove_prefix(n);
    }
    if (!split.stopped()) split_out += split.Flush();
    ASSERT_EQ(split_out, whole_out) << text;
    ASSERT_EQ(split.stopped(), whole.stopped()) << text;
    ASSERT_EQ(split.matched(), whole.matched()) << text;
    for (const std::string& stop : stops) ASSERT_EQ(split_out.find(stop), std::string::npos);
  }
}

TEST(StopStringsTest, NoStopsPassesThrough) {
  StopStringMatcher matcher({});
  EXPECT_EQ(matcher.Feed("abc").text, "abc");
  EXPECT_FALSE(matcher.stopped());
  EXPECT_EQ(matcher.Flush(), "");
}

TEST(StopStringsTest, Validation) {
  EXPECT_TRUE(ValidateStopStrings({"a", "bc"}).ok());
  core::Status s = ValidateStopStrings({"a", ""});
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("stop string 1 is empty"), std::string::npos);
  EXPECT_FALSE(ValidateStopStrings(std::vector<std::string>(17, "x")).ok());
}

}  // namespace
}  // namespace arle::runtime
