// ChatTemplate tests: every (template, conversation) golden rendered by Python jinja2
// (tests/reference/render_templates.py) must come out byte-identical; errors must be Statuses.
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "arle/tokenizer/chat_template.h"

namespace arle::tokenizer {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kDir = std::string(ARLE_TEST_DATA_DIR) + "/templates/";

TEST(ChatTemplateGoldens, AllTemplatesAllCasesByteIdentical) {
  auto goldens = nlohmann::ordered_json::parse(ReadText(kDir + "goldens.json"));
  std::map<std::string, std::string> contexts;
  for (const auto& c : goldens["cases"]) contexts[c["name"].get<std::string>()] = c["context"].dump();
  std::set<std::string> templates;
  int compared = 0;
  for (const auto& r : goldens["results"]) {
    std::string tname = r["template"].get<std::string>(), cname = r["case"].get<std::string>();
    templates.insert(tname);
    auto tpl = ChatTemplate::Parse(ReadText(kDir + tname), tname);
    ASSERT_TRUE(tpl.ok()) << tpl.status().ToString();
    auto out = tpl.value().Render(contexts.at(cname));
    if (r.contains("output")) {
      ASSERT_TRUE(out.ok()) << tname << " / " << cname << ": " << out.status().ToString();
      EXPECT_EQ(out.value(), r["output"].get<std::string>()) << tname << " / " << cname;
    } else {
      ASSERT_FALSE(out.ok()) << tname << " / " << cname << " rendered but jinja2 raised " << r["error"];
      std::string err = r["error"].get<std::string>();
      if (err.find(": ") == std::string::npos || err.find("Error: ") == std::string::npos) {
        // raise_exception(message): the message must be in our Status.
        EXPECT_NE(out.status().ToString().find(err), std::string::npos) << out.status().ToString();
      }
      EXPECT_NE(out.status().ToString().find(tname + ":"), std::string::npos) << out.status().ToString();
    }
    ++compared;
  }
  EXPECT_EQ(templates.size(), 5u);
  EXPECT_GE(compared, 90);
}

TEST(ChatTemplateErrors, SyntaxErrorNamesLine) {
  auto tpl = ChatTemplate::Parse("line1\n{% if x %}\nbody\n{% for %}", "bad.jinja");
  ASSERT_FALSE(tpl.ok());
  EXPECT_NE(tpl.status().ToString().find("bad.jinja:4"), std::string::npos) << tpl.status().ToString();
  auto unclosed = ChatTemplate::Parse("a\n{% if x %}\nb", "open.jinja");
  ASSERT_FALSE(unclosed.ok());
}

TEST(ChatTemplateErrors, RaiseExceptionAndUndefinedAttribute) {
  auto tpl = ChatTemplate::Parse("x\n\n{{ raise_exception('boom ' ~ n) }}", "r.jinja");
  ASSERT_TRUE(tpl.ok());
  auto out = tpl.value().Render(R"({"n": 3})");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().ToString().find("r.jinja:3"), std::string::npos) << out.status().ToString();
  EXPECT_NE(out.status().ToString().find("boom 3"), std::string::npos) << out.status().ToString();
  auto u = ChatTemplate::Parse("{{ missing.attr }}", "u.jinja");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u.value().Render("{}").ok());
  EXPECT_FALSE(u.value().Render("not json").ok());
  EXPECT_FALSE(u.value().Render("[1]").ok());
}

}  // namespace
}  // namespace arle::tokenizer

namespace arle::tokenizer {
namespace {

// One small template per engine feature (printing, floats, operators, slicing, str/dict methods,
// filters, tests, loops, scoping, macros, whitespace control), each compared with jinja2's output.
TEST(ChatTemplateFeatures, EachFeatureMatchesJinja2) {
  auto doc = nlohmann::ordered_json::parse(ReadText(kDir + "features.json"));
  std::string context = doc["context"].dump();
  int n = 0;
  for (const auto& f : doc["features"]) {
    std::string name = f["name"].get<std::string>();
    auto tpl = ChatTemplate::Parse(f["template"].get<std::string>(), name);
    ASSERT_TRUE(tpl.ok()) << tpl.status().ToString();
    auto out = tpl.value().Render(context);
    if (f.contains("output")) {
      ASSERT_TRUE(out.ok()) << name << ": " << out.status().ToString();
      EXPECT_EQ(out.value(), f["output"].get<std::string>()) << name;
    } else {
      EXPECT_FALSE(out.ok()) << name << " rendered '" << out.value() << "' but jinja2 raised " << f["error"];
    }
    ++n;
  }
  EXPECT_GE(n, 30);
}

}  // namespace
}  // namespace arle::tokenizer

namespace arle::tokenizer {
namespace {

TEST(ChatTemplateGlobals, StrftimeNowFormatsTheCurrentYear) {
  auto tpl = ChatTemplate::Parse("{{ strftime_now('%Y') | length }}", "t.jinja");
  ASSERT_TRUE(tpl.ok());
  auto out = tpl.value().Render("{}");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out.value(), "4");
}

}  // namespace
}  // namespace arle::tokenizer
