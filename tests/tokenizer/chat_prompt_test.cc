// Tests for tokenizer/chat_prompt: where a model's chat template comes from (--chat-template file,
// chat_template.jinja, tokenizer_config.json's string or named list, GGUF tokenizer.chat_template,
// the plain fallback), the special-token strings handed to it, and rendering with tools and
// template variables.
#include "arle/tokenizer/chat_prompt.h"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "arle/core/file_util.h"
#include "arle/io/gguf.h"
#include "tests/common/temp_dir.h"

namespace arle::tokenizer {
namespace {

using Json = nlohmann::ordered_json;
using test::TempDir;

// A SentencePiece-style vocabulary with <s> and </s>, enough for the special-token strings.
std::unique_ptr<Tokenizer> SmallTokenizer() {
  SentencePieceVocab vocab;
  vocab.pieces = {"<unk>", "<s>", "</s>", "▁a", "b"};
  vocab.scores = {0, 0, 0, -1, -2};
  vocab.unk_id = 0;
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  auto tok = Tokenizer::FromSentencePiece(vocab, "small");
  ARLE_CHECK(tok.ok()) << tok.status().ToString();
  return std::move(tok).value();
}

io::ModelLocation HfDir(const std::string& path) {
  return {io::ModelLocation::Kind::kHfDirectory, path, "test directory"};
}

void Write(const std::string& path, const std::string& text) {
  ASSERT_TRUE(core::WriteFileAtomic(path, text).ok()) << path;
}

std::string Render(const ChatSetup& setup, const Json& messages = Json::array(),
                   const Json& tools = nullptr, const Json& kwargs = Json::object()) {
  auto r = RenderChat(setup, messages, tools, /*add_generation_prompt=*/true, kwargs);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : "";
}

TEST(ChatPrompt, FallbackJoinsContentsWithTheTokenizersSpecialTokens) {
  TempDir dir;
  auto tok = SmallTokenizer();
  auto setup = LoadChatSetup(HfDir(dir.path()), *tok, "");
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_TRUE(setup->is_fallback);
  EXPECT_EQ(setup->bos_token, "<s>");
  EXPECT_EQ(setup->eos_token, "</s>");
  const Json messages = Json::parse(R"([{"role":"system","content":"one"},
                                        {"role":"user","content":"two"}])");
  EXPECT_EQ(Render(*setup, messages), "one\ntwo");
}

TEST(ChatPrompt, SourcesInOrderOfPrecedence) {
  TempDir dir;
  auto tok = SmallTokenizer();
  Write(dir.File("tokenizer_config.json"),
        R"({"chat_template": "config {{ bos_token }}{{ eos_token }}",
            "bos_token": {"content": "<B>"}, "eos_token": "<E>"})");
  auto setup = LoadChatSetup(HfDir(dir.path()), *tok, "");
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_FALSE(setup->is_fallback);
  EXPECT_EQ(setup->source, dir.File("tokenizer_config.json"));
  EXPECT_EQ(Render(*setup), "config <B><E>");

  Write(dir.File("chat_template.jinja"), "jinja file");
  setup = LoadChatSetup(HfDir(dir.path()), *tok, "");
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(setup->source, dir.File("chat_template.jinja"));
  EXPECT_EQ(Render(*setup), "jinja file");

  Write(dir.File("override.jinja"), "override {{ add_generation_prompt }}");
  setup = LoadChatSetup(HfDir(dir.path()), *tok, dir.File("override.jinja"));
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(setup->source, dir.File("override.jinja"));
  EXPECT_EQ(Render(*setup), "override True");
}

TEST(ChatPrompt, TokenizerConfigTemplateLists) {
  TempDir dir;
  auto tok = SmallTokenizer();
  const std::string config = dir.File("tokenizer_config.json");
  Write(config, R"({"chat_template": [{"name": "tool_use", "template": "tools"},
                                      {"name": "default", "template": "default"}]})");
  auto setup = LoadChatSetup(HfDir(dir.path()), *tok, "");
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(Render(*setup), "default");

  Write(config, R"({"chat_template": [{"name": "only", "template": "the only one"}]})");
  setup = LoadChatSetup(HfDir(dir.path()), *tok, "");
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(Render(*setup), "the only one");

  for (const char* bad : {R"({"chat_template": [{"name": "a", "template": "a"},
                                                {"name": "b", "template": "b"}]})",
                          R"({"chat_template": [{"name": "default"}]})",
                          R"({"chat_template": 3})", R"([1, 2])"}) {
    Write(config, bad);
    setup = LoadChatSetup(HfDir(dir.path()), *tok, "");
    ASSERT_FALSE(setup.ok()) << bad;
    EXPECT_EQ(setup.status().code(), core::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(setup.status().message().find(config), std::string::npos) << bad;
  }
}

TEST(ChatPrompt, GgufTemplate) {
  TempDir dir;
  auto tok = SmallTokenizer();
  io::GgufWriter writer;
  writer.AddString("general.architecture", "llama");
  writer.AddString("tokenizer.chat_template", "gguf {{ messages[0]['content'] }}");
  ASSERT_TRUE(writer.Write(dir.File("m.gguf")).ok());
  const io::ModelLocation location{io::ModelLocation::Kind::kGguf, dir.File("m.gguf"), "gguf"};
  auto setup = LoadChatSetup(location, *tok, "");
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_FALSE(setup->is_fallback);
  EXPECT_EQ(setup->source, dir.File("m.gguf") + " (tokenizer.chat_template)");
  EXPECT_EQ(Render(*setup, Json::parse(R"([{"role":"user","content":"hi"}])")), "gguf hi");

  // Already parsed by the caller: the same result without opening the file again.
  auto gguf = io::GgufFile::Open(dir.File("m.gguf"));
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  const io::ModelLocation moved{io::ModelLocation::Kind::kGguf, dir.File("gone.gguf"), "gguf"};
  setup = LoadChatSetup(moved, *tok, "", &*gguf);
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_FALSE(setup->is_fallback);
}

TEST(ChatPrompt, RenderPassesToolsAndVariables) {
  TempDir dir;
  auto tok = SmallTokenizer();
  Write(dir.File("chat_template.jinja"),
        "{{ tools | length if tools is defined else 'none' }}/{{ enable_thinking }}");
  auto setup = LoadChatSetup(HfDir(dir.path()), *tok, "");
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(Render(*setup, Json::array(), Json::parse(R"([{"type":"function"}, {}])"),
                   Json::parse(R"({"enable_thinking": false})")),
            "2/False");
  EXPECT_EQ(Render(*setup, Json::array(), nullptr, Json::parse(R"({"enable_thinking": true})")),
            "none/True");

  EXPECT_FALSE(RenderChat(*setup, Json::object(), nullptr, true, Json::object()).ok());
  EXPECT_FALSE(RenderChat(*setup, Json::array(), Json::object(), true, Json::object()).ok());
}

TEST(ChatPrompt, ThinkingKwargs) {
  EXPECT_EQ(ThinkingKwargs("")->dump(), "{}");
  EXPECT_EQ(ThinkingKwargs("true")->dump(), R"({"enable_thinking":true})");
  EXPECT_EQ(ThinkingKwargs("1")->dump(), R"({"enable_thinking":true})");
  EXPECT_EQ(ThinkingKwargs("false")->dump(), R"({"enable_thinking":false})");
  EXPECT_EQ(ThinkingKwargs("0")->dump(), R"({"enable_thinking":false})");
  auto bad = ThinkingKwargs("maybe");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace arle::tokenizer
