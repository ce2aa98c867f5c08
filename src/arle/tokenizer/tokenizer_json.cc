// Parsing Hugging Face tokenizer.json (model BPE; normalizer, pre-tokenizer, post-processor and
// decoder components) into the tokenizer pipeline, and LoadTokenizerForModelDir.
#include <nlohmann/json.hpp>

#include "arle/core/file_util.h"
#include "arle/core/logging.h"
#include "arle/tokenizer/json_stream.h"
#include "arle/tokenizer/tokenizer.h"
#include "arle/tokenizer/tokenizer_impl.h"

namespace arle::tokenizer {
namespace {

using nlohmann::json;
using internal::DecoderStep;
using internal::NormalizerStep;
using internal::Parts;
using internal::PreTokenizerStep;

// Builds errors that name the file and the JSON location.
class Ctx {
 public:
  explicit Ctx(const std::string& source) : source_(source) {}
  core::Status Invalid(const std::string& where, const std::string& what) const {
    return core::InvalidArgumentError(source_ + ": " + where + ": " + what);
  }
  core::Status Unsupported(const std::string& kind, const std::string& type) const {
    return core::UnimplementedError(source_ + ": " + kind + " type \"" + type +
                                        "\" is not supported",
                                    "arle supports BPE models with NFC/Prepend/Replace "
                                    "normalizers, Split/ByteLevel/Metaspace pre-tokenizers, "
                                    "TemplateProcessing/ByteLevel post-processors and "
                                    "ByteLevel/Replace/ByteFallback/Fuse/Strip/Metaspace decoders");
  }

  core::StatusOr<std::string> String(const json& obj, const char* key, const std::string& where,
                                     std::optional<std::string> fallback = std::nullopt) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (fallback) return *fallback;
      return Invalid(where, std::string("missing string field \"") + key + "\"");
    }
    if (!it->is_string()) return Invalid(where, std::string("field \"") + key + "\" must be a string");
    return it->get<std::string>();
  }
  core::StatusOr<bool> Bool(const json& obj, const char* key, const std::string& where,
                            bool fallback) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) return Invalid(where, std::string("field \"") + key + "\" must be a boolean");
    return it->get<bool>();
  }
  core::StatusOr<int64_t> Int(const json& obj, const char* key, const std::string& where,
                              int64_t fallback) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_number_integer()) return Invalid(where, std::string("field \"") + key + "\" must be an integer");
    return it->get<int64_t>();
  }
  core::StatusOr<const json*> Array(const json& obj, const char* key, const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_array()) {
      return Invalid(where, std::string("field \"") + key + "\" must be an array");
    }
    return &*it;
  }
  core::StatusOr<std::string> Type(const json& obj, const std::string& where) const {
    if (!obj.is_object()) return Invalid(where, "must be an object or null");
    return String(obj, "type", where);
  }

 private:
  const std::string& source_;
};

// Escapes a literal for use inside a PCRE2 pattern.
std::string EscapeRegex(const std::string& literal) {
  std::string out;
  for (char c : literal) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// A {"String": s} or {"Regex": r} pattern; returns a regex source.
core::StatusOr<std::string> PatternRegex(const Ctx& ctx, const json& obj, const std::string& where) {
  auto it = obj.find("pattern");
  if (it == obj.end() || !it->is_object()) return ctx.Invalid(where, "missing object field \"pattern\"");
  if (auto s = it->find("String"); s != it->end() && s->is_string()) {
    return EscapeRegex(s->get<std::string>());
  }
  if (auto r = it->find("Regex"); r != it->end() && r->is_string()) return r->get<std::string>();
  return ctx.Invalid(where, "\"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
}

core::StatusOr<std::string> PatternString(const Ctx& ctx, const json& obj, const std::string& where) {
  auto it = obj.find("pattern");
  if (it == obj.end() || !it->is_object()) return ctx.Invalid(where, "missing object field \"pattern\"");
  if (auto s = it->find("String"); s != it->end() && s->is_string()) return s->get<std::string>();
  if (it->contains("Regex")) {
    return core::UnimplementedError(ctx.Invalid(where, "").message() +
                                    "Replace with a Regex pattern is not supported");
  }
  return ctx.Invalid(where, "\"pattern\" must be {\"String\": ...}");
}

core::Status ParseNormalizer(const Ctx& ctx, const json& j, int depth, Parts* p) {
  const std::string where = "normalizer";
  if (j.is_null()) return core::OkStatus();
  if (depth > 8) return ctx.Invalid(where, "nested too deeply");
  ARLE_ASSIGN_OR_RETURN(std::string type, ctx.Type(j, where));
  if (type == "Sequence") {
    ARLE_ASSIGN_OR_RETURN(const json* list, ctx.Array(j, "normalizers", where));
    for (const auto& item : *list) ARLE_RETURN_IF_ERROR(ParseNormalizer(ctx, item, depth + 1, p));
  } else if (type == "NFC") {
    p->normalizers.push_back({NormalizerStep::Kind::kNfc, "", ""});
  } else if (type == "Prepend") {
    ARLE_ASSIGN_OR_RETURN(std::string prepend, ctx.String(j, "prepend", where));
    p->normalizers.push_back({NormalizerStep::Kind::kPrepend, "", prepend});
  } else if (type == "Replace") {
    ARLE_ASSIGN_OR_RETURN(std::string pattern, PatternString(ctx, j, where));
    ARLE_ASSIGN_OR_RETURN(std::string content, ctx.String(j, "content", where));
    p->normalizers.push_back({NormalizerStep::Kind::kReplace, pattern, content});
  } else {
    return ctx.Unsupported("normalizer", type);
  }
  return core::OkStatus();
}

core::StatusOr<internal::PrependScheme> ParsePrependScheme(const Ctx& ctx, const json& j,
                                                           const std::string& where) {
  if (auto it = j.find("prepend_scheme"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return ctx.Invalid(where, "\"prepend_scheme\" must be a string");
    const std::string s = it->get<std::string>();
    if (s == "always") return internal::PrependScheme::kAlways;
    if (s == "first") return internal::PrependScheme::kFirst;
    if (s == "never") return internal::PrependScheme::kNever;
    return ctx.Invalid(where, "unknown prepend_scheme \"" + s + "\"");
  }
  ARLE_ASSIGN_OR_RETURN(bool add_prefix_space, ctx.Bool(j, "add_prefix_space", where, true));
  return add_prefix_space ? internal::PrependScheme::kAlways : internal::PrependScheme::kNever;
}

core::Status ParsePreTokenizer(const Ctx& ctx, const json& j, int depth, Parts* p) {
  const std::string where = "pre_tokenizer";
  if (j.is_null()) return core::OkStatus();
  if (depth > 8) return ctx.Invalid(where, "nested too deeply");
  ARLE_ASSIGN_OR_RETURN(std::string type, ctx.Type(j, where));
  PreTokenizerStep step;
  if (type == "Sequence") {
    ARLE_ASSIGN_OR_RETURN(const json* list, ctx.Array(j, "pretokenizers", where));
    for (const auto& item : *list) ARLE_RETURN_IF_ERROR(ParsePreTokenizer(ctx, item, depth + 1, p));
    return core::OkStatus();
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::kSplit;
    ARLE_ASSIGN_OR_RETURN(std::string pattern, PatternRegex(ctx, j, where));
    auto regex = internal::Regex::Compile(pattern);
    if (!regex.ok()) return regex.status().WithContext(ctx.Invalid(where, "Split").message());
    step.regex = *regex;
    ARLE_ASSIGN_OR_RETURN(std::string behavior, ctx.String(j, "behavior", where, "Isolated"));
    if (behavior == "Isolated") {
      step.behavior = internal::SplitBehavior::kIsolated;
    } else if (behavior == "Removed") {
      step.behavior = internal::SplitBehavior::kRemoved;
    } else if (behavior == "MergedWithPrevious") {
      step.behavior = internal::SplitBehavior::kMergedWithPrevious;
    } else if (behavior == "MergedWithNext") {
      step.behavior = internal::SplitBehavior::kMergedWithNext;
    } else if (behavior == "Contiguous") {
      step.behavior = internal::SplitBehavior::kContiguous;
    } else {
      return ctx.Invalid(where, "unknown Split behavior \"" + behavior + "\"");
    }
    ARLE_ASSIGN_OR_RETURN(step.invert, ctx.Bool(j, "invert", where, false));
  } else if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::kByteLevel;
    ARLE_ASSIGN_OR_RETURN(step.add_prefix_space, ctx.Bool(j, "add_prefix_space", where, true));
    ARLE_ASSIGN_OR_RETURN(bool use_regex, ctx.Bool(j, "use_regex", where, true));
    if (use_regex) {
      ARLE_ASSIGN_OR_RETURN(step.regex, internal::Regex::Compile(internal::kGpt2Regex));
    }
    p->model.byte_level = true;
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::kMetaspace;
    ARLE_ASSIGN_OR_RETURN(step.replacement, ctx.String(j, "replacement", where, "\xE2\x96\x81"));
    if (step.replacement.empty()) return ctx.Invalid(where, "empty Metaspace replacement");
    ARLE_ASSIGN_OR_RETURN(step.prepend_scheme, ParsePrependScheme(ctx, j, where));
    ARLE_ASSIGN_OR_RETURN(step.split, ctx.Bool(j, "split", where, true));
  } else {
    return ctx.Unsupported("pre_tokenizer", type);
  }
  p->pre_tokenizers.push_back(std::move(step));
  return core::OkStatus();
}

core::Status ParseDecoder(const Ctx& ctx, const json& j, int depth, Parts* p) {
  const std::string where = "decoder";
  if (j.is_null()) return core::OkStatus();
  if (depth > 8) return ctx.Invalid(where, "nested too deeply");
  ARLE_ASSIGN_OR_RETURN(std::string type, ctx.Type(j, where));
  DecoderStep step;
  if (type == "Sequence") {
    ARLE_ASSIGN_OR_RETURN(const json* list, ctx.Array(j, "decoders", where));
    for (const auto& item : *list) ARLE_RETURN_IF_ERROR(ParseDecoder(ctx, item, depth + 1, p));
    return core::OkStatus();
  } else if (type == "ByteLevel") {
    step.kind = DecoderStep::Kind::kByteLevel;
  } else if (type == "Replace") {
    step.kind = DecoderStep::Kind::kReplace;
    ARLE_ASSIGN_OR_RETURN(step.pattern, PatternString(ctx, j, where));
    ARLE_ASSIGN_OR_RETURN(step.content, ctx.String(j, "content", where));
  } else if (type == "ByteFallback") {
    step.kind = DecoderStep::Kind::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = DecoderStep::Kind::kFuse;
  } else if (type == "Strip") {
    step.kind = DecoderStep::Kind::kStrip;
    ARLE_ASSIGN_OR_RETURN(step.content, ctx.String(j, "content", where));
    ARLE_ASSIGN_OR_RETURN(int64_t start, ctx.Int(j, "start", where, 0));
    ARLE_ASSIGN_OR_RETURN(int64_t stop, ctx.Int(j, "stop", where, 0));
    if (start < 0 || start > 1024 || stop < 0 || stop > 1024) {
      return ctx.Invalid(where, "Strip start/stop out of range");
    }
    step.start = static_cast<int>(start);
    step.stop = static_cast<int>(stop);
    bool fused = false;
    for (const auto& d : p->decoders) {
      fused = fused || d.kind == DecoderStep::Kind::kFuse || d.kind == DecoderStep::Kind::kByteLevel;
    }
    if (fused && step.stop > 0) {
      return core::UnimplementedError(
          ctx.Invalid(where, "").message() +
          "a Strip decoder with stop > 0 after Fuse is not supported (it cannot be streamed)");
    }
  } else if (type == "Metaspace") {
    step.kind = DecoderStep::Kind::kMetaspace;
    ARLE_ASSIGN_OR_RETURN(step.content, ctx.String(j, "replacement", where, "\xE2\x96\x81"));
    if (step.content.empty()) return ctx.Invalid(where, "empty Metaspace replacement");
    ARLE_ASSIGN_OR_RETURN(auto scheme, ParsePrependScheme(ctx, j, where));
    step.prepend = scheme != internal::PrependScheme::kNever;
  } else {
    return ctx.Unsupported("decoder", type);
  }
  p->decoders.push_back(std::move(step));
  return core::OkStatus();
}

core::Status ParsePostProcessor(const Ctx& ctx, const json& j, int depth, Parts* p) {
  const std::string where = "post_processor";
  if (j.is_null()) return core::OkStatus();
  if (depth > 8) return ctx.Invalid(where, "nested too deeply");
  ARLE_ASSIGN_OR_RETURN(std::string type, ctx.Type(j, where));
  if (type == "Sequence") {
    ARLE_ASSIGN_OR_RETURN(const json* list, ctx.Array(j, "processors", where));
    for (const auto& item : *list) ARLE_RETURN_IF_ERROR(ParsePostProcessor(ctx, item, depth + 1, p));
  } else if (type == "ByteLevel") {
    // Only adjusts offsets; ids are unchanged.
  } else if (type == "TemplateProcessing") {
    ARLE_ASSIGN_OR_RETURN(const json* single, ctx.Array(j, "single", where));
    const json* specials = nullptr;
    if (auto it = j.find("special_tokens"); it != j.end() && it->is_object()) specials = &*it;
    bool seen_sequence = false;
    for (const auto& item : *single) {
      if (!item.is_object()) return ctx.Invalid(where, "\"single\" items must be objects");
      if (item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      auto st = item.find("SpecialToken");
      if (st == item.end() || !st->is_object()) {
        return ctx.Invalid(where, "\"single\" items must be {\"Sequence\"} or {\"SpecialToken\"}");
      }
      ARLE_ASSIGN_OR_RETURN(std::string name, ctx.String(*st, "id", where));
      std::vector<int32_t> ids;
      if (specials != nullptr) {
        if (auto sp = specials->find(name); sp != specials->end() && sp->is_object()) {
          auto ids_it = sp->find("ids");
          if (ids_it != sp->end() && ids_it->is_array()) {
            for (const auto& v : *ids_it) {
              if (!v.is_number_integer()) return ctx.Invalid(where, "special token ids must be integers");
              int64_t id = v.get<int64_t>();
              if (id < 0 || id > INT32_MAX) return ctx.Invalid(where, "special token id out of range");
              ids.push_back(static_cast<int32_t>(id));
            }
          }
        }
      }
      if (ids.empty()) {
        auto it = p->token_to_id.find(name);
        if (it == p->token_to_id.end()) {
          return ctx.Invalid(where, "template token \"" + name + "\" is not in the vocabulary");
        }
        ids.push_back(it->second);
      }
      auto& target = seen_sequence ? p->suffix_ids : p->prefix_ids;
      target.insert(target.end(), ids.begin(), ids.end());
    }
    if (!p->prefix_ids.empty() && !p->bos_id) p->bos_id = p->prefix_ids.front();
  } else {
    return ctx.Unsupported("post_processor", type);
  }
  return core::OkStatus();
}

core::Status ParseModel(const Ctx& ctx, const json& root, internal::StreamedModel& streamed,
                        Parts* p) {
  auto mit = root.find("model");
  if (mit == root.end() || !mit->is_object()) return ctx.Invalid("model", "missing object \"model\"");
  const json& m = *mit;
  const std::string where = "model";
  ARLE_ASSIGN_OR_RETURN(std::string type, ctx.String(m, "type", where, "BPE"));
  if (type != "BPE") {
    return core::UnimplementedError(
        ctx.Invalid(where, "").message() + "model type \"" + type + "\" is not supported",
        "arle supports BPE tokenizers (byte-level or SentencePiece-style); WordPiece, Unigram and "
        "WordLevel are not implemented");
  }
  if (!streamed.has_vocab) return ctx.Invalid(where, "\"vocab\" must be an object");
  const auto& vocab = streamed.vocab;
  size_t n_added = 0;
  if (auto at = root.find("added_tokens"); at != root.end() && at->is_array()) n_added = at->size();
  // Ids are dense in practice; allow some holes but never let a file size an allocation at will.
  const int64_t limit = static_cast<int64_t>(vocab.size() + n_added) + 65536;
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0 || id >= limit) {
      return ctx.Invalid(where, "vocab entry \"" + token + "\" has id " + std::to_string(id) +
                                    " out of range [0, " + std::to_string(limit) + ")");
    }
    max_id = std::max(max_id, id);
  }
  p->id_to_token.assign(static_cast<size_t>(max_id + 1), std::string());
  p->token_to_id.reserve(vocab.size() + n_added);
  for (const auto& [token, id64] : vocab) {
    const int32_t id = static_cast<int32_t>(id64);
    if (token.empty()) return ctx.Invalid(where, "vocab has an empty token");
    if (!p->id_to_token[id].empty()) {
      return ctx.Invalid(where, "id " + std::to_string(id) + " is assigned to both \"" +
                                    p->id_to_token[id] + "\" and \"" + token + "\"");
    }
    if (!p->token_to_id.emplace(token, id).second) {
      return ctx.Invalid(where, "vocab entry \"" + token + "\" appears twice");
    }
    p->id_to_token[id] = token;
  }

  ARLE_ASSIGN_OR_RETURN(p->model.byte_fallback, ctx.Bool(m, "byte_fallback", where, false));
  ARLE_ASSIGN_OR_RETURN(p->model.ignore_merges, ctx.Bool(m, "ignore_merges", where, false));
  ARLE_ASSIGN_OR_RETURN(p->model.fuse_unk, ctx.Bool(m, "fuse_unk", where, false));
  ARLE_ASSIGN_OR_RETURN(std::string prefix, ctx.String(m, "continuing_subword_prefix", where, ""));
  ARLE_ASSIGN_OR_RETURN(std::string suffix, ctx.String(m, "end_of_word_suffix", where, ""));
  if (!prefix.empty() || !suffix.empty()) {
    return core::UnimplementedError(ctx.Invalid(where, "").message() +
                                    "continuing_subword_prefix / end_of_word_suffix are not supported");
  }
  ARLE_ASSIGN_OR_RETURN(std::string unk, ctx.String(m, "unk_token", where, ""));
  if (!unk.empty()) {
    auto it = p->token_to_id.find(unk);
    if (it == p->token_to_id.end()) {
      return ctx.Invalid(where, "unk_token \"" + unk + "\" is not in the vocabulary");
    }
    p->model.unk_id = it->second;
  }

  if (!streamed.has_merges) {
    if (auto it = m.find("merges"); it != m.end() && !it->is_null()) {
      return ctx.Invalid(where, "\"merges\" must be an array");
    }
    return core::OkStatus();
  }
  p->model.merges.reserve(streamed.merges.size());
  uint32_t rank = 0;
  std::string merged;
  for (const auto& item : streamed.merges) {
    if (!item.well_formed) {
      return ctx.Invalid(where, "merge #" + std::to_string(rank) + " \"" + item.a +
                                    "\" is not two tokens separated by a space");
    }
    const std::string& a = item.a;
    const std::string& b = item.b;
    auto ia = p->token_to_id.find(a);
    auto ib = p->token_to_id.find(b);
    merged.assign(a);
    merged.append(b);
    auto im = p->token_to_id.find(merged);
    if (ia == p->token_to_id.end() || ib == p->token_to_id.end() || im == p->token_to_id.end()) {
      const std::string& missing = ia == p->token_to_id.end() ? a : ib == p->token_to_id.end() ? b : merged;
      return ctx.Invalid(where, "merge #" + std::to_string(rank) + " (\"" + a + "\", \"" + b +
                                    "\") names token \"" + missing + "\" which is not in the vocabulary");
    }
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(ia->second)) << 32) |
                   static_cast<uint32_t>(ib->second);
    uint64_t value = (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(im->second);
    p->model.merges.emplace(key, value);  // a duplicate keeps its first (best) rank
    ++rank;
  }
  return core::OkStatus();
}

core::Status ParseAddedTokens(const Ctx& ctx, const json& root, Parts* p) {
  auto at = root.find("added_tokens");
  if (at == root.end() || at->is_null()) return core::OkStatus();
  const std::string where = "added_tokens";
  if (!at->is_array()) return ctx.Invalid(where, "must be an array");
  const int64_t limit = static_cast<int64_t>(p->id_to_token.size() + at->size()) + 65536;
  for (const auto& t : *at) {
    if (!t.is_object()) return ctx.Invalid(where, "entries must be objects");
    internal::AddedToken token;
    ARLE_ASSIGN_OR_RETURN(int64_t id, ctx.Int(t, "id", where, -1));
    if (id < 0 || id >= limit) {
      return ctx.Invalid(where, "token id " + std::to_string(id) + " is missing or out of range");
    }
    token.id = static_cast<int32_t>(id);
    ARLE_ASSIGN_OR_RETURN(token.content, ctx.String(t, "content", where));
    if (token.content.empty()) return ctx.Invalid(where, "token " + std::to_string(id) + " is empty");
    ARLE_ASSIGN_OR_RETURN(token.special, ctx.Bool(t, "special", where, false));
    ARLE_ASSIGN_OR_RETURN(token.lstrip, ctx.Bool(t, "lstrip", where, false));
    ARLE_ASSIGN_OR_RETURN(token.rstrip, ctx.Bool(t, "rstrip", where, false));
    ARLE_ASSIGN_OR_RETURN(token.normalized, ctx.Bool(t, "normalized", where, !token.special));
    if (static_cast<size_t>(id) >= p->id_to_token.size()) p->id_to_token.resize(id + 1);
    std::string& slot = p->id_to_token[id];
    if (!slot.empty() && slot != token.content) {
      auto it = p->token_to_id.find(slot);
      if (it != p->token_to_id.end() && it->second == id) p->token_to_id.erase(it);
    }
    slot = token.content;
    p->token_to_id[token.content] = token.id;
    p->added.push_back(std::move(token));
  }
  return core::OkStatus();
}

core::StatusOr<std::unique_ptr<Parts>> ParseAll(std::string_view text, const std::string& source) {
  json root;
  internal::StreamedModel streamed;
  ARLE_RETURN_IF_ERROR(internal::ParseTokenizerJsonStreaming(text, source, &root, &streamed));
  Ctx ctx(source);
  if (!root.is_object()) return ctx.Invalid("document", "a tokenizer.json must be a JSON object");
  auto p = std::make_unique<Parts>();
  p->source = source;
  ARLE_RETURN_IF_ERROR(ParseModel(ctx, root, streamed, p.get()));
  streamed = {};  // release the flat copies before building the rest
  ARLE_RETURN_IF_ERROR(ParseAddedTokens(ctx, root, p.get()));
  auto get = [&](const char* key) -> const json& {
    static const json kNull;
    auto it = root.find(key);
    return it == root.end() ? kNull : *it;
  };
  ARLE_RETURN_IF_ERROR(ParseNormalizer(ctx, get("normalizer"), 0, p.get()));
  ARLE_RETURN_IF_ERROR(ParsePreTokenizer(ctx, get("pre_tokenizer"), 0, p.get()));
  ARLE_RETURN_IF_ERROR(ParsePostProcessor(ctx, get("post_processor"), 0, p.get()));
  ARLE_RETURN_IF_ERROR(ParseDecoder(ctx, get("decoder"), 0, p.get()));
  return p;
}

// tokenizer_config.json special tokens are strings or {"content": ...} objects.
std::optional<std::string> ConfigToken(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

core::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json_text,
                                                              const std::string& source) {
  try {
    ARLE_ASSIGN_OR_RETURN(std::unique_ptr<Parts> parts, ParseAll(json_text, source));
    return Finish(std::move(parts));
  } catch (const std::exception& e) {  // a JSON accessor we did not guard: still a clean error
    return core::InvalidArgumentError(source + ": malformed tokenizer.json: " + e.what());
  }
}

core::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerForModelDir(const std::string& dir) {
  std::string path = core::JoinPath(dir, "tokenizer.json");
  if (!core::FileExists(path) && core::FileExists(path + ".gz")) path += ".gz";
  if (!core::FileExists(path)) {
    return core::NotFoundError(dir + ": no tokenizer.json in the model directory");
  }
  ARLE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::FromFile(path));
  const std::string config_path = core::JoinPath(dir, "tokenizer_config.json");
  if (!core::FileExists(config_path)) return tok;
  ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(config_path));
  json config = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return core::DataLossError(config_path + ": not a valid JSON object");
  }
  auto lookup = [&](const char* key) -> core::StatusOr<std::optional<int32_t>> {
    std::optional<std::string> name = ConfigToken(config, key);
    if (!name) return std::optional<int32_t>();
    std::optional<int32_t> id = tok->TokenToId(*name);
    if (!id) {
      return core::InvalidArgumentError(config_path + ": " + key + " \"" + *name +
                                        "\" is not in the tokenizer's vocabulary");
    }
    return id;
  };
  ARLE_ASSIGN_OR_RETURN(std::optional<int32_t> bos, lookup("bos_token"));
  ARLE_ASSIGN_OR_RETURN(std::optional<int32_t> eos, lookup("eos_token"));
  std::optional<bool> add_bos;
  if (auto it = config.find("add_bos_token"); it != config.end() && it->is_boolean()) {
    add_bos = it->get<bool>();
  }
  tok->SetSpecialTokens(bos, eos, add_bos);
  return tok;
}

}  // namespace arle::tokenizer
