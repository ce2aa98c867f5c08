// Shared helpers for the train tests: fixture paths and the Qwen3 tokenizer (assets/).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "arle/tokenizer/tokenizer.h"

namespace arle::train::testing {

inline std::string DataPath(const std::string& rel) { return std::string(ARLE_TEST_DATA_DIR) + "/" + rel; }
inline std::string SourcePath(const std::string& rel) { return std::string(ARLE_SOURCE_DIR) + "/" + rel; }

// The Qwen3 tokenizer (EOS <|im_end|>), loaded once per test binary.
inline const tokenizer::Tokenizer& Qwen3() {
  static const tokenizer::Tokenizer* tok = [] {
    auto t = tokenizer::LoadTokenizerForModelDir(SourcePath("assets/tokenizers/qwen3"));
    if (!t.ok()) {
      ADD_FAILURE() << t.status().ToString();
      std::abort();
    }
    return t->release();
  }();
  return *tok;
}

}  // namespace arle::train::testing
