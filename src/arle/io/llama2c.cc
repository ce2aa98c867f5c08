// llama2.c files: checkpoint header and weight layout, tokenizer.bin, and the Hugging Face
// tokenizer files of a llama2.c vocabulary.
#include "arle/io/llama2c.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>
#include <utility>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "arle/core/check.h"


namespace arle::io {
namespace {

using Json = nlohmann::ordered_json;

constexpr uint32_t kVersionedMagic = 0x616b3432;  // "ak42": llama2.c export.py --version >= 1
// Far above any real model, small enough that every size product below fits in int64.
constexpr int64_t kMaxDim = int64_t{1} << 20;
constexpr const char* kSpaceMarker = "\xe2\x96\x81";  // U+2581 "▁"

int32_t ReadI32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Adds a*b to *total; false on overflow.
bool AddProduct(int64_t a, int64_t b, int64_t* total) {
  int64_t prod;
  if (__builtin_mul_overflow(a, b, &prod)) return false;
  return !__builtin_add_overflow(*total, prod, total);
}

// Byte length of the UTF-8 sequence starting at s[i], or 0 when it is invalid.
size_t Utf8SeqLen(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<uint8_t>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  static constexpr uint32_t kMinCp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinCp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Codepoint boundaries of a valid UTF-8 string (0 and size() included); empty when invalid.
std::vector<size_t> Utf8Boundaries(std::string_view s) {
  std::vector<size_t> b{0};
  for (size_t i = 0; i < s.size();) {
    const size_t len = Utf8SeqLen(s, i);
    if (len == 0) return {};
    i += len;
    b.push_back(i);
  }
  return b;
}

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// The HF-side spelling of llama2.c piece `id`.
std::string HfPiece(const Llama2cToken& token, size_t id) {
  if (id == 0) return "<unk>";
  if (id == 1) return "<s>";
  if (id == 2) return "</s>";
  return ReplaceAll(token.piece, " ", kSpaceMarker);
}

Json AddedToken(int id, const std::string& content) {
  return Json{{"id", id},           {"content", content}, {"single_word", false},
              {"lstrip", false},    {"rstrip", false},    {"normalized", false},
              {"special", true}};
}

Json SpecialTokenItem(const char* id, int type_id) {
  return Json{{"SpecialToken", {{"id", id}, {"type_id", type_id}}}};
}
Json SequenceItem(const char* id, int type_id) {
  return Json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
}

}  // namespace

std::string Llama2cTokenizerConfigJson(int32_t model_max_length) {
  Json added = Json::object();
  const char* names[3] = {"<unk>", "<s>", "</s>"};
  for (int id = 0; id < 3; ++id) {
    added[std::to_string(id)] = {{"content", names[id]}, {"lstrip", false},
                                 {"normalized", false},  {"rstrip", false},
                                 {"single_word", false}, {"special", true}};
  }
  Json config = {{"add_bos_token", true},
                 {"add_eos_token", false},
                 {"added_tokens_decoder", added},
                 {"bos_token", "<s>"},
                 {"clean_up_tokenization_spaces", false},
                 {"eos_token", "</s>"},
                 {"legacy", true},
                 {"model_max_length", model_max_length},
                 {"pad_token", nullptr},
                 {"sp_model_kwargs", Json::object()},
                 {"tokenizer_class", "LlamaTokenizer"},
                 {"unk_token", "<unk>"}};
  return config.dump(2) + "\n";
}

core::StatusOr<Llama2cConfig> ParseLlama2cHeader(std::span<const uint8_t> bytes,
                                                 const std::string& name) {
  if (bytes.size() < kLlama2cHeaderBytes) {
    return core::DataLossError(
        fmt::format("{}: truncated llama2.c checkpoint: {} bytes, the header alone needs {}", name,
                    bytes.size(), kLlama2cHeaderBytes));
  }
  int32_t h[7];
  for (int i = 0; i < 7; ++i) h[i] = ReadI32(bytes.data() + 4 * i);
  if (static_cast<uint32_t>(h[0]) == kVersionedMagic) {
    return core::UnimplementedError(
        fmt::format("{}: llama2.c export version {} (magic \"ak42\") is not supported", name, h[1]),
        "re-export the checkpoint with llama2.c's legacy format (export.py --version 0)");
  }
  Llama2cConfig c;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.shared_classifier = h[5] > 0;
  c.seq_len = h[6];
  const int64_t vocab = h[5] < 0 ? -static_cast<int64_t>(h[5]) : h[5];
  const std::pair<const char*, int64_t> fields[] = {
      {"dim", c.dim},           {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers},
      {"n_heads", c.n_heads},   {"n_kv_heads", c.n_kv_heads}, {"vocab_size", vocab},
      {"seq_len", c.seq_len}};
  for (const auto& [field, value] : fields) {
    if (value <= 0 || value > kMaxDim) {
      return core::DataLossError(fmt::format(
          "{}: bad llama2.c header: {} = {} (must be in 1..{})", name, field, value, kMaxDim));
    }
  }
  c.vocab_size = static_cast<int32_t>(vocab);
  if (c.dim % c.n_heads != 0 || (c.dim / c.n_heads) % 2 != 0) {
    return core::DataLossError(fmt::format(
        "{}: bad llama2.c header: dim {} is not n_heads {} times an even head size", name, c.dim,
        c.n_heads));
  }
  if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0) {
    return core::DataLossError(
        fmt::format("{}: bad llama2.c header: n_heads {} is not a multiple of n_kv_heads {}", name,
                    c.n_heads, c.n_kv_heads));
  }
  const int64_t dim = c.dim, hd = c.head_dim(), layers = c.n_layers;
  const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
  int64_t floats = 0;
  bool ok = AddProduct(vocab, dim, &floats) &&                          // token_embedding_table
            AddProduct(layers, dim, &floats) &&                         // rms_att_weight
            AddProduct(layers, dim * q_dim, &floats) &&                 // wq
            AddProduct(layers, 2 * dim * kv_dim, &floats) &&            // wk, wv
            AddProduct(layers, q_dim * dim, &floats) &&                 // wo
            AddProduct(layers, dim, &floats) &&                         // rms_ffn_weight
            AddProduct(layers, 3 * dim * int64_t{c.hidden_dim}, &floats) &&  // w1, w2, w3
            AddProduct(1, dim, &floats) &&                              // rms_final_weight
            AddProduct(c.seq_len, hd, &floats) &&                       // freq_cis_real + imag
            (c.shared_classifier || AddProduct(vocab, dim, &floats));   // wcls
  int64_t expected = 0;
  ok = ok && !__builtin_mul_overflow(floats, int64_t{4}, &expected) &&
       !__builtin_add_overflow(expected, static_cast<int64_t>(kLlama2cHeaderBytes), &expected);
  if (!ok) {
    return core::DataLossError(
        fmt::format("{}: bad llama2.c header: the sizes overflow", name));
  }
  if (static_cast<int64_t>(bytes.size()) != expected) {
    return core::DataLossError(fmt::format(
        "{}: size mismatch: the llama2.c header (dim {}, hidden_dim {}, n_layers {}, n_heads {}, "
        "n_kv_heads {}, vocab_size {}{}, seq_len {}) implies {} bytes, the file has {}",
        name, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
        c.shared_classifier ? "" : " unshared", c.seq_len, expected, bytes.size()),
        bytes.size() < static_cast<size_t>(expected) ? "the file is truncated" : "");
  }
  return c;
}

core::StatusOr<std::vector<Llama2cToken>> ParseLlama2cTokenizer(std::span<const uint8_t> bytes,
                                                                int32_t vocab_size,
                                                                const std::string& name) {
  if (bytes.size() < 4) {
    return core::DataLossError(
        fmt::format("{}: truncated llama2.c tokenizer: no max_token_length", name));
  }
  const int32_t max_len = ReadI32(bytes.data());
  if (max_len <= 0) {
    return core::DataLossError(
        fmt::format("{}: bad llama2.c tokenizer: max_token_length {}", name, max_len));
  }
  std::vector<Llama2cToken> tokens;
  tokens.reserve(static_cast<size_t>(std::max(vocab_size, 0)));
  size_t off = 4;
  for (int32_t id = 0; id < vocab_size; ++id) {
    if (bytes.size() - off < 8) {
      return core::DataLossError(fmt::format(
          "{}: truncated llama2.c tokenizer: token {} of {} is missing", name, id, vocab_size),
          "is this the tokenizer the model was trained with?");
    }
    Llama2cToken token;
    std::memcpy(&token.score, bytes.data() + off, 4);
    const int32_t len = ReadI32(bytes.data() + off + 4);
    off += 8;
    if (len < 0 || len > max_len) {
      return core::DataLossError(
          fmt::format("{}: bad llama2.c tokenizer: token {} has length {} (max_token_length {})",
                      name, id, len, max_len));
    }
    if (bytes.size() - off < static_cast<size_t>(len)) {
      return core::DataLossError(fmt::format(
          "{}: truncated llama2.c tokenizer: token {} needs {} bytes, {} left", name, id, len,
          bytes.size() - off));
    }
    token.piece.assign(reinterpret_cast<const char*>(bytes.data() + off), len);
    off += len;
    tokens.push_back(std::move(token));
  }
  if (off != bytes.size()) {
    return core::DataLossError(
        fmt::format("{}: {} trailing bytes after the {} tokens the model's vocab_size asks for",
                    name, bytes.size() - off, vocab_size),
        "the tokenizer does not match the model's vocabulary size");
  }
  return tokens;
}

core::StatusOr<std::string> Llama2cTokenizerJson(const std::vector<Llama2cToken>& tokens) {
  ARLE_CHECK_GE(tokens.size(), 3u);
  std::vector<std::string> pieces;
  pieces.reserve(tokens.size());
  std::unordered_map<std::string, int> ids;
  for (size_t id = 0; id < tokens.size(); ++id) {
    std::string piece = HfPiece(tokens[id], id);
    if (Utf8Boundaries(piece).empty()) {
      return core::InvalidArgumentError(
          fmt::format("llama2.c tokenizer: token {} is not valid UTF-8", id));
    }
    if (!ids.emplace(piece, static_cast<int>(id)).second) {
      return core::InvalidArgumentError(fmt::format(
          "llama2.c tokenizer: token {} duplicates token {} (\"{}\")", id, ids[piece], piece));
    }
    pieces.push_back(std::move(piece));
  }

  // transformers' SentencePieceExtractor: per piece (in id order) every split into two vocabulary
  // pieces, sorted by the halves' ids; then a stable sort of all merges by score, highest first.
  struct Merge {
    int left, right;
    float score;
  };
  std::vector<Merge> merges;
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& piece = pieces[id];
    const std::vector<size_t> cuts = Utf8Boundaries(piece);
    std::vector<Merge> local;
    for (size_t k = 1; k + 1 < cuts.size(); ++k) {
      auto l = ids.find(piece.substr(0, cuts[k]));
      auto r = ids.find(piece.substr(cuts[k]));
      if (l != ids.end() && r != ids.end()) local.push_back({l->second, r->second, tokens[id].score});
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return std::pair(a.left, a.right) < std::pair(b.left, b.right);
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });

  Json vocab = Json::object();
  for (size_t id = 0; id < pieces.size(); ++id) vocab[pieces[id]] = id;
  Json merge_list = Json::array();
  for (const Merge& m : merges) merge_list.push_back(pieces[m.left] + " " + pieces[m.right]);

  Json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  doc["added_tokens"] = Json::array({AddedToken(0, "<unk>"), AddedToken(1, "<s>"),
                                     AddedToken(2, "</s>")});
  doc["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       Json::array({Json{{"type", "Prepend"}, {"prepend", kSpaceMarker}},
                    Json{{"type", "Replace"},
                         {"pattern", {{"String", " "}}},
                         {"content", kSpaceMarker}}})}};
  doc["pre_tokenizer"] = nullptr;
  doc["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", Json::array({SpecialTokenItem("<s>", 0), SequenceItem("A", 0)})},
      {"pair", Json::array({SpecialTokenItem("<s>", 0), SequenceItem("A", 0),
                            SpecialTokenItem("<s>", 1), SequenceItem("B", 1)})},
      {"special_tokens",
       {{"<s>", {{"id", "<s>"}, {"ids", Json::array({1})}, {"tokens", Json::array({"<s>"})}}}}}};
  doc["decoder"] = {
      {"type", "Sequence"},
      {"decoders",
       Json::array({Json{{"type", "Replace"}, {"pattern", {{"String", kSpaceMarker}}},
                         {"content", " "}},
                    Json{{"type", "ByteFallback"}}, Json{{"type", "Fuse"}},
                    Json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  doc["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", "<unk>"},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", true},
                  {"byte_fallback", true},
                  {"vocab", std::move(vocab)},
                  {"merges", std::move(merge_list)}};
  return doc.dump(2) + "\n";
}

Llama2cWeights Llama2cWeightArrays(const Llama2cConfig& c, std::span<const uint8_t> bytes) {
  const int64_t dim = c.dim, hd = c.head_dim(), layers = c.n_layers, ff = c.hidden_dim;
  const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd, vocab = c.vocab_size;
  ARLE_CHECK_GE(bytes.size(), kLlama2cHeaderBytes);
  const float* ptr = reinterpret_cast<const float*>(bytes.data() + kLlama2cHeaderBytes);
  auto take = [&ptr](int64_t n) {
    const float* p = ptr;
    ptr += n;
    return p;
  };
  Llama2cWeights w;
  w.token_embedding = take(vocab * dim);
  w.rms_att = take(layers * dim);
  w.wq = take(layers * q_dim * dim);
  w.wk = take(layers * kv_dim * dim);
  w.wv = take(layers * kv_dim * dim);
  w.wo = take(layers * dim * q_dim);
  w.rms_ffn = take(layers * dim);
  w.w1 = take(layers * ff * dim);
  w.w2 = take(layers * dim * ff);
  w.w3 = take(layers * ff * dim);
  w.rms_final = take(dim);
  take(c.seq_len * hd);  // freq_cis_real and freq_cis_imag: recomputed by every runtime
  w.wcls = c.shared_classifier ? nullptr : take(vocab * dim);
  const auto used = static_cast<size_t>(reinterpret_cast<const uint8_t*>(ptr) - bytes.data());
  ARLE_CHECK_EQ(used, bytes.size()) << "the llama2.c header does not describe these bytes";
  return w;
}

}  // namespace arle::io
