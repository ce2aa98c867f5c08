// Tokenizer: added-token splitting, the encode pipeline with its word cache, and decoding.
#include "arle/tokenizer/tokenizer.h"

#include <algorithm>

#include "arle/io/compressed.h"
#include "arle/tokenizer/tokenizer_impl.h"
#include "arle/tokenizer/unicode.h"

namespace arle::tokenizer {
namespace {

bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Words longer than this are encoded without caching (they are rare and would bloat the cache).
constexpr size_t kMaxCachedWordBytes = 256;

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<internal::Parts> parts) : p_(std::move(parts)) {}
Tokenizer::~Tokenizer() = default;

core::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Finish(std::unique_ptr<internal::Parts> p) {
  const auto& source = p->source;
  if (p->id_to_token.empty()) return core::InvalidArgumentError(source + ": the vocabulary is empty");
  const int32_t n = static_cast<int32_t>(p->id_to_token.size());
  p->is_special.resize(n, 0);
  for (const auto& t : p->added) {
    if (t.id < 0 || t.id >= n) {
      return core::InvalidArgumentError(source + ": added token id " + std::to_string(t.id) +
                                        " is out of range");
    }
    if (t.special) p->is_special[t.id] = 1;
  }
  auto check_id = [&](int32_t id, const char* what) -> core::Status {
    if (id < 0 || id >= n) {
      return core::InvalidArgumentError(source + ": " + what + " id " + std::to_string(id) +
                                        " is outside the vocabulary [0, " + std::to_string(n) + ")");
    }
    return core::OkStatus();
  };
  for (int32_t id : p->prefix_ids) ARLE_RETURN_IF_ERROR(check_id(id, "post-processor token"));
  for (int32_t id : p->suffix_ids) ARLE_RETURN_IF_ERROR(check_id(id, "post-processor token"));
  if (p->bos_id) ARLE_RETURN_IF_ERROR(check_id(*p->bos_id, "BOS"));
  if (p->eos_id) ARLE_RETURN_IF_ERROR(check_id(*p->eos_id, "EOS"));
  if (p->model.unk_id) ARLE_RETURN_IF_ERROR(check_id(*p->model.unk_id, "unk"));

  // A ByteLevel step without prefix space or regex only marks the model byte-level (done at parse).
  std::erase_if(p->pre_tokenizers, [](const internal::PreTokenizerStep& step) {
    return step.kind == internal::PreTokenizerStep::Kind::kByteLevel && !step.add_prefix_space &&
           !step.regex;
  });
  auto& model = p->model;
  for (int b = 0; b < 256; ++b) {
    model.byte_ids[b] = -1;
    model.fallback_ids[b] = -1;
    if (model.byte_level) {
      std::string ch;
      AppendCodePoint(ByteToCodePoint(static_cast<uint8_t>(b)), &ch);
      auto it = p->token_to_id.find(ch);
      if (it != p->token_to_id.end()) model.byte_ids[b] = it->second;
    }
    static const char* kHex = "0123456789ABCDEF";
    std::string piece = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
    auto it = p->token_to_id.find(piece);
    if (it != p->token_to_id.end()) model.fallback_ids[b] = it->second;
  }
  for (size_t i = 0; i < p->added.size(); ++i) {
    const auto& content = p->added[i].content;
    if (content.empty()) continue;
    p->added_by_first_byte[static_cast<uint8_t>(content[0])].push_back(static_cast<int>(i));
  }
  for (auto& list : p->added_by_first_byte) {
    std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
      return p->added[a].content.size() > p->added[b].content.size();
    });
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(p)));
}

void Tokenizer::EncodeText(std::string_view text, bool at_start, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  std::string normalized = internal::Normalize(p_->normalizers, text);
  std::vector<int32_t> scratch;
  auto encode_word = [&](std::string_view word) {
    if (word.empty()) return;
    const bool cacheable = word.size() <= kMaxCachedWordBytes;
    if (cacheable && p_->cache.Lookup(word, ids)) return;
    scratch.clear();
    p_->model.EncodeWord(word, p_->token_to_id, &scratch);
    if (cacheable) p_->cache.Insert(word, scratch);
    ids->insert(ids->end(), scratch.begin(), scratch.end());
  };
  const auto& steps = p_->pre_tokenizers;
  if (steps.size() == 1 && steps[0].kind == internal::PreTokenizerStep::Kind::kSplit &&
      steps[0].behavior == internal::SplitBehavior::kIsolated && !steps[0].invert) {
    // The common byte-level case (Qwen, Llama 3): one isolating regex; no per-piece copies.
    std::string_view view(normalized);
    size_t last = 0;
    steps[0].regex->ForEachMatch(view, [&](size_t start, size_t end) {
      if (start > last) encode_word(view.substr(last, start - last));
      encode_word(view.substr(start, end - start));
      last = end;
    });
    if (last < view.size()) encode_word(view.substr(last));
    return;
  }
  std::vector<std::string> words;
  internal::PreTokenize(steps, normalized, at_start, &words);
  for (const auto& word : words) encode_word(word);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (options.add_special_tokens) ids.insert(ids.end(), p_->prefix_ids.begin(), p_->prefix_ids.end());
  size_t segment_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto& candidates = p_->added_by_first_byte[static_cast<uint8_t>(text[i])];
    const internal::AddedToken* found = nullptr;
    for (int index : candidates) {
      const auto& token = p_->added[index];
      if (token.special && !options.parse_special) continue;
      if (text.substr(i).starts_with(token.content)) {
        found = &token;
        break;
      }
    }
    if (found == nullptr) {
      ++i;
      continue;
    }
    size_t start = i;
    size_t end = i + found->content.size();
    if (found->lstrip) {
      while (start > segment_start && IsAsciiSpace(text[start - 1])) --start;
    }
    if (found->rstrip) {
      while (end < text.size() && IsAsciiSpace(text[end])) ++end;
    }
    EncodeText(text.substr(segment_start, start - segment_start), segment_start == 0, &ids);
    ids.push_back(found->id);
    segment_start = i = end;
  }
  EncodeText(text.substr(segment_start), segment_start == 0, &ids);
  if (options.add_special_tokens) ids.insert(ids.end(), p_->suffix_ids.begin(), p_->suffix_ids.end());
  return ids;
}

void Tokenizer::DecodeAppend(int32_t id, bool skip_special, DecodeState* state,
                             std::string* bytes) const {
  if (id < 0 || id >= vocab_size()) return;
  const std::string& token = p_->id_to_token[id];
  if (token.empty()) return;  // an unassigned id
  if (skip_special && p_->is_special[id]) return;
  if (p_->decoders.empty()) {
    // Hugging Face joins tokens with spaces when there is no decoder.
    if (state->n_decoded++ > 0) bytes->push_back(' ');
    bytes->append(token);
    return;
  }
  internal::DecodeToken(p_->decoders, token, state, bytes);
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  DecodeState state;
  std::string bytes;
  for (int32_t id : ids) DecodeAppend(id, skip_special, &state, &bytes);
  return Utf8Lossy(bytes);
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(p_->id_to_token.size()); }

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  auto it = p_->token_to_id.find(token);
  if (it == p_->token_to_id.end()) return std::nullopt;
  return it->second;
}

std::string_view Tokenizer::IdToToken(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return p_->id_to_token[id];
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && p_->is_special[id] != 0;
}

std::optional<int32_t> Tokenizer::bos_id() const { return p_->bos_id; }
std::optional<int32_t> Tokenizer::eos_id() const { return p_->eos_id; }

bool Tokenizer::adds_bos() const {
  return p_->bos_id && !p_->prefix_ids.empty() && p_->prefix_ids.front() == *p_->bos_id;
}

void Tokenizer::SetSpecialTokens(std::optional<int32_t> bos, std::optional<int32_t> eos,
                                 std::optional<bool> add_bos) {
  if (bos) {
    ARLE_CHECK(*bos >= 0 && *bos < vocab_size());
    p_->bos_id = bos;
  }
  if (eos) {
    ARLE_CHECK(*eos >= 0 && *eos < vocab_size());
    p_->eos_id = eos;
  }
  if (add_bos) {
    if (*add_bos && p_->bos_id) {
      if (!adds_bos()) p_->prefix_ids.insert(p_->prefix_ids.begin(), *p_->bos_id);
    } else if (!*add_bos && adds_bos()) {
      p_->prefix_ids.erase(p_->prefix_ids.begin());
    }
  }
}

core::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(std::string text, io::ReadMaybeGzipFile(path));
  return FromJson(text, path);
}

}  // namespace arle::tokenizer
