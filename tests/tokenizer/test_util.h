// Shared helpers for the tokenizer tests: fixture paths, llama.cpp .inp/.out vectors, golden cases.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "arle/core/file_util.h"
#include "arle/io/compressed.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::tokenizer::testing {

inline std::string DataPath(const std::string& rel) { return std::string(ARLE_TEST_DATA_DIR) + "/" + rel; }
inline std::string SourcePath(const std::string& rel) { return std::string(ARLE_SOURCE_DIR) + "/" + rel; }

inline std::string ReadOrDie(const std::string& path) {
  auto bytes = io::ReadMaybeGzipFile(path);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : std::string();
}

struct Case {
  std::string text;
  std::string decoded;
  std::vector<int32_t> ids;
};

// llama.cpp's test-tokenizer-0 format: cases separated by "\n__ggml_vocab_test__\n" in .inp, one
// line of space-separated ids per case in .out.
inline std::vector<Case> ReadLlamaCppVectors(const std::string& inp_path, const std::string& out_path) {
  const std::string inp = ReadOrDie(inp_path);
  const std::string out = ReadOrDie(out_path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  size_t pos = 0;
  while (pos < inp.size()) {
    size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) hit = inp.size();
    cases.push_back({inp.substr(pos, hit - pos), "", {}});
    pos = hit + sep.size();
  }
  size_t line_start = 0;
  for (auto& c : cases) {
    size_t end = out.find('\n', line_start);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(line_start, end - line_start);
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && line[i] == ' ') ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ') ++j;
      if (j > i) c.ids.push_back(static_cast<int32_t>(std::stol(line.substr(i, j - i))));
      i = j;
    }
    line_start = end + 1;
  }
  return cases;
}

// {"cases": [{"text", "decoded"?, "ids"}]} written by tests/reference/tokenizer_reference.py.
inline std::vector<Case> ReadGoldenCases(const std::string& path) {
  auto j = nlohmann::json::parse(ReadOrDie(path));
  std::vector<Case> cases;
  for (const auto& c : j.at("cases")) {
    Case k;
    k.text = c.at("text").get<std::string>();
    k.decoded = c.contains("decoded") ? c.at("decoded").get<std::string>() : k.text;
    k.ids = c.at("ids").get<std::vector<int32_t>>();
    cases.push_back(std::move(k));
  }
  return cases;
}

inline std::string Printable(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out;
}

// The Qwen3 tokenizer, loaded once per test binary.
inline const Tokenizer& Qwen3() {
  static const Tokenizer* tok = [] {
    auto t = LoadTokenizerForModelDir(SourcePath("assets/tokenizers/qwen3"));
    if (!t.ok()) {
      ADD_FAILURE() << t.status().ToString();
      std::abort();
    }
    return t->release();
  }();
  return *tok;
}

}  // namespace arle::tokenizer::testing
