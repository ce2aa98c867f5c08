// Tokenizer::FromGguf: llama.cpp's `tokenizer.ggml.*` metadata. Model "gpt2" is byte-level BPE
// with merges and a pre-tokenizer regex chosen by `tokenizer.ggml.pre`; "llama" is SentencePiece
// merged by piece score.
#include "arle/io/gguf.h"
#include "arle/tokenizer/tokenizer.h"
#include "arle/tokenizer/tokenizer_impl.h"

namespace arle::tokenizer {
namespace {

core::StatusOr<std::vector<std::string>> StringArray(const io::GgufFile& gguf, const std::string& key) {
  const io::GgufValue* v = gguf.Find(key);
  if (v == nullptr) return core::NotFoundError(gguf.path() + ": missing metadata key " + key);
  const io::GgufArray* a = v->AsArray();
  if (a == nullptr) return core::InvalidArgumentError(gguf.path() + ": " + key + " is not an array");
  std::vector<std::string> out;
  out.reserve(a->values.size());
  for (const auto& item : a->values) {
    const std::string* s = item.AsString();
    if (s == nullptr) return core::InvalidArgumentError(gguf.path() + ": " + key + " holds a non-string");
    out.push_back(*s);
  }
  return out;
}

core::StatusOr<std::vector<int64_t>> IntArray(const io::GgufFile& gguf, const std::string& key) {
  const io::GgufValue* v = gguf.Find(key);
  if (v == nullptr) return std::vector<int64_t>();
  const io::GgufArray* a = v->AsArray();
  if (a == nullptr) return core::InvalidArgumentError(gguf.path() + ": " + key + " is not an array");
  std::vector<int64_t> out;
  out.reserve(a->values.size());
  for (const auto& item : a->values) {
    auto i = item.AsInt();
    if (!i) return core::InvalidArgumentError(gguf.path() + ": " + key + " holds a non-integer");
    out.push_back(*i);
  }
  return out;
}

std::optional<int32_t> OptionalId(const io::GgufFile& gguf, const std::string& key, size_t n) {
  const io::GgufValue* v = gguf.Find(key);
  if (v == nullptr) return std::nullopt;
  auto i = v->AsInt();
  if (!i || *i < 0 || static_cast<size_t>(*i) >= n) return std::nullopt;
  return static_cast<int32_t>(*i);
}

std::optional<bool> OptionalBool(const io::GgufFile& gguf, const std::string& key) {
  const io::GgufValue* v = gguf.Find(key);
  if (v == nullptr) return std::nullopt;
  return v->AsBool();
}

// llama.cpp's pre-tokenizer names -> regex (llama-vocab.cpp).
const char* RegexForPre(const std::string& pre) {
  if (pre == "default" || pre == "gpt-2" || pre == "gpt2" || pre == "") return internal::kGpt2Regex;
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return internal::kQwen2Regex;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "smaug-bpe") return internal::kLlama3Regex;
  return nullptr;
}

}  // namespace

core::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const io::GgufFile& gguf) {
  const std::string& source = gguf.path();
  auto model_name = gguf.GetString("tokenizer.ggml.model");
  if (!model_name.ok()) {
    return core::NotFoundError(source + ": no tokenizer.ggml.model (the GGUF carries no vocabulary)");
  }
  ARLE_ASSIGN_OR_RETURN(std::vector<std::string> tokens, StringArray(gguf, "tokenizer.ggml.tokens"));
  ARLE_ASSIGN_OR_RETURN(std::vector<int64_t> types, IntArray(gguf, "tokenizer.ggml.token_type"));
  const size_t n = tokens.size();
  if (n == 0) return core::InvalidArgumentError(source + ": tokenizer.ggml.tokens is empty");
  if (!types.empty() && types.size() != n) {
    return core::InvalidArgumentError(source + ": tokenizer.ggml.token_type has " +
                                      std::to_string(types.size()) + " entries for " +
                                      std::to_string(n) + " tokens");
  }
  std::optional<int32_t> bos = OptionalId(gguf, "tokenizer.ggml.bos_token_id", n);
  std::optional<int32_t> eos = OptionalId(gguf, "tokenizer.ggml.eos_token_id", n);
  std::optional<int32_t> unk = OptionalId(gguf, "tokenizer.ggml.unknown_token_id", n);
  std::optional<bool> add_bos = OptionalBool(gguf, "tokenizer.ggml.add_bos_token");

  if (*model_name == "llama") {
    SentencePieceVocab vocab;
    vocab.pieces = std::move(tokens);
    const io::GgufValue* scores = gguf.Find("tokenizer.ggml.scores");
    const io::GgufArray* sa = scores != nullptr ? scores->AsArray() : nullptr;
    if (sa == nullptr || sa->values.size() != n) {
      return core::InvalidArgumentError(source + ": tokenizer.ggml.scores missing or of the wrong length");
    }
    for (const auto& s : sa->values) vocab.scores.push_back(static_cast<float>(s.AsFloat().value_or(0.0)));
    for (int64_t t : types) vocab.types.push_back(static_cast<TokenType>(t));
    vocab.unk_id = unk;
    vocab.bos_id = bos;
    vocab.eos_id = eos;
    vocab.add_bos = add_bos.value_or(true);
    vocab.add_space_prefix = OptionalBool(gguf, "tokenizer.ggml.add_space_prefix").value_or(true);
    return FromSentencePiece(vocab, source);
  }
  if (*model_name != "gpt2") {
    return core::UnimplementedError(source + ": tokenizer.ggml.model \"" + *model_name +
                                    "\" is not supported (arle supports \"gpt2\" and \"llama\")");
  }
  auto pre_value = gguf.GetString("tokenizer.ggml.pre");
  const std::string pre = pre_value.ok() ? *pre_value : "default";
  const char* regex = RegexForPre(pre);
  if (regex == nullptr) {
    return core::UnimplementedError(source + ": tokenizer.ggml.pre \"" + pre +
                                    "\" is not supported (known: default, gpt-2, qwen2, llama-bpe, "
                                    "llama3, smaug-bpe)");
  }
  auto p = std::make_unique<internal::Parts>();
  p->source = source;
  p->id_to_token = tokens;
  p->token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    p->token_to_id.emplace(tokens[i], static_cast<int32_t>(i));
    auto type = types.empty() ? TokenType::kNormal : static_cast<TokenType>(types[i]);
    if ((type == TokenType::kControl || type == TokenType::kUserDefined) && !tokens[i].empty()) {
      internal::AddedToken t;
      t.id = static_cast<int32_t>(i);
      t.content = tokens[i];
      t.special = type == TokenType::kControl;
      p->added.push_back(std::move(t));
    }
  }
  ARLE_ASSIGN_OR_RETURN(std::vector<std::string> merges, StringArray(gguf, "tokenizer.ggml.merges"));
  p->model.merges.reserve(merges.size());
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& m = merges[rank];
    size_t space = m.find(' ');
    auto bad = [&](const std::string& why) {
      return core::InvalidArgumentError(source + ": tokenizer.ggml.merges[" + std::to_string(rank) +
                                        "] \"" + m + "\" " + why);
    };
    if (space == std::string::npos || space == 0 || space + 1 >= m.size()) {
      return bad("is not two tokens separated by a space");
    }
    std::string_view a = std::string_view(m).substr(0, space), b = std::string_view(m).substr(space + 1);
    merged.assign(a);
    merged.append(b);
    auto ia = p->token_to_id.find(a), ib = p->token_to_id.find(b), im = p->token_to_id.find(merged);
    if (ia == p->token_to_id.end() || ib == p->token_to_id.end() || im == p->token_to_id.end()) {
      return bad("names a token that is not in the vocabulary");
    }
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(ia->second)) << 32) |
                   static_cast<uint32_t>(ib->second);
    p->model.merges.emplace(key, (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(im->second));
  }
  p->model.byte_level = true;
  internal::PreTokenizerStep split;
  split.kind = internal::PreTokenizerStep::Kind::kSplit;
  ARLE_ASSIGN_OR_RETURN(split.regex, internal::Regex::Compile(regex));
  p->pre_tokenizers.push_back(split);
  internal::DecoderStep decoder;
  decoder.kind = internal::DecoderStep::Kind::kByteLevel;
  p->decoders.push_back(decoder);
  p->bos_id = bos;
  p->eos_id = eos;
  // llama.cpp adds BOS for BPE vocabularies only when the GGUF asks for it.
  if (add_bos.value_or(false) && bos) p->prefix_ids.push_back(*bos);
  return Finish(std::move(p));
}

}  // namespace arle::tokenizer
