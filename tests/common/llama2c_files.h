// llama2.c test files: the stories260K checkpoint and tok512 tokenizer in assets/, and a small
// synthetic checkpoint + tokenizer whose every weight is unique (so layouts can be checked value by
// value). Shared by the io format tests and the llama family's import tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <span>
#include <string>

#include "arle/core/file_util.h"

namespace arle::test {

inline const std::string kStoriesBin =
    std::string(ARLE_SOURCE_DIR) + "/assets/models/stories260K/stories260K.bin";
inline const std::string kTokBin =
    std::string(ARLE_SOURCE_DIR) + "/assets/models/stories260K/tok512.bin";

// The file's bytes; an empty string (and a test failure) when it cannot be read.
inline std::string ReadFileOrFail(const std::string& path) {
  auto data = core::ReadFile(path);
  EXPECT_TRUE(data.ok()) << data.status().ToString();
  return data.ok() ? *data : std::string();
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A synthetic llama2.c checkpoint: dim 8, hidden 12, 2 layers, 2 heads (head_dim 4), 1 kv head,
// vocab 16, seq_len 4; value i of the file's float array is i * 0.001 so every weight is unique.
struct SyntheticLlama2c {
  int32_t dim = 8, hidden = 12, layers = 2, heads = 2, kv_heads = 1, vocab = 16, seq_len = 4;
  bool shared = true;

  int64_t NumFloats() const {
    const int64_t hd = dim / heads, q = heads * hd, kv = kv_heads * hd;
    return int64_t{vocab} * dim + layers * (2 * dim + dim * q + 2 * dim * kv + q * dim +
                                            3 * int64_t{dim} * hidden) +
           dim + seq_len * hd + (shared ? 0 : int64_t{vocab} * dim);
  }
  std::string Model() const {
    std::string s;
    for (int32_t v : {dim, hidden, layers, heads, kv_heads, shared ? vocab : -vocab, seq_len}) {
      AppendI32(&s, v);
    }
    for (int64_t i = 0; i < NumFloats(); ++i) AppendF32(&s, static_cast<float>(i) * 0.001f);
    return s;
  }
  std::string Tokenizer() const {
    std::string s;
    AppendI32(&s, 8);
    const char* pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", " a", "ab",
                            " ab", "c", " c", "bc", "abc", "d", "\xc3\xa9", "x"};
    for (int i = 0; i < vocab; ++i) {
      AppendF32(&s, i < 3 ? 0.0f : -static_cast<float>(i));
      AppendI32(&s, static_cast<int32_t>(std::strlen(pieces[i])));
      s += pieces[i];
    }
    return s;
  }

  static void AppendI32(std::string* s, int32_t v) {
    s->append(reinterpret_cast<const char*>(&v), 4);
  }
  static void AppendF32(std::string* s, float v) {
    s->append(reinterpret_cast<const char*>(&v), 4);
  }
};

}  // namespace arle::test
